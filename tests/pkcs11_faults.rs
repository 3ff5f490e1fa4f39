//! A broken service or network between the built module and a real csc-server (issue 11, items 2, 3
//! and 6), through the fault proxy (support/fault_proxy.rs): every module call returns within its
//! deadline (`request_timeout_ms` plus a margin for the requests of the call that pass) with the mapped
//! CKR, a signature request is never sent twice, a signature that does not verify never reaches the
//! application, and the next call succeeds once the fault clears.
//!
//! Deadlines are asserted for the whole call, as an application experiences it: a module that retries
//! a read must fit its retries into the call's deadline. The mapped code for a service that fails
//! (stall, drip, reset, garbage, 5xx, a Retry-After beyond the deadline) is CKR_DEVICE_ERROR.

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use std::time::{Duration, Instant};
use support::config::{token_toml_via, unattended_toml};
use support::fault_proxy::{csc_error_body, Fault, FaultProxy};
use support::prelude::*;

const TIMEOUT_MS: u64 = 3000;
/// Time the passing requests of a call may take on a loaded two-core machine.
const MARGIN: Duration = Duration::from_millis(2500);
const PERIOD: u64 = 2;
const EC: &str = "alice-p256";
const RSA: &str = "alice-rsa2048";
const SIGN_HASH: &str = "/signatures/signHash";
const LIST: &str = "/credentials/list";
/// Tokens for the first-fetch tests, one each (a token fetches its credentials once).
const FETCH_TOKENS: usize = 12;

struct Env {
    svc: Service,
    p: P11,
    /// In front of the signing tokens "Sign EC" and "Sign RSA".
    signing: FaultProxy,
    /// In front of the tokens "Fetch 0", "Fetch 1", ...
    fetching: FaultProxy,
    next_fetch: std::sync::atomic::AtomicUsize,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceCell<Env> = OnceCell::new();
    ENV.get_or_init(|| {
        let svc = Service::lasting_with_totp_period(PERIOD);
        let signing = FaultProxy::start(&svc);
        let fetching = FaultProxy::start(&svc);
        let dir = tempfile::tempdir().unwrap();
        let timeouts =
            format!("request_timeout_ms = {TIMEOUT_MS}\nconnect_timeout_ms = {TIMEOUT_MS}\n");
        let signer = |label: &str, cred: &str| {
            token_toml_via(
                &svc,
                &signing.url,
                &signing.ca_file(),
                label,
                "alice",
                &format!(
                    "{timeouts}batch_size = 100\n{}",
                    unattended_toml(&svc, dir.path(), cred, PERIOD)
                ),
            )
        };
        let mut tokens = vec![signer("Sign EC", EC), signer("Sign RSA", RSA)];
        for i in 0..FETCH_TOKENS {
            tokens.push(token_toml_via(
                &svc,
                &fetching.url,
                &fetching.ca_file(),
                &format!("Fetch {i}"),
                "alice",
                &timeouts,
            ));
        }
        let p = initialize_on(dir.path(), &tokens).p;
        Env {
            svc,
            p,
            signing,
            fetching,
            next_fetch: Default::default(),
            _dir: dir,
        }
    })
}

/// A session on a signing token whose batch is already authorized (so that a C_Sign is one signHash).
fn signer(e: &Env, token: &str, cred: &str) -> KeySession {
    let label = e.svc.demo.credential(cred).1.label.clone();
    let s = KeySession::open(e.p, token, None, &label);
    s.signed(b"warm-up: authorizes the batch");
    s
}

/// `f`'s result and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let r = f();
    (r, started.elapsed())
}

#[track_caller]
fn assert_within_deadline(took: Duration, what: &str) {
    let deadline = Duration::from_millis(TIMEOUT_MS) + MARGIN;
    assert!(
        took <= deadline,
        "{what} took {took:?}: more than request_timeout_ms ({TIMEOUT_MS} ms) + {MARGIN:?}"
    );
}

