//! Unattended one-time passwords: the module computes the authenticator code (RFC 6238, HMAC-SHA1)
//! itself from the secret in the token's `totp_secret_file`.
//!
//! What this gives up: the code no longer proves that a person holds a device. Whoever can read the
//! secret file and knows the PIN (or reads `pin_file`) can sign; the file's 0600 mode and the account's
//! separation are the only protection left. It suits e-seals and build servers, not a person's signature.
//!
//! A service accepts each time step once (RFC 6238 §5.2: no replay), so no step is ever offered twice,
//! across threads and across processes: the steps used are kept per credential in one small file in
//! the user's private runtime folder (runtime.rs), read and updated under an exclusive file lock. A
//! second authorization within one step waits here for the next step (at most one period) instead of
//! sending a code another process already used — which the service would refuse and count toward its
//! lockout. Without a usable runtime folder the steps are kept in this process only, with a warning.

use crate::error::{self, CkResult};
use cryptoki_sys::*;
use parking_lot::Mutex;
use remote_client::Secret;
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

/// File name of the shared store in the runtime folder.
const STORE_FILE: &str = "totp-steps";
/// Entries kept in the store (the newest steps); far more than one user's credentials.
const MAX_ENTRIES: usize = 1000;

/// The newest time step used per credential key, shared with the user's other processes.
pub struct UsedSteps {
    /// `None`: no shared store (this process only).
    file: Option<PathBuf>,
    /// The steps when there is no shared store; with one, only the lock that serialises this process's
    /// threads before they take the file lock.
    local: Mutex<HashMap<String, u64>>,
}

impl Default for UsedSteps {
    fn default() -> Self {
        let file = match crate::runtime::private_dir() {
            Ok(dir) => Some(dir.join(STORE_FILE)),
            Err(e) => {
                log::warn!(
                    "no private runtime folder ({e}): one-time codes computed from totp_secret_file \
                     are coordinated within this process only"
                );
                None
            }
        };
        UsedSteps::at(file)
    }
}

/// Reads `key step` lines; anything else is ignored (the file is only ever written by this code).
fn parse(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

fn render(steps: &HashMap<String, u64>) -> String {
    let mut entries: Vec<(&String, &u64)> = steps.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1));
    entries
        .into_iter()
        .take(MAX_ENTRIES)
        .map(|(k, v)| format!("{k} {v}\n"))
        .collect()
}

