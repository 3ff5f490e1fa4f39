//! One-time codes the way the user's authenticator app makes them (RFC 6238: SHA-1, 6 digits), for
//! credentials and for accounts (the approval page login), with the rule the service enforces: a code
//! is accepted only for a time step newer than the last one accepted (RFC 6238 §5.2).

use crate::service::{DemoCredential, DemoToken};
use once_cell::sync::OnceCell;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The code of base32 `secret` for time step `step` of `period` seconds.
pub fn code_at(secret: &str, period: u64, step: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32 TOTP secret");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, period, bytes)
        .generate(step * period)
}

/// Every code of `secret` from one step before `from` to one step after `to` (seconds): what a log
/// may have seen in that window.
pub fn codes_between(secret: &str, period: u64, from: u64, to: u64) -> Vec<String> {
    (from / period - 1..=to / period + 1)
        .map(|step| code_at(secret, period, step))
        .collect()
}

/// The credential's TOTP period (the service's `init --totp-period`).
pub fn period_of(cred: &DemoCredential) -> u64 {
    cred.totp_period.unwrap_or(30)
}

/// Hands out TOTP codes the service will accept: each call returns a code for a step after every step
/// handed out before for this credential, waiting for the clock where needed.
pub fn totp_code(cred: &DemoCredential) -> String {
    let secret = cred
        .totp_secret
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no TOTP secret", cred.id));
    fresh_totp_code(secret, period_of(cred))
}

/// The code of `token`'s account authenticator for the approval page login (`GET /approve`), newer than
/// every code handed out before for the account, like `totp_code`.
pub fn account_code(token: &DemoToken) -> String {
    let secret = token
        .approval_totp_secret
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no approval_totp_secret in demo.json", token.user));
    fresh_totp_code(secret, token.approval_totp_period.unwrap_or(30))
}

/// A 6-digit code the service cannot accept now for this credential: none of the codes of the steps
/// around the current one.
pub fn wrong_totp(cred: &DemoCredential) -> String {
    let secret = cred.totp_secret.as_deref().expect("a TOTP credential");
    let period = period_of(cred);
    let now = now_secs();
    let valid = codes_between(
        secret,
        period,
        now.saturating_sub(2 * period),
        now + 2 * period,
    );
    (0..)
        .map(|i: u64| format!("{:06}", (i * 7919 + 123_456) % 1_000_000))
        .find(|c| !valid.contains(c))
        .expect("a code outside the window")
}

/// The newest step handed out (or known used) per TOTP secret.
fn last_steps() -> &'static Mutex<HashMap<String, u64>> {
    static LAST: OnceCell<Mutex<HashMap<String, u64>>> = OnceCell::new();
    LAST.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Records that the module itself made codes of `cred` (from its `totp_secret_file`) up to now: the
/// module never makes a code of a future step, so the next code handed out here is for a later step
/// than any the service saw from it.
pub fn module_made_codes(cred: &DemoCredential) {
    let secret = cred.totp_secret.as_ref().expect("a TOTP credential");
    let step_now = now_secs() / period_of(cred);
    let mut last = last_steps().lock();
    let entry = last.entry(secret.clone()).or_insert(step_now);
    *entry = (*entry).max(step_now);
}

/// A code for a time step newer than every step handed out before for this `secret` (one TOTP secret is
/// one credential or one account), waiting for the clock where needed.
pub fn fresh_totp_code(secret: &str, period: u64) -> String {
    let map = last_steps();
    loop {
        let step_now = now_secs() / period;
        let mut last = map.lock();
        let next = last
            .get(secret)
            .map(|s| s + 1)
            .unwrap_or(step_now)
            .max(step_now);
        // The service accepts one step of drift; stay within it.
        if next <= step_now + 1 {
            last.insert(secret.to_owned(), next);
            return code_at(secret, period, next);
        }
        drop(last);
        std::thread::sleep(Duration::from_millis(250));
    }
}
