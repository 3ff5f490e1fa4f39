//! Fault injection: a service that drips, stalls, resets, answers garbage, fails with 5xx or asks to come
//! back later. Every call returns within its deadline with the error a caller can act on, reads are
//! repeated and signatures never are, and the next call succeeds once the fault clears.

use crate::fake::{Fake, Fault, Req, Resp};
use crate::loopback;
use crate::transport_kind;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use remote_client::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCESS: &str = "at-0123456789";
const SAD: &str = "sad-abcdef123456";
const TIMEOUT: Duration = Duration::from_millis(800);
/// Far below what the faults would take unbounded (tens of seconds), far above the deadline.
const LIMIT: Duration = Duration::from_millis(2500);

fn client(url: &str, retry: RetryPolicy) -> CscClient {
    let mut cfg = loopback(url, ApiVersion::V2);
    cfg.request_timeout = TIMEOUT;
    cfg.retry = retry;
    CscClient::new(&cfg).unwrap()
}

fn retries(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        backoff: Duration::from_millis(10),
        deadline: Some(Duration::from_secs(5)),
    }
}

fn list_body() -> String {
    // Long enough that dripping it takes far longer than the deadline.
    json!({"credentialIDs": (0..40).map(|i| format!("credential-{i}")).collect::<Vec<_>>()})
        .to_string()
}

fn sign_request() -> SignHashRequest {
    SignHashRequest {
        credential_id: "c1".into(),
        sad: Secret::new(SAD),
        hashes: vec![vec![1; 32]],
        hash_algorithm_oid: oid::SHA256.into(),
        sign_algorithm_oid: oid::ECDSA_WITH_SHA256.into(),
        sign_algorithm_params: None,
    }
}

/// Runs `call`, checks it ended within the limit, and returns its error.
fn timed<T: std::fmt::Debug>(call: impl FnOnce() -> Result<T>) -> Error {
    let started = Instant::now();
    let e = call().expect_err("the fault must surface as an error");
    let took = started.elapsed();
    assert!(
        took < LIMIT,
        "took {took:?} with a {TIMEOUT:?} deadline: {e}"
    );
    e
}

fn count(fake: &Fake, method: &str) -> usize {
    fake.paths().iter().filter(|p| p.ends_with(method)).count()
}

/// A service that misbehaves with `fault` until `healed` is set, then answers properly.
fn faulty(fault: Fault) -> (Fake, Arc<AtomicBool>) {
    let healed = Arc::new(AtomicBool::new(false));
    let h = healed.clone();
    let fake = Fake::http(move |r: &Req| {
        let ok = if r.path.ends_with("signatures/signHash") {
            Resp::json(200, json!({"signatures": [B64.encode(b"sig")]}))
        } else {
            Resp::raw(200, &list_body())
        };
        if h.load(Ordering::SeqCst) {
            ok
        } else {
            ok.fault(fault)
        }
    });
    (fake, healed)
}