/// C_Sign under `fault` on signHash: CKR_DEVICE_ERROR within the deadline, the request sent once, and
/// a verified signature once the fault is cleared.
fn sign_fails_in_time_then_recovers(fault: Fault) {
    let _s = serial();
    let e = env();
    let s = signer(e, "Sign EC", EC);
    let name = format!("{fault:?}");
    let before = e.signing.count(SIGN_HASH);
    e.signing.inject(SIGN_HASH, fault, None);
    let (r, took) = timed(|| s.sign(format!("under {name}").as_bytes()));
    let sent = e.signing.count(SIGN_HASH) - before;
    e.signing.clear();
    let r = r.map_err(rv_name).map(|_| "a signature");
    assert_within_deadline(took, &format!("C_Sign under {name} (result {r:?})"));
    assert_eq!(r, Err(rv_name(CKR_DEVICE_ERROR)), "C_Sign under {name}");
    assert_eq!(sent, 1, "a signature request is never resent ({name})");
    s.signed(b"after the fault cleared");
    assert_rv(s.close(), CKR_OK, "C_CloseSession");
}

#[test]
fn sign_hash_that_never_answers_fails_c_sign_within_the_deadline() {
    sign_fails_in_time_then_recovers(Fault::Stall);
}

#[test]
fn sign_hash_answer_dripping_a_byte_at_a_time_fails_c_sign_within_the_deadline() {
    sign_fails_in_time_then_recovers(Fault::Drip {
        every: Duration::from_millis(500),
    });
}

#[test]
fn a_connection_the_service_closed_while_idle_is_not_used_again() {
    // Each answer keeps the connection alive in HTTP terms, then the service closes it while the
    // client holds it idle: the next signature must come on a new connection, once, and succeed.
    let _s = serial();
    let e = env();
    let s = signer(e, "Sign EC", EC);
    e.signing.inject(SIGN_HASH, Fault::CloseWhenIdle, None);
    let before = e.signing.count(SIGN_HASH);
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        s.signed(format!("after an idle close {i}").as_bytes());
    }
    let sent = e.signing.count(SIGN_HASH) - before;
    e.signing.clear();
    assert_eq!(sent, 5, "each signHash sent once");
    assert_rv(s.close(), CKR_OK, "C_CloseSession");
}

#[test]
fn sign_hash_connection_reset_is_device_error() {
    sign_fails_in_time_then_recovers(Fault::Reset);
}

#[test]
fn sign_hash_garbage_answer_is_device_error() {
    sign_fails_in_time_then_recovers(Fault::Garbage);
}

#[test]
fn sign_hash_http_500_without_a_body_is_device_error_and_not_resent() {
    sign_fails_in_time_then_recovers(Fault::Status {
        code: 500,
        body: None,
        retry_after: None,
    });
}

#[test]
fn sign_hash_http_502_with_a_csc_body_is_device_error_and_not_resent() {
    sign_fails_in_time_then_recovers(Fault::csc_error(502, "server_error", "upstream down"));
}

#[test]
fn sign_hash_http_503_with_retry_after_is_device_error_and_not_resent() {
    sign_fails_in_time_then_recovers(Fault::Status {
        code: 503,
        body: Some(csc_error_body("temporarily_unavailable", "busy")),
        retry_after: Some("1".into()),
    });
}

/// A token that has not fetched its credentials yet.
fn fresh_fetch_token(e: &Env) -> CK_SLOT_ID {
    let i = e
        .next_fetch
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    assert!(i < FETCH_TOKENS, "raise FETCH_TOKENS");
    e.p.slot_of(&format!("Fetch {i}"))
}

/// C_OpenSession on `slot` succeeds (the fault is cleared).
fn opens_after_the_fault(e: &Env, slot: CK_SLOT_ID) {
    let h = ok(
        e.p.open_session(slot, CKF_SERIAL_SESSION),
        "C_OpenSession after the fault",
    );
    assert_rv(e.p.close(h), CKR_OK, "C_CloseSession");
}

