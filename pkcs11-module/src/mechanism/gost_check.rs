//! The check of GOST R 34.10-2012 signatures: OpenSSL's GOST engine (Debian's `libengine-gost-openssl`)
//! run as `openssl pkeyutl -verify` in a child process, given the public key, the hash and the signature
//! on pipes.
//!
//! Why this way, and not in process:
//! - there is no well-kept Rust implementation of GOST R 34.10, and GOST arithmetic is never written here;
//! - the GOST provider that package ships for OpenSSL 3 (gost-engine 3.0.x) has digests and ciphers but no
//!   key management or signatures (those came to the provider after the last release); only the engine
//!   verifies. Loading an engine registers its ciphers, digests and key methods in libcrypto's global
//!   tables, which the application that loaded this module shares: an OpenSSL application would find its
//!   own OpenSSL state changed. In a child process the application's OpenSSL state is untouched, and the
//!   module links no OpenSSL at all;
//! - the child gets an empty environment and `OPENSSL_CONF=/dev/null`, so no configuration of the
//!   application (which may load this very module through a PKCS#11 engine or provider) reaches it.
//!
//! A missing `openssl` or engine is never a silent success: the signature is not returned
//! (CKR_DEVICE_ERROR) and the log says what to install. The check costs one short-lived process (about
//! 20 ms), small next to a remote signature the user confirms.

use super::gost::GostSize;
use crate::child;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where Debian's `openssl` is; the `openssl_path` configuration key names another.
pub const DEFAULT_OPENSSL: &str = "/usr/bin/openssl";
/// Ample for one verification; a hung child is ended.
const TIMEOUT: Duration = Duration::from_secs(10);
/// What `openssl pkeyutl -verify` prints for each verdict.
const VERIFIED: &str = "Signature Verified Successfully";
const NOT_VERIFIED: &str = "Signature Verification Failure";
const INSTALL: &str = "GOST R 34.10-2012 signatures are checked with OpenSSL's GOST engine: \
                       install the packages openssl and libengine-gost-openssl";

/// A GOST public key as the check takes it.
#[derive(Clone)]
pub struct GostKey {
    /// DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
    pub size: GostSize,
    openssl: PathBuf,
}

impl GostKey {
    pub fn new(spki_der: &[u8], size: GostSize) -> Option<GostKey> {
        (!spki_der.is_empty()).then(|| GostKey {
            spki: spki_der.to_vec(),
            size,
            openssl: PathBuf::from(DEFAULT_OPENSSL),
        })
    }

    /// The same key, checked with the `openssl` program at `path`.
    pub fn with_openssl(mut self, path: &Path) -> GostKey {
        self.openssl = path.to_path_buf();
        self
    }
}

/// Whether `sig` (PKCS#11 order, s || r) is a signature of `hash` under `key`. `Err`: the check could not
/// be made, with what to do about it.
pub fn verify(key: &GostKey, hash: &[u8], sig: &[u8]) -> Result<bool, String> {
    if hash.len() != key.size.hash().len() || sig.len() != 2 * key.size.half_len() {
        return Ok(false);
    }
    let key_pipe = pipe_with(&key.spki).map_err(|e| format!("{INSTALL} (pipe: {e})"))?;
    let sig_pipe = pipe_with(sig).map_err(|e| format!("{INSTALL} (pipe: {e})"))?;
    let (key_fd, sig_fd) = (key_pipe.as_raw_fd(), sig_pipe.as_raw_fd());
    let mut command = Command::new(&key.openssl);
    command
        .args([
            "pkeyutl", "-engine", "gost", "-verify", "-pubin", "-keyform", "DER",
        ])
        .args(["-inkey", "/dev/fd/3", "-sigfile", "/dev/fd/4"])
        .env_clear()
        .env("OPENSSL_CONF", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only dup2 runs, which is async-signal-safe; the descriptors are
    // open (owned by the pipes above, alive until after spawn). dup2 leaves the copies without
    // FD_CLOEXEC, so the program inherits exactly fds 3 and 4.
    unsafe {
        command.pre_exec(move || {
            for (from, to) in [(key_fd, 3), (sig_fd, 4)] {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("{INSTALL} ({}: {e})", key.openssl.display()))?;
    drop((key_pipe, sig_pipe));
    if let Some(mut stdin) = child.stdin.take() {
        // A hash fits any pipe buffer; a child that died early makes this fail, and its verdict decides.
        let _ = stdin.write_all(hash);
    }
    let stderr = child.stderr.take();
    let (out, _status) = child::collect(&mut child, TIMEOUT, 4096).map_err(|e| {
        format!(
            "{INSTALL} ({} pkeyutl did not answer: {e:?})",
            key.openssl.display()
        )
    })?;
    let out = String::from_utf8_lossy(&out);
    if out.contains(VERIFIED) {
        return Ok(true);
    }
    if out.contains(NOT_VERIFIED) {
        return Ok(false);
    }
    let detail = stderr
        .map(|mut e| {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
            text.lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with("Engine "))
                .unwrap_or("")
                .trim()
                .chars()
                .take(200)
                .collect::<String>()
        })
        .unwrap_or_default();
    Err(format!(
        "{INSTALL} ({} pkeyutl gave no verdict: {detail})",
        key.openssl.display()
    ))
}

/// The read end of a pipe that already holds `data` (at most a few hundred bytes, far below a pipe's
/// capacity) and whose write end is closed, so the reader sees `data` and then end of file. The
/// descriptor is above 9, so that the child's dup2 onto 3 and 4 can neither clobber the other pipe nor
/// be a no-op that keeps FD_CLOEXEC.
fn pipe_with(data: &[u8]) -> std::io::Result<OwnedFd> {
    let mut fds: [RawFd; 2] = [-1; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success; O_CLOEXEC keeps them out of any
    // other child this process starts.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut write = std::fs::File::from(write);
    write.write_all(data)?;
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new descriptor (or -1), nothing else.
    let high = unsafe { libc::fcntl(read.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if high < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `high` was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}
