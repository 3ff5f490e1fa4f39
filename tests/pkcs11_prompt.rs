//! The prompt channel through the built module against a real csc-server (issue #5, item 2): the code
//! from the prompt for TOTP and SMS credentials (the SMS is requested right before the question, with
//! the same description), wrong-then-right, cancel, an empty answer, a prompt nobody answers, three wrong
//! codes, the service's lockout, and SCAL 2 keys authorized hash by hash through the prompt. The answers
//! come from the shipped examples/prompt/test-prompt.sh reading the reference service's "demo phone".

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use std::time::{Duration, Instant};
use support::prelude::*;
use support::Service;

struct Env {
    svc: Service,
    p: P11,
    alice: PromptDir,
    bob: PromptDir,
    carol: PromptDir,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

const HURRY_MS: u64 = 1500;

fn env() -> &'static Env {
    static ENV: OnceCell<Env> = OnceCell::new();
    ENV.get_or_init(|| {
        let svc = Service::lasting_with_totp_period(5);
        let dir = tempfile::tempdir().unwrap();
        let pin = |user: &str| svc.demo.token_of(user).pin.clone();
        let alice = PromptDir::new(dir.path().join("alice"), &svc, &pin("alice"));
        let bob = PromptDir::new(dir.path().join("bob"), &svc, &pin("bob"));
        let carol = PromptDir::new(dir.path().join("carol"), &svc, &pin("carol"));
        let tokens = [
            token_toml(&svc, "Prompt Alice", "alice", &alice.command_toml()),
            token_toml(
                &svc,
                "Hurry Alice",
                "alice",
                &format!("{}prompt_timeout_ms = {HURRY_MS}\n", alice.command_toml()),
            ),
            token_toml(&svc, "Prompt Bob", "bob", &bob.command_toml()),
            token_toml(&svc, "Prompt Carol", "carol", &carol.command_toml()),
        ];
        let support::p11::flow::Configured { p, log, .. } = initialize_on(dir.path(), &tokens);
        Env {
            svc,
            p,
            alice,
            bob,
            carol,
            log,
            _dir: dir,
        }
    })
}

fn label_of(e: &Env, id: &str) -> String {
    e.svc.demo.find(|c| c.id == id).1.label.clone()
}

/// A logged-in session on `token` (PIN from the application, codes from the prompt).
fn session(e: &Env, token: &str, user: &str) -> CK_SESSION_HANDLE {
    let p = e.p;
    let h = p.open(p.slot_of(token));
    let pin = &e.svc.demo.token_of(user).pin;
    assert_rv(p.login(h, CKU_USER, pin), CKR_OK, "C_Login");
    h
}

fn fields<'a>(q: &'a [Question], key: &str) -> Vec<&'a str> {
    q.iter().map(|q| q.get(key)).collect()
}