/// The first C_OpenSession (it fetches the credentials) under `fault` on `path`: CKR_DEVICE_ERROR
/// within the deadline; C_OpenSession succeeds once the fault is cleared.
fn first_fetch_fails_in_time_then_recovers(path: &str, fault: Fault) {
    let _s = serial();
    let e = env();
    let slot = fresh_fetch_token(e);
    let name = format!("{fault:?} on {path}");
    e.fetching.inject(path, fault, None);
    let (r, took) = timed(|| e.p.open_session(slot, CKF_SERIAL_SESSION));
    e.fetching.clear();
    let r = r.map_err(rv_name).map(|_| "a session");
    assert_within_deadline(took, &format!("C_OpenSession under {name} (result {r:?})"));
    assert_eq!(
        r,
        Err(rv_name(CKR_DEVICE_ERROR)),
        "C_OpenSession under {name}"
    );
    opens_after_the_fault(e, slot);
}

#[test]
fn first_fetch_that_never_answers_fails_c_open_session_within_the_deadline() {
    first_fetch_fails_in_time_then_recovers(LIST, Fault::Stall);
}

#[test]
fn first_fetch_dripping_a_byte_at_a_time_fails_c_open_session_within_the_deadline() {
    first_fetch_fails_in_time_then_recovers(
        LIST,
        Fault::Drip {
            every: Duration::from_millis(500),
        },
    );
}

#[test]
fn tls_handshake_that_never_completes_fails_c_open_session_within_the_deadline() {
    first_fetch_fails_in_time_then_recovers("", Fault::StallHandshake);
}

#[test]
fn first_fetch_reset_again_and_again_is_device_error_in_time() {
    first_fetch_fails_in_time_then_recovers(LIST, Fault::Reset);
}

#[test]
fn first_fetch_garbage_again_and_again_is_device_error_in_time() {
    first_fetch_fails_in_time_then_recovers(LIST, Fault::Garbage);
}

#[test]
fn retry_after_beyond_the_deadline_fails_at_once_without_hammering() {
    let _s = serial();
    let e = env();
    let slot = fresh_fetch_token(e);
    let before = e.fetching.count(LIST);
    e.fetching.inject(
        LIST,
        Fault::Status {
            code: 429,
            body: Some(csc_error_body("too_many_requests", "slow down")),
            retry_after: Some("30".into()),
        },
        None,
    );
    let (r, took) = timed(|| e.p.open_session(slot, CKF_SERIAL_SESSION));
    let asked = e.fetching.count(LIST) - before;
    e.fetching.clear();
    assert_eq!(
        r.map_err(rv_name),
        Err(rv_name(CKR_DEVICE_ERROR)),
        "429, Retry-After: 30"
    );
    assert_within_deadline(took, "C_OpenSession after 429 Retry-After: 30");
    assert_eq!(
        asked, 1,
        "the service asked for 30 s of quiet; a deadline of {TIMEOUT_MS} ms leaves no room to ask again"
    );
    opens_after_the_fault(e, slot);
}

#[test]
fn retry_after_within_the_deadline_is_waited_for() {
    let _s = serial();
    let e = env();
    let slot = fresh_fetch_token(e);
    e.fetching.inject(
        LIST,
        Fault::Status {
            code: 503,
            body: None,
            retry_after: Some("2".into()),
        },
        Some(1),
    );
    let before = e.fetching.seen().len();
    let h = ok(
        e.p.open_session(slot, CKF_SERIAL_SESSION),
        "C_OpenSession after one 503, Retry-After: 2",
    );
    let lists: Vec<Instant> = e.fetching.seen()[before..]
        .iter()
        .filter(|s| s.path.contains(LIST))
        .map(|s| s.at)
        .collect();
    assert_eq!(lists.len(), 2, "asked again once after the 503");
    let waited = lists[1] - lists[0];
    assert!(
        waited >= Duration::from_millis(1900),
        "asked again after {waited:?}; the service said Retry-After: 2"
    );
    assert_rv(e.p.close(h), CKR_OK, "C_CloseSession");
}

