//! Second factors: RFC 6238 TOTP codes with replay protection, the account authenticator of the page
//! sign-ins (`users` columns `sealed_account_totp`, `account_totp_period`, `account_totp_last_step`; used
//! by the approval page and by the CryptoPro DSS emulator's confirmation page), and "SMS" codes the
//! service sends by appending a line to `STATE/sms-outbox.jsonl`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// Seconds an SMS code stays valid.
pub const SMS_LIFETIME: i64 = 300;

/// Checks `code` against `user`'s account authenticator and records the outcome: the accepted step
/// (so the code is never accepted again) and the `AccountCode` lockout counter (a failure counts,
/// `max_attempts` in a row lock; a success resets). `Ok(false)`: wrong code. The caller checks the lock
/// first.
pub fn check_account_code(
    conn: &rusqlite::Connection,
    vault: &crate::vault::Vault,
    user: &str,
    code: &str,
    now: i64,
    max_attempts: u32,
) -> crate::error::CscResult<bool> {
    use crate::error::CscError;
    use crate::lockouts::{self, Counter};
    type Row = (Option<Vec<u8>>, Option<i64>, Option<i64>);
    let (sealed, period, last): Row = conn.query_row(
        "SELECT sealed_account_totp, account_totp_period, account_totp_last_step
         FROM users WHERE name = ?1",
        [user],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (Some(sealed), Some(period)) = (sealed, period) else {
        return Err(CscError::internal(
            "page sign-in",
            format!("{user} has no account TOTP secret"),
        ));
    };
    let secret = vault
        .open(&crate::vault::purpose::account_totp(user), &sealed)
        .map_err(|e| CscError::internal("account TOTP secret", e))?;
    match verify_totp(&secret, period as u64, code, now, last.map(|s| s as u64)) {
        Some(step) => {
            conn.execute(
                "UPDATE users SET account_totp_last_step = ?2 WHERE name = ?1",
                rusqlite::params![user, step as i64],
            )?;
            lockouts::success(conn, Counter::AccountCode, user)?;
            Ok(true)
        }
        None => {
            lockouts::failure(conn, Counter::AccountCode, user, max_attempts)?;
            Ok(false)
        }
    }
}

/// Checks a TOTP code (SHA-1, 6 digits) at `now`, allowing one step of clock drift either way.
/// RFC 6238 §5.2: a code is accepted only for a time step later than the last one accepted
/// (`last_step`), so a code cannot be replayed and earlier codes die with it. Returns the step accepted.
pub fn verify_totp(
    secret: &[u8],
    period: u64,
    code: &str,
    now: i64,
    last_step: Option<u64>,
) -> Option<u64> {
    if period == 0 || now < 0 || code.len() != crate::model::OTP_LENGTH {
        return None;
    }
    let totp = TOTP::new_unchecked(
        Algorithm::SHA1,
        crate::model::OTP_LENGTH,
        1,
        period,
        secret.to_vec(),
    );
    let current = now as u64 / period;
    let mut accepted = None;
    // Every candidate is computed and compared, in constant time, whatever matched before.
    for step in current.saturating_sub(1)..=current + 1 {
        let expected = totp.generate(step * period);
        let matches: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if matches && last_step.is_none_or(|last| step > last) {
            accepted = Some(step);
        }
    }
    accepted
}

/// A fresh SMS code.
pub fn sms_code() -> zeroize::Zeroizing<String> {
    crate::random::digits(crate::model::OTP_LENGTH)
}

pub fn codes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The SMS gateway of the demo: one JSON line per message, in a file only the owner can read.
pub struct Outbox {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Outbox {
    pub fn new(path: PathBuf) -> Outbox {
        Outbox {
            path,
            lock: Mutex::new(()),
        }
    }

    pub fn send(
        &self,
        now: i64,
        user: &str,
        credential: &str,
        code: &str,
        description: Option<&str>,
    ) -> std::io::Result<()> {
        let mut line = serde_json::json!({
            "time": crate::clock::rfc3339(now),
            "user": user,
            "credential": credential,
            "code": code,
            "description": description,
        })
        .to_string();
        line.push('\n');
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        // One write of a whole line: readers never see half a message.
        f.write_all(line.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors() {
        // RFC 6238 Appendix B, SHA-1, truncated to the last 6 digits.
        for (t, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(
                verify_totp(RFC_SECRET, 30, code, t, None),
                Some(t as u64 / 30),
                "t={t}"
            );
        }
    }

    #[test]
    fn drift_window_is_one_step() {
        let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, RFC_SECRET.to_vec());
        let now = 1_700_000_000i64;
        let step = now as u64 / 30;
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let s = (step as i64 + offset) as u64;
            let code = totp.generate(s * 30);
            assert_eq!(
                verify_totp(RFC_SECRET, 30, &code, now, None).is_some(),
                ok,
                "offset {offset}"
            );
        }
        assert_eq!(verify_totp(RFC_SECRET, 30, "12345", now, None), None);
        assert_eq!(verify_totp(RFC_SECRET, 30, "abcdef", now, None), None);
    }

    #[test]
    fn replayed_and_older_codes_are_refused() {
        let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, RFC_SECRET.to_vec());
        let now = 1_700_000_000i64;
        let step = now as u64 / 30;
        let current = totp.generate(step * 30);
        let previous = totp.generate((step - 1) * 30);
        let next = totp.generate((step + 1) * 30);
        let accepted = verify_totp(RFC_SECRET, 30, &current, now, None).unwrap();
        assert_eq!(accepted, step);
        // The same code again, and an older code still inside the drift window.
        assert_eq!(
            verify_totp(RFC_SECRET, 30, &current, now, Some(accepted)),
            None
        );
        assert_eq!(
            verify_totp(RFC_SECRET, 30, &previous, now, Some(accepted)),
            None
        );
        // The next step's code is still fine.
        assert_eq!(
            verify_totp(RFC_SECRET, 30, &next, now, Some(accepted)),
            Some(step + 1)
        );
    }

    #[test]
    fn outbox_lines_are_json() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("sms-outbox.jsonl"));
        outbox
            .send(
                0,
                "alice",
                "alice-p384",
                "123456",
                Some("Sign contract.pdf"),
            )
            .unwrap();
        outbox
            .send(1, "alice", "alice-p384", "654321", None)
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("sms-outbox.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["code"], "123456");
        assert_eq!(lines[0]["time"], "1970-01-01T00:00:00Z");
        assert_eq!(lines[0]["description"], "Sign contract.pdf");
        assert!(lines[1]["description"].is_null());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("sms-outbox.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
