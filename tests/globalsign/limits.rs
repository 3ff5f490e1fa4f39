//! The service's refusals as applications see them: an exhausted quota, a rate limit on signatures and
//! on identities, an access token that ends before the module expected it — each a CK_RV of its own
//! and a log line that says which, at once (the service's Retry-After of an hour is not waited for).

use crate::world::{world, KNOWN_SESSIONS, LIMITED, QUOTA, SHORT_SESSIONS};
use cryptoki_sys::*;
use std::time::{Duration, Instant};
use support::globalsign::{runtime_dir, Emulator};
use support::prelude::*;
use support::tools::{run, text};

/// The log lines of the module that mention `what`.
fn lines_with(log: &str, what: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(what))
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_exhausted_quota_refuses_the_signature_and_says_so() {
    let w = world();
    let cn = &w.quota.demo.common_name;
    for i in 0..2 {
        w.sign_once(QUOTA, cn, format!("invoice {i}").as_bytes())
            .unwrap_or_else(|rv| panic!("signature {i} within the quota: {}", rv_name(rv)));
    }
    let started = Instant::now();
    let rv = w.sign_once(QUOTA, cn, b"invoice 2").unwrap_err();
    assert_rv(rv, CKR_FUNCTION_REJECTED, "a signature past the quota");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let lines = lines_with(&w.log_text(), "QuotaExhausted");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CKR_FUNCTION_REJECTED") && l.contains("quota")),
        "no log line names the quota: {lines:?}"
    );
    let events = w.quota.audit_events();
    let signed = events
        .iter()
        .filter(|e| e["event"] == "sign" && e["outcome"] == "ok")
        .count();
    assert_eq!(
        signed, 2,
        "the service made the signatures of the quota only"
    );
}

#[test]
fn a_rate_limited_signature_fails_at_once_and_says_when_to_retry() {
    let w = world();
    let cn = &w.limited.demo.common_name;
    w.sign_once(LIMITED, cn, b"the one signature of the hour")
        .unwrap_or_else(|rv| panic!("the first signature: {}", rv_name(rv)));
    let started = Instant::now();
    let rv = w.sign_once(LIMITED, cn, b"one too many").unwrap_err();
    assert_rv(rv, CKR_DEVICE_ERROR, "a rate-limited signature");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the module waited for the service's Retry-After: {:?}",
        started.elapsed()
    );
    let lines = lines_with(&w.log_text(), "RateLimited");
    assert!(
        lines.iter().any(|l| l.contains("CKR_DEVICE_ERROR")
            && l.contains("retry after")
            && l.contains("rate-limits")),
        "no log line names the rate limit and its wait: {lines:?}"
    );
}

#[test]
fn an_access_token_that_ended_early_fails_one_signature_then_the_module_signs_in_again() {
    let w = world();
    let cn = &w.short_sessions.demo.common_name;
    w.sign_once(SHORT_SESSIONS, cn, b"before")
        .unwrap_or_else(|rv| panic!("{}", rv_name(rv)));
    std::thread::sleep(Duration::from_secs(4));
    // The signature request is never sent twice: the refused one fails, the next one signs.
    let rv = w
        .sign_once(SHORT_SESSIONS, cn, b"with an ended session")
        .unwrap_err();
    assert_rv(
        rv,
        CKR_DEVICE_ERROR,
        "a signature with an ended access token",
    );
    w.sign_once(SHORT_SESSIONS, cn, b"after")
        .unwrap_or_else(|rv| panic!("after signing in again: {}", rv_name(rv)));
    let log = w.log_text();
    assert!(
        lines_with(&log, "TokenExpired")
            .iter()
            .any(|l| l.contains("signing failed")),
        "{log}"
    );
    let logins = w
        .short_sessions
        .audit_events()
        .iter()
        .filter(|e| e["event"] == "login")
        .count();
    assert_eq!(logins, 2);
}

#[test]
fn a_session_lifetime_the_module_knows_is_renewed_before_it_ends() {
    let w = world();
    let cn = &w.known_sessions.demo.common_name;
    w.sign_once(KNOWN_SESSIONS, cn, b"before")
        .unwrap_or_else(|rv| panic!("{}", rv_name(rv)));
    // Past the 5 s margin before the 12 s end: the module signs in again before it signs.
    std::thread::sleep(Duration::from_secs(8));
    w.sign_once(KNOWN_SESSIONS, cn, b"after")
        .unwrap_or_else(|rv| panic!("a signature after 8 s of a 12 s session: {}", rv_name(rv)));
    let events = w.known_sessions.audit_events();
    assert_eq!(events.iter().filter(|e| e["event"] == "login").count(), 2);
    assert!(events.iter().all(|e| e["outcome"] == "ok"), "{events:?}");
}

/// Identities are rate-limited too: a process that cannot get one finds no objects and says why.
#[test]
fn a_rate_limited_identity_is_reported_by_the_process_that_asked() {
    let e = lasting(|| Emulator::start(&[], &["--rate-identities", "1/3600"]));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("module.log");
    // Without the shared identity every process asks for one of its own.
    let config = write_config(
        dir.path(),
        "info",
        &log,
        &[e.token_toml("DSS identities", "identity_cache = false")],
    );
    let runtime = runtime_dir();
    let tool = |args: &[&str]| {
        run(std::process::Command::new("pkcs11-tool")
            .arg("--module")
            .arg(support::module_path())
            .args(args)
            .env("CLOUDTOKEN_CONFIG", &config)
            .env("XDG_RUNTIME_DIR", runtime.path()))
    };
    let first = tool(&["--token-label", "DSS identities", "-O"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("Private Key Object"));
    let started = Instant::now();
    let second = tool(&["--token-label", "DSS identities", "-O"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(!second.status.success(), "{}", text(&second.stdout));
    let lines = lines_with(&std::fs::read_to_string(&log).unwrap(), "RateLimited");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("obtaining a signing identity") && l.contains("retry after")),
        "{lines:?}"
    );
}