/// One transient `fault` on the credential list: the read is retried and C_OpenSession succeeds.
fn transient_read_failure_is_retried(fault: Fault) {
    let _s = serial();
    let e = env();
    let slot = fresh_fetch_token(e);
    let name = format!("{fault:?}");
    let before = e.fetching.count(LIST);
    e.fetching.inject(LIST, fault, Some(1));
    let r = e.p.open_session(slot, CKF_SERIAL_SESSION);
    let asked = e.fetching.count(LIST) - before;
    e.fetching.clear();
    let h = ok(r, &format!("C_OpenSession after one {name}"));
    assert_eq!(asked, 2, "the list was asked for again after {name}");
    assert_rv(e.p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn http_503_during_the_first_fetch_is_retried() {
    transient_read_failure_is_retried(Fault::Status {
        code: 503,
        body: None,
        retry_after: None,
    });
}

#[test]
fn http_500_without_a_body_during_the_first_fetch_is_retried_like_503() {
    transient_read_failure_is_retried(Fault::Status {
        code: 500,
        body: None,
        retry_after: None,
    });
}

#[test]
fn http_500_with_a_csc_body_during_the_first_fetch_is_retried_like_503() {
    transient_read_failure_is_retried(Fault::csc_error(500, "server_error", "database busy"));
}

/// A signature the service sends changed by `fault`: C_Sign must not return it.
fn wrong_signature_is_device_error(token: &str, cred: &str, mech: CK_MECHANISM_TYPE, fault: Fault) {
    let _s = serial();
    let e = env();
    let s = signer(e, token, cred);
    let name = format!("{fault:?}");
    e.signing.inject(SIGN_HASH, fault, Some(1));
    let case = Case::of(mech, format!("{name} with 0x{mech:x}").as_bytes());
    let r = e.p.sign(s.h, &case.mech, s.key.private, &case.input);
    e.signing.clear();
    match r {
        Ok(sig) => panic!(
            "C_Sign returned CKR_OK for a signature the service changed ({name}, mechanism 0x{mech:x}); \
             openssl {} it",
            if case.verifies(&s.key, &sig) { "accepts" } else { "rejects" }
        ),
        Err(rv) => assert_rv(rv, CKR_DEVICE_ERROR, &format!("{name}, mechanism 0x{mech:x}")),
    }
    s.sign_with(mech, b"after the wrong signature")
        .expect("the next signature verifies");
    assert_rv(s.close(), CKR_OK, "C_CloseSession");
}

#[test]
fn ecdsa_signature_with_one_flipped_bit_is_device_error_never_ok() {
    wrong_signature_is_device_error("Sign EC", EC, CKM_ECDSA_SHA256, Fault::FlipSignatureBit);
}

#[test]
fn rsa_pkcs1_signature_with_one_flipped_bit_is_device_error_never_ok() {
    wrong_signature_is_device_error(
        "Sign RSA",
        RSA,
        CKM_SHA256_RSA_PKCS,
        Fault::FlipSignatureBit,
    );
}

#[test]
fn rsa_pss_signature_with_one_flipped_bit_is_device_error_never_ok() {
    wrong_signature_is_device_error(
        "Sign RSA",
        RSA,
        CKM_SHA256_RSA_PKCS_PSS,
        Fault::FlipSignatureBit,
    );
}

#[test]
fn rsa_signature_of_random_bytes_is_device_error_never_ok() {
    wrong_signature_is_device_error("Sign RSA", RSA, CKM_SHA256_RSA_PKCS, Fault::RandomSignature);
}

#[test]
fn sign_hash_answered_401_after_the_service_signed_is_not_resent() {
    let _s = serial();
    let e = env();
    let s = signer(e, "Sign EC", EC);
    let message = b"the service signs, then the answer is lost behind a 401";
    let hash: String = sha("sha256", message)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let before = e.signing.count(SIGN_HASH);
    e.signing.inject(
        SIGN_HASH,
        Fault::AfterForward {
            code: 401,
            body: csc_error_body("invalid_token", "The access token expired"),
        },
        Some(1),
    );
    let r = s.sign(message);
    e.signing.clear();
    let sent = e.signing.count(SIGN_HASH) - before;
    let made = e
        .svc
        .signatures_made(EC)
        .iter()
        .filter(|a| a.hash_list().contains(&hash))
        .count();
    assert_eq!(
        (sent, made),
        (1, 1),
        "signHash requests sent and signatures the service made for one C_Sign (result {:?})",
        r.map_err(rv_name)
    );
    assert!(
        r.is_err(),
        "the signature never reached the module; C_Sign cannot succeed"
    );
    s.signed(b"after the 401: the access token is renewed");
    assert_rv(s.close(), CKR_OK, "C_CloseSession");
}