impl UsedSteps {
    pub fn at(file: Option<PathBuf>) -> UsedSteps {
        UsedSteps {
            file,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Claims `step` for `key` unless it or a later one was used: `Ok(None)` when claimed, else the
    /// newest step used.
    fn claim(&self, key: &str, step: u64) -> Result<Option<u64>, String> {
        let mut local = self.local.lock();
        let Some(path) = &self.file else {
            return Ok(claim_in(&mut local, key, step));
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let meta = file.metadata().map_err(|e| e.to_string())?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if !meta.is_file() || meta.uid() != unsafe { libc::geteuid() } || meta.mode() & 0o077 != 0 {
            return Err(format!("{}: not a private file of yours", path.display()));
        }
        // SAFETY: the descriptor is open for the whole call; the lock ends when `file` is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "{}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| e.to_string())?;
        let mut steps = parse(&text);
        let outcome = claim_in(&mut steps, key, step);
        if outcome.is_none() {
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(render(&steps).as_bytes()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(outcome)
    }
}

fn claim_in(steps: &mut HashMap<String, u64>, key: &str, step: u64) -> Option<u64> {
    match steps.get(key) {
        Some(&last) if last >= step => Some(last),
        _ => {
            steps.insert(key.to_owned(), step);
            None
        }
    }
}

/// The code for the first step after every step used before for `key` (a credential at a service and
/// account), waiting for the clock when needed. `secret` is the content of `secret_file` (named in log
/// lines); `period` and `digits` (the credential's OTP length) apply unless an `otpauth://` URI names
/// its own.
pub fn code(
    slot: CK_SLOT_ID,
    secret: &Secret,
    secret_file: &Path,
    period: u64,
    digits: usize,
    key: &str,
    used: &UsedSteps,
) -> CkResult<Secret> {
    let totp = authenticator(slot, secret, secret_file, period, digits)?;
    let period = totp.step.max(1);
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
        let last = used.claim(key, step).map_err(|e| {
            error::logged(
                CKR_FUNCTION_FAILED,
                format!("slot {slot}: the shared record of used one-time codes: {e}"),
            )
        })?;
        let Some(last) = last else {
            return Ok(Secret::new(totp.generate(step * period)));
        };
        let wait = (last + 1) * period - now.min((last + 1) * period);
        log::info!(
            "slot {slot}: the authenticator code of this time step was used; waiting {wait} s for the next"
        );
        // Sleeps end a little after the boundary so that `now / period` has moved on.
        std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(20));
    }
}

/// An authenticator secret as providers hand it out: an `otpauth://totp/...` URI (its algorithm, digits
/// and period apply), base32 (authenticator apps; in groups, either case), or base64 (SSL.com's
/// eSigner; `base64:` in front forces it, for a value that would also be base32).
fn authenticator(
    slot: CK_SLOT_ID,
    secret: &Secret,
    path: &Path,
    period: u64,
    digits: usize,
) -> CkResult<TOTP> {
    use base64::Engine;
    let fail = |m: &str| {
        error::logged(
            CKR_FUNCTION_FAILED,
            format!("slot {slot}: totp_secret_file {}: {m}", path.display()),
        )
    };
    let text = secret.expose().trim();
    if text.starts_with("otpauth://") {
        return otpauth(text, digits, period).map_err(|m| fail(&m));
    }
    let compact: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect(),
    );
    let bytes = if let Some(b64) = compact.strip_prefix("base64:") {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| fail("not a base64 secret"))?
    } else {
        let upper = Zeroizing::new(compact.to_ascii_uppercase());
        match totp_rs::Secret::Encoded(upper.to_string()).to_bytes() {
            Ok(b) => b,
            Err(_) => base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|_| fail("neither a base32 nor a base64 secret"))?,
        }
    };
    let bytes = Zeroizing::new(bytes);
    if bytes.len() < 10 {
        return Err(fail("the secret is shorter than 80 bits"));
    }
    Ok(TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        1,
        period,
        bytes.to_vec(),
    ))
}

