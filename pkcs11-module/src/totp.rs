//! Unattended one-time passwords: the module computes the authenticator code (RFC 6238, HMAC-SHA1)
//! itself from the secret in the token's `totp_secret_file`.
//!
//! What this gives up: the code no longer proves that a person holds a device. Whoever can read the
//! secret file and knows the PIN (or reads `pin_file`) can sign; the file's 0600 mode and the account's
//! separation are the only protection left. It suits e-seals and build servers, not a person's signature.
//!
//! A service accepts each time step once (RFC 6238 §5.2: no replay), so a second authorization within one
//! step waits here for the next step. That wait is at most one period; within this process it never
//! costs the service a failed attempt. Another process using the same secret within the same step can
//! still collide: the service then refuses the code, and auth.rs tries once more at the next step.

use crate::error::{self, CkResult};
use cryptoki_sys::*;
use parking_lot::Mutex;
use remote_client::Secret;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

/// The newest time step used per credential, so that no step is offered twice.
#[derive(Default)]
pub struct UsedSteps(Mutex<HashMap<String, u64>>);

/// The code for the first step after every step used before for `credential`, waiting for the clock
/// when needed. `digits` is the credential's OTP length.
pub fn code(
    slot: CK_SLOT_ID,
    secret_file: &Path,
    period: u64,
    digits: usize,
    credential: &str,
    used: &UsedSteps,
) -> CkResult<Secret> {
    let totp = load(slot, secret_file, period, digits)?;
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| {
                error::logged(
                    CKR_FUNCTION_FAILED,
                    format!("slot {slot}: the system clock is before 1970"),
                )
            })?
            .as_secs();
        let step = now / period;
        {
            let mut steps = used.0.lock();
            let last = steps.get(credential).copied();
            if last.is_none_or(|l| l < step) {
                steps.insert(credential.to_owned(), step);
                return Ok(Secret::new(totp.generate(step * period)));
            }
        }
        let wait = (step + 1) * period - now;
        log::info!(
            "slot {slot}: the authenticator code of this time step was used; waiting {wait} s for the next"
        );
        // Sleeps end a little after the boundary so that `now / period` has moved on.
        std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(20));
    }
}

fn load(slot: CK_SLOT_ID, path: &Path, period: u64, digits: usize) -> CkResult<TOTP> {
    let fail = |m: String| error::logged(CKR_FUNCTION_FAILED, format!("slot {slot}: {m}"));
    let secret = crate::config::files::read_secret_file(path).map_err(fail)?;
    // Authenticator apps show the secret in groups and in either case.
    let normalized: Zeroizing<String> = Zeroizing::new(
        secret
            .expose()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let bytes = totp_rs::Secret::Encoded(normalized.to_string())
        .to_bytes()
        .map_err(|_| {
            fail(format!(
                "totp_secret_file {}: not a base32 secret",
                path.display()
            ))
        })?;
    if bytes.len() < 10 {
        return Err(fail(format!(
            "totp_secret_file {}: the secret is shorter than 80 bits",
            path.display()
        )));
    }
    Ok(TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        1,
        period,
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// RFC 6238 Appendix B's SHA-1 secret, "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn secret_file(text: &str, mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("totp");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        (d, p)
    }

    #[test]
    fn matches_the_rfc_6238_vectors() {
        let (_d, p) = secret_file(&format!("{RFC_SECRET}\n"), 0o600);
        let totp = load(0, &p, 30, 8).unwrap();
        for (t, want) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1234567890, "89005924"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(totp.generate(t), want, "T = {t}");
        }
        // Grouped and lower-case, as apps show it.
        let (_d, p) = secret_file("gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n", 0o600);
        assert_eq!(load(0, &p, 30, 8).unwrap().generate(59), "94287082");
    }

    #[test]
    fn refuses_readable_or_malformed_secrets() {
        let (_d, p) = secret_file(RFC_SECRET, 0o644);
        assert_eq!(load(0, &p, 30, 6).unwrap_err(), CKR_FUNCTION_FAILED);
        let (_d, p) = secret_file("not base32 at all!", 0o600);
        assert_eq!(load(0, &p, 30, 6).unwrap_err(), CKR_FUNCTION_FAILED);
        let (_d, p) = secret_file("GEZDGNBV", 0o600);
        assert_eq!(load(0, &p, 30, 6).unwrap_err(), CKR_FUNCTION_FAILED);
    }

    #[test]
    fn never_offers_a_step_twice() {
        let (_d, p) = secret_file(RFC_SECRET, 0o600);
        let used = UsedSteps::default();
        let period = 2;
        let first = code(0, &p, period, 6, "c", &used).unwrap();
        let step1 = used.0.lock()["c"];
        let second = code(0, &p, period, 6, "c", &used).unwrap();
        let step2 = used.0.lock()["c"];
        assert_eq!(step2, step1 + 1, "the second code is for the next step");
        let totp = load(0, &p, period, 6).unwrap();
        assert_eq!(first.expose(), totp.generate(step1 * period));
        assert_eq!(second.expose(), totp.generate(step2 * period));
        // Steps are per credential.
        code(0, &p, period, 6, "other", &used).unwrap();
        assert_eq!(used.0.lock()["c"], step2);
    }
}