#[test]
fn every_fault_ends_within_the_deadline_and_the_next_call_succeeds() {
    let at = Secret::new(ACCESS);
    let cases = [
        (
            "drip body",
            Fault::DripBody(Duration::from_millis(100)),
            true,
        ),
        (
            "drip headers",
            Fault::DripHeaders(Duration::from_millis(100)),
            true,
        ),
        (
            "stall body",
            Fault::StallBody(Duration::from_secs(20)),
            true,
        ),
        ("stall", Fault::Stall(Duration::from_secs(20)), true),
        ("reset", Fault::Reset, false),
        ("reset mid-body", Fault::ResetMidBody, false),
        ("garbage", Fault::Garbage, false),
    ];
    for (name, fault, is_timeout) in cases {
        let (fake, healed) = faulty(fault);
        let c = client(&fake.http_url(), RetryPolicy::default());
        let e = timed(|| c.list_credentials(&at));
        assert_eq!(e.reason(), Reason::Transport, "{name}: {e:?}");
        let kind = match &e {
            Error::Transport { kind, .. } => *kind,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(kind == TransportKind::Timeout, is_timeout, "{name}: {e:?}");
        assert_ne!(kind, TransportKind::Tls, "{name}");
        assert!(e.is_retryable(), "{name}");
        // The request went out: a signature sent this way may have been made.
        assert!(e.maybe_processed(), "{name}: {e:?}");
        assert!(!e.is_safe_to_resend(), "{name}");
        let e = timed(|| c.sign_hash(&at, &sign_request()));
        assert!(e.maybe_processed(), "{name}: {e:?}");

        healed.store(true, Ordering::SeqCst);
        assert_eq!(c.list_credentials(&at).unwrap().len(), 40, "{name}");
        assert_eq!(c.sign_hash(&at, &sign_request()).unwrap(), [b"sig"]);
    }
}

#[test]
fn reads_are_retried_through_a_fault_and_signatures_are_not() {
    let at = Secret::new(ACCESS);
    for fault in [Fault::Reset, Fault::DripBody(Duration::from_millis(100))] {
        let (fake, _) = faulty(fault);
        let c = client(&fake.http_url(), retries(3));
        timed(|| c.sign_hash(&at, &sign_request()));
        assert_eq!(count(&fake, "signHash"), 1, "{fault:?}: {:?}", fake.paths());
    }
    let (fake, _) = faulty(Fault::Reset);
    let c = client(&fake.http_url(), retries(3));
    c.list_credentials(&at).unwrap_err();
    assert_eq!(count(&fake, "credentials/list"), 3, "{:?}", fake.paths());
}

/// Answers every method with `first` once, then properly.
fn failing_once(first: impl Fn() -> Resp + Send + Sync + 'static) -> Fake {
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    Fake::http(move |r: &Req| {
        if seen.lock().unwrap().insert(r.path.clone()) {
            return first();
        }
        if r.path.ends_with("signatures/signHash") {
            Resp::json(200, json!({"signatures": [B64.encode(b"sig")]}))
        } else {
            Resp::raw(200, &list_body())
        }
    })
}

#[test]
fn server_errors_without_a_csc_body_are_transient_for_reads_only() {
    let at = Secret::new(ACCESS);
    for status in [500, 502, 504] {
        let fake = failing_once(move || Resp::raw(status, "<html>oops</html>"));
        let c = client(&fake.http_url(), retries(3));
        assert_eq!(c.list_credentials(&at).unwrap().len(), 40, "{status}");
        assert_eq!(count(&fake, "credentials/list"), 2);
        let e = c.sign_hash(&at, &sign_request()).unwrap_err();
        assert!(matches!(e, Error::Http { status: s, .. } if s == status));
        assert_eq!(e.reason(), Reason::ServiceUnavailable, "{status}");
        assert!(e.maybe_processed(), "{status}");
        assert_eq!(count(&fake, "signHash"), 1, "HTTP {status}");
    }
    // A CSC error body says what happened: server_error is transient too.
    let fake = failing_once(|| {
        Resp::json(
            500,
            json!({"error":"server_error","error_description":"internal"}),
        )
    });
    let c = client(&fake.http_url(), retries(3));
    assert_eq!(c.list_credentials(&at).unwrap().len(), 40);
    let e = c.sign_hash(&at, &sign_request()).unwrap_err();
    assert_eq!(e.reason(), Reason::ServiceUnavailable);
    assert!(matches!(e, Error::Csc { status: 500, .. }), "{e:?}");
    assert_eq!(count(&fake, "signHash"), 1);
    // 501 is an answer, not a passing failure.
    let fake = failing_once(|| Resp::raw(501, ""));
    let c = client(&fake.http_url(), retries(3));
    let e = c.list_credentials(&at).unwrap_err();
    assert_eq!(e.reason(), Reason::NotSupported);
    assert_eq!(count(&fake, "credentials/list"), 1);
}

#[test]
fn retry_after_is_honoured_within_the_deadline() {
    let at = Secret::new(ACCESS);
    // Seconds: waited, then the read and even the signature (a 503 was not acted on) succeed.
    let fake = failing_once(|| Resp::raw(503, "").header("Retry-After", "1"));
    let c = client(&fake.http_url(), retries(3));
    let started = Instant::now();
    assert_eq!(c.list_credentials(&at).unwrap().len(), 40);
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(c.sign_hash(&at, &sign_request()).unwrap(), [b"sig"]);
    assert_eq!(count(&fake, "signHash"), 2);
    assert_eq!(c.retry_after(), None, "cleared by the success");

    // An HTTP date, on a 429.
    let fake = failing_once(|| {
        let at = std::time::SystemTime::now() + Duration::from_secs(2);
        Resp::raw(429, "").header("Retry-After", &httpdate::fmt_http_date(at))
    });
    let c = client(&fake.http_url(), retries(3));
    let started = Instant::now();
    assert_eq!(c.list_credentials(&at).unwrap().len(), 40);
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Longer than the deadline: the call ends at once, and the caller learns how long to back off.
    let fake = failing_once(|| Resp::raw(503, "").header("Retry-After", "30"));
    let c = client(&fake.http_url(), retries(3));
    let e = timed(|| c.list_credentials(&at));
    assert!(matches!(e, Error::Http { status: 503, .. }), "{e:?}");
    assert_eq!(e.reason(), Reason::ServiceUnavailable);
    assert!(e.is_safe_to_resend());
    let hint = c.retry_after().expect("the service's hint");
    assert!(
        hint > Duration::from_secs(25) && hint <= Duration::from_secs(30),
        "{hint:?}"
    );
    assert_eq!(count(&fake, "credentials/list"), 1);
}

#[test]
fn authorize_has_its_own_timeout() {
    let fake = Fake::http(|r: &Req| {
        let slow = Duration::from_millis(1500);
        if r.path.ends_with("credentials/authorize") {
            Resp::json(200, json!({"SAD": SAD, "expiresIn": 60})).delayed(slow)
        } else {
            Resp::raw(200, &list_body()).delayed(slow)
        }
    });
    let mut cfg = loopback(&fake.http_url(), ApiVersion::V2);
    cfg.request_timeout = Duration::from_millis(500);
    cfg.authorize_timeout = Some(Duration::from_secs(5));
    let c = CscClient::new(&cfg).unwrap();
    let at = Secret::new(ACCESS);
    let e = c.list_credentials(&at).unwrap_err();
    assert_eq!(transport_kind(&e), Some(TransportKind::Timeout), "{e:?}");
    let request = AuthorizeRequest {
        credential_id: "c1".into(),
        num_signatures: 1,
        ..Default::default()
    };
    match c.authorize(&at, &request).unwrap() {
        Authorization::Granted(sad) => assert_eq!(sad.value.expose(), SAD),
        other => panic!("{other:?}"),
    }
    cfg.authorize_timeout = Some(Duration::ZERO);
    assert!(matches!(CscClient::new(&cfg), Err(Error::Config(_))));
    cfg.authorize_timeout = None;
    cfg.retry.attempts = 0;
    assert!(matches!(CscClient::new(&cfg), Err(Error::Config(_))));
}

#[test]
fn an_unreachable_service_is_safe_to_ask_again() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = client(&format!("http://127.0.0.1:{port}"), RetryPolicy::default());
    let e = c
        .sign_hash(&Secret::new(ACCESS), &sign_request())
        .unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportKind::Unreachable),
        "{e:?}"
    );
    assert!(!e.maybe_processed());
    assert!(e.is_safe_to_resend());
}