/// An `otpauth://totp/LABEL?secret=BASE32[&digits=N][&period=S][&algorithm=SHA1|SHA256|SHA512]` URI (the
/// Key Uri Format authenticator apps read); what it leaves out is the credential's and the token's.
fn otpauth(text: &str, digits: usize, period: u64) -> Result<TOTP, String> {
    let uri = url::Url::parse(text).map_err(|_| "not a usable otpauth URI".to_owned())?;
    if uri.host_str() != Some("totp") {
        return Err("an otpauth URI for something other than TOTP".into());
    }
    let (mut secret, mut digits, mut period, mut algorithm) =
        (None, digits, period, Algorithm::SHA1);
    for (k, v) in uri.query_pairs() {
        match k.as_ref() {
            "secret" => secret = Some(Zeroizing::new(v.to_ascii_uppercase())),
            "digits" => digits = v.parse().map_err(|_| "digits is not a number".to_owned())?,
            "period" => period = v.parse().map_err(|_| "period is not a number".to_owned())?,
            "algorithm" => {
                algorithm = match v.to_ascii_uppercase().as_str() {
                    "SHA1" => Algorithm::SHA1,
                    "SHA256" => Algorithm::SHA256,
                    "SHA512" => Algorithm::SHA512,
                    _ => return Err("an algorithm other than SHA1, SHA256, SHA512".into()),
                }
            }
            _ => {}
        }
    }
    let secret = secret.ok_or("an otpauth URI without a secret")?;
    let bytes = Zeroizing::new(
        totp_rs::Secret::Encoded(secret.to_string())
            .to_bytes()
            .map_err(|_| "the URI's secret is not base32".to_owned())?,
    );
    if bytes.len() < 10 {
        return Err("the secret is shorter than 80 bits".into());
    }
    if !(6..=10).contains(&digits) || !(1..=3600).contains(&period) {
        return Err("the URI's digits or period are out of range".into());
    }
    Ok(TOTP::new_unchecked(
        algorithm,
        digits,
        1,
        period,
        bytes.to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> CkResult<Secret> {
        crate::config::files::read_secret_file(p).map_err(|_| CKR_FUNCTION_FAILED)
    }

    fn load(slot: CK_SLOT_ID, p: &Path, period: u64, digits: usize) -> CkResult<TOTP> {
        authenticator(slot, &read(p)?, p, period, digits)
    }

    fn code_of(
        p: &Path,
        period: u64,
        digits: usize,
        key: &str,
        used: &UsedSteps,
    ) -> CkResult<Secret> {
        code(0, &read(p)?, p, period, digits, key, used)
    }
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

    fn claimed_steps(used: &UsedSteps, key: &str, n: usize, period: u64, p: &Path) -> Vec<String> {
        (0..n)
            .map(|_| {
                code_of(p, period, 6, key, used)
                    .unwrap()
                    .expose()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn never_offers_a_step_twice_in_one_process() {
        let (_d, p) = secret_file(RFC_SECRET, 0o600);
        let used = UsedSteps::at(None);
        let period = 1;
        let totp = load(0, &p, period, 6).unwrap();
        // Each code is of the step it claimed; the second claim, within the same step or later (a
        // loaded machine may pause between them), gets a later step.
        let first = claimed_steps(&used, "c", 1, period, &p).remove(0);
        let first_step = used.local.lock()["c"];
        let second = claimed_steps(&used, "c", 1, period, &p).remove(0);
        let second_step = used.local.lock()["c"];
        assert!(second_step > first_step, "{second_step} after {first_step}");
        assert_eq!(first, totp.generate(first_step * period));
        assert_eq!(second, totp.generate(second_step * period));
        // Steps are per credential.
        code_of(&p, period, 6, "other", &used).unwrap();
        assert_eq!(used.local.lock()["c"], second_step);
    }

    #[test]
    fn two_processes_sharing_the_store_never_use_the_same_step() {
        let (d, p) = secret_file(RFC_SECRET, 0o600);
        let store = d.path().join("steps");
        // Two stores on one file stand for two processes; threads of each sign at the same time.
        let a = UsedSteps::at(Some(store.clone()));
        let b = UsedSteps::at(Some(store.clone()));
        let codes: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = [&a, &b, &a, &b]
                .into_iter()
                .map(|u| s.spawn(|| claimed_steps(u, "seal", 1, 1, &p)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            codes.len(),
            "every code is of its own step: {codes:?}"
        );
        let mode = std::fs::metadata(&store).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(parse(&std::fs::read_to_string(&store).unwrap()).contains_key("seal"));
    }

    #[test]
    fn a_store_that_is_not_a_private_file_is_refused() {
        let (d, p) = secret_file(RFC_SECRET, 0o600);
        let store = d.path().join("steps");
        std::fs::write(&store, "").unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
        let used = UsedSteps::at(Some(store));
        assert_eq!(
            code_of(&p, 30, 6, "c", &used).unwrap_err(),
            CKR_FUNCTION_FAILED
        );
    }

    #[test]
    fn otpauth_uris_and_base64_secrets_are_understood() {
        // RFC 6238's SHA-1 secret as a URI with 8 digits and a 30 s period ...
        let uri = format!(
            "otpauth://totp/Seal:seal?secret={RFC_SECRET}&digits=8&period=30&algorithm=SHA1"
        );
        let (_d, p) = secret_file(&uri, 0o600);
        let totp = load(0, &p, 60, 6).unwrap();
        assert_eq!(
            (totp.digits, totp.step),
            (8, 30),
            "the URI's digits and period apply"
        );
        assert_eq!(totp.generate(59), "94287082");
        // ... and in base64, as SSL.com hands it out ("12345678901234567890").
        let (_d, p) = secret_file("MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=\n", 0o600);
        assert_eq!(load(0, &p, 30, 8).unwrap().generate(59), "94287082");
        let (_d, p) = secret_file("base64:MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=", 0o600);
        assert_eq!(load(0, &p, 30, 8).unwrap().generate(59), "94287082");
        let (_d, p) = secret_file(&format!("otpauth://hotp/x?secret={RFC_SECRET}"), 0o600);
        assert_eq!(load(0, &p, 30, 6).unwrap_err(), CKR_FUNCTION_FAILED);
    }
}