#[test]
fn totp_code_from_the_prompt() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let id = "alice-p256";
    let h = session(e, "Prompt Alice", "alice");
    let key = key_of(p, h, &label_of(e, id));
    // With a prompt, no key needs a context login.
    assert_eq!(
        ok(p.attr(h, key.private, CKA_ALWAYS_AUTHENTICATE), "attr"),
        [CK_FALSE]
    );
    e.alice.take_questions();
    let before = e.svc.granted(id);
    ok(sign_verified(p, h, &key, b"totp from the prompt"), "sign");
    let q = e.alice.take_questions();
    assert_eq!(fields(&q, "kind"), ["otp"]);
    assert_eq!(q[0].get("otp_type"), "totp");
    assert_eq!(q[0].get("token"), "Prompt Alice");
    assert_eq!(q[0].get("credential"), id);
    assert_eq!(q[0].get("attempt"), "1");
    assert_eq!(q[0].get("message"), "");
    assert_eq!(e.svc.granted(id), before + 1);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn sms_code_from_the_prompt_is_sent_right_before_the_question() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let id = "alice-p384";
    let label = label_of(e, id);
    let h = session(e, "Prompt Alice", "alice");
    let key = key_of(p, h, &label);
    e.alice.take_questions();
    let sent_before = e.svc.sms(id).len();
    let case = cases_for(CKM_ECDSA_SHA384, b"sms from the prompt").remove(0);
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    // The prompt asks, so C_SignInit does not have the code sent yet.
    assert_eq!(e.svc.sms(id).len(), sent_before);
    let sig = ok(p.sign_only(h, &case.input), "C_Sign");
    case.assert_verified(&key, &sig);
    let sent = e.svc.sms(id);
    assert_eq!(sent.len(), sent_before + 1, "one SMS");
    let q = e.alice.take_questions();
    assert_eq!(fields(&q, "otp_type"), ["sms"]);
    assert_eq!(q[0].get("signatures"), "30");
    assert_eq!(
        sent.last().unwrap().1,
        format!(
            "Sign 30 documents with '{label}' for {}",
            own_process_name()
        )
    );
    assert_eq!(q[0].get("description"), sent.last().unwrap().1);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn a_wrong_code_is_asked_again() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let h = session(e, "Prompt Alice", "alice");
    for id in ["alice-rsa2048", "alice-rsa3072"] {
        let key = key_of(p, h, &label_of(e, id));
        e.alice.take_questions();
        let audit_before = e.svc.authorizations(id).len();
        let sms_before = e.svc.sms(id).len();
        e.alice.plan(&["wrong", "right"]);
        ok(sign_verified(p, h, &key, b"wrong, then right"), id);
        let q = e.alice.take_questions();
        assert_eq!(fields(&q, "attempt"), ["1", "2"], "{id}");
        assert_eq!(
            fields(&q, "message"),
            ["", "The code was not accepted; 2 attempts left"]
        );
        let outcomes: Vec<String> = e.svc.authorizations(id)[audit_before..]
            .iter()
            .map(|a| a.outcome.clone())
            .collect();
        assert_eq!(outcomes, ["invalid_otp: Invalid OTP", "ok"], "{id}");
        if id == "alice-rsa3072" {
            // The refused code stays valid: no second SMS.
            assert_eq!(e.svc.sms(id).len(), sms_before + 1);
        }
    }
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn cancel_and_empty_answers_cancel_the_signature() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let id = "alice-p256";
    let h = session(e, "Prompt Alice", "alice");
    let key = key_of(p, h, &label_of(e, id));
    e.alice.take_questions();
    let audit_before = e.svc.authorizations(id).len();
    for step in ["cancel", "empty"] {
        e.alice.plan(&[step]);
        assert_eq!(
            sign_verified(p, h, &key, step.as_bytes()),
            Err(CKR_FUNCTION_CANCELED),
            "{step}"
        );
        // Still logged in: cancelling a signature is not a failed login.
        assert_eq!(p.session_state(h), CKS_RO_USER_FUNCTIONS);
    }
    assert_eq!(
        e.svc.authorizations(id).len(),
        audit_before,
        "nothing reached the service"
    );
    ok(sign_verified(p, h, &key, b"after cancelling"), "sign");
    assert_eq!(e.alice.take_questions().len(), 3);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn nobody_answers_the_prompt_in_time() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let id = "alice-p256";
    let h = session(e, "Hurry Alice", "alice");
    let key = key_of(p, h, &label_of(e, id));
    e.alice.take_questions();
    e.alice.plan(&["hang"]);
    // While the prompt waits, the module serves everyone else: nothing is locked for it.
    let other = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let e = env();
        let p = e.p;
        let started = Instant::now();
        let h2 = p.open(p.slot_of("Hurry Alice"));
        let state = p.session_state(h2);
        let certs = find_labelled(p, h2, CKO_CERTIFICATE, &label_of(e, id));
        assert_rv(p.close(h2), CKR_OK, "C_CloseSession");
        (state, certs.len(), started.elapsed())
    });
    let started = Instant::now();
    assert_eq!(
        sign_verified(p, h, &key, b"nobody there"),
        Err(CKR_FUNCTION_CANCELED)
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(HURRY_MS) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let (state, certs, other_took) = other.join().unwrap();
    assert_eq!((state, certs), (CKS_RO_USER_FUNCTIONS, 1));
    assert!(
        other_took < Duration::from_millis(HURRY_MS),
        "{other_took:?}"
    );
    let log = std::fs::read_to_string(&e.log).unwrap();
    assert!(log.contains("nobody answered the prompt for the one-time password within 1500 ms"));
    e.alice.take_questions();
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn three_wrong_codes_then_the_lockout() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let id = "carol-p256-sms";
    let h = session(e, "Prompt Carol", "carol");
    let key = key_of(p, h, &label_of(e, id));
    e.carol.take_questions();
    let audit_before = e.svc.authorizations(id).len();
    // prompt_attempts = 3: the module stops asking before the service's lockout (5 failures).
    e.carol.plan(&["wrong", "wrong", "wrong"]);
    assert_eq!(
        sign_verified(p, h, &key, b"three wrong codes"),
        // C_Sign may not say CKR_PIN_INCORRECT: a refused code is a rejected signature.
        Err(CKR_FUNCTION_REJECTED)
    );
    let q = e.carol.take_questions();
    assert_eq!(fields(&q, "attempt"), ["1", "2", "3"]);
    assert_eq!(
        fields(&q, "message"),
        [
            "",
            "The code was not accepted; 2 attempts left",
            "The code was not accepted; 1 attempt left"
        ]
    );
    // A wrong code is not a wrong PIN: the user stays logged in.
    assert_eq!(p.session_state(h), CKS_RO_USER_FUNCTIONS);
    // Two more failures reach the service's limit; the next answer meets the lock.
    e.carol.plan(&["wrong", "wrong", "right"]);
    assert_eq!(
        sign_verified(p, h, &key, b"locked"),
        Err(CKR_FUNCTION_REJECTED)
    );
    assert_eq!(e.carol.take_questions().len(), 3);
    let outcomes: Vec<String> = e.svc.authorizations(id)[audit_before..]
        .iter()
        .map(|a| a.outcome.clone())
        .collect();
    let wrong = "invalid_otp: Invalid OTP";
    assert_eq!(
        outcomes,
        [
            wrong,
            wrong,
            wrong,
            wrong,
            wrong,
            "invalid_request: OTP locked"
        ]
    );
    // A lock logs the user out, so that nothing is sent again with it.
    assert_eq!(p.session_state(h), CKS_RO_PUBLIC_SESSION);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn scal2_keys_are_authorized_hash_by_hash_through_the_prompt() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let h = session(e, "Prompt Bob", "bob");
    for (id, n) in [("bob-rsa2048-scal2", 3), ("bob-p256-scal2", 2)] {
        let key = key_of(p, h, &label_of(e, id));
        // The prompt gives each signature its code: no context login is needed.
        assert_eq!(
            ok(p.attr(h, key.private, CKA_ALWAYS_AUTHENTICATE), "attr"),
            [CK_FALSE],
            "{id}"
        );
        e.bob.take_questions();
        let audit_before = e.svc.authorizations(id).len();
        let sms_before = e.svc.sms(id).len();
        for i in 0..n {
            ok(
                sign_verified(p, h, &key, format!("{id} document {i}").as_bytes()),
                id,
            );
        }
        let q = e.bob.take_questions();
        assert_eq!(q.len(), n, "one question per signature ({id})");
        assert!(fields(&q, "signatures").iter().all(|s| *s == "1"));
        // Each authorization covered exactly the hash of its document.
        let auths: Vec<(String, String)> = e.svc.authorizations(id)[audit_before..]
            .iter()
            .map(|a| (a.outcome.clone(), a.hashes.clone()))
            .collect();
        let expected: Vec<(String, String)> = (0..n)
            .map(|i| {
                let digest = sha("sha256", format!("{id} document {i}").as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                ("ok".to_owned(), format!("[\"{hex}\"]"))
            })
            .collect();
        assert_eq!(auths, expected, "{id}");
        if id == "bob-rsa2048-scal2" {
            assert_eq!(e.svc.sms(id).len(), sms_before + n, "one SMS per signature");
        }
    }
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}
