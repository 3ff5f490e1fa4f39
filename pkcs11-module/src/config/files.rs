//! The secure-file policy, one place for every file the module trusts: the configuration, secret files
//! (refresh token, password, PIN, TOTP secret) and the prompt program.
//!
//! A file is opened once and checked on the open handle (fstat), then read from that same handle, so
//! nothing can be swapped in between the check and the read. Calls nothing else of the crate.

use remote_client::Secret;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What a file may be, beyond being a regular file owned by the user or root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The configuration: it decides where the PIN goes, so nobody else may change it.
    NotWritableByOthers,
    /// A secret: nobody else may read or change it (mode 0600 or stricter).
    Private,
}

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest secret file read (a refresh token, a PIN, a base32 secret).
const MAX_SECRET_BYTES: u64 = 64 * 1024;

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Files of other users are refused whatever their mode: they could change them at any time.
fn check_owner(meta: &std::fs::Metadata) -> Result<(), String> {
    if meta.uid() != 0 && meta.uid() != euid() {
        return Err(format!(
            "refused: owned by uid {}, not by you or root",
            meta.uid()
        ));
    }
    Ok(())
}

/// The checks of `policy` on the metadata of an opened file.
fn check_meta(meta: &std::fs::Metadata, policy: Policy) -> Result<(), String> {
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    check_owner(meta)?;
    match policy {
        Policy::NotWritableByOthers if meta.mode() & 0o022 != 0 => Err(
            "refused: writable by group or others (it decides where the PIN goes; chmod go-w)"
                .into(),
        ),
        Policy::Private if meta.mode() & 0o077 != 0 => {
            Err("refused: group or others have access (chmod 600)".into())
        }
        _ => Ok(()),
    }
}

/// Opens `path` and checks the opened file against `policy`. Errors name the file. The open does not
/// block (a FIFO or a device put in the file's place is refused, not waited on).
pub fn open_checked(path: &Path, policy: Policy) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let named = |e: String| format!("{}: {e}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| named(e.to_string()))?;
    let meta = file.metadata().map_err(|e| named(e.to_string()))?;
    check_meta(&meta, policy).map_err(named)?;
    Ok(file)
}

/// Reads at most `limit` bytes of an opened file; more is an error.
fn read_bounded(path: &Path, file: File, limit: u64) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut buf = Zeroizing::new(Vec::new());
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > limit {
        return Err(format!("{}: larger than {limit} bytes", path.display()));
    }
    Ok(buf)
}

/// The configuration's text, checked and read through one open handle.
pub fn read_config(path: &Path) -> Result<String, String> {
    let file = open_checked(path, Policy::NotWritableByOthers)?;
    let bytes = read_bounded(path, file, MAX_CONFIG_BYTES)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

/// Checks a secret file without keeping its content (at configuration time).
pub fn check_secret_file(path: &Path) -> Result<(), String> {
    open_checked(path, Policy::Private).map(drop)
}

/// A secret file's first line, without its line end, checked and read through one open handle (it may
/// have changed since C_Initialize).
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let file = open_checked(path, Policy::Private)?;
    let bytes = read_bounded(path, file, MAX_SECRET_BYTES)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(Secret::new(line))
}

/// Secret files read while the configuration was checked, kept (zeroizing) for their first use, so that
/// each is opened once for the check and that use; later uses read the file again (another process may
/// have rotated a refresh token meanwhile). Shared by the clones of one token's configuration.
#[derive(Clone, Default)]
pub struct Preloaded(
    std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<PathBuf, Secret>>>,
);

impl std::fmt::Debug for Preloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Preloaded({} secret files)", self.0.lock().len())
    }
}

impl Preloaded {
    /// Checks and reads a secret file now.
    pub fn load(&self, path: &Path) -> Result<(), String> {
        let secret = read_secret_file(path)?;
        self.0.lock().insert(path.to_path_buf(), secret);
        Ok(())
    }

    /// The secret: the one read at the check, once, else the file's current one.
    pub fn read(&self, path: &Path) -> Result<Secret, String> {
        match self.0.lock().remove(path) {
            Some(s) => Ok(s),
            None => read_secret_file(path),
        }
    }
}

/// Replaces a secret file's content (a rotated refresh token) atomically, keeping mode 0600.
pub fn write_secret_file(path: &Path, value: &Secret) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(value.expose().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| format!("{}: {e}", path.display()))
}

/// A program the module runs and trusts — the prompt (`prompt_command`) sees the user's PIN and codes, the
/// GOST check (`openssl_path`) decides which signatures are returned: it must be an absolute path to an
/// executable file of ours or root's that group and others cannot change. `key` names the setting in the
/// messages. (It is run by path afterwards: a program cannot be executed through an open handle when it is
/// a script, so this check and the run are two steps; the owner rule is what keeps others from changing it
/// in between.)
pub fn check_program(key: &str, path: &Path) -> Result<(), String> {
    let named = |e: String| format!("{key} {}: {e}", path.display());
    if !path.is_absolute() {
        return Err(format!(
            "{key} {:?}: give the program's path, not a name looked up in PATH",
            path.display()
        ));
    }
    let meta = std::fs::metadata(path).map_err(|e| named(e.to_string()))?;
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(named("not an executable file".into()));
    }
    check_owner(&meta).map_err(named)?;
    if meta.mode() & 0o022 != 0 {
        return Err(named(
            "refused: writable by group or others (the module trusts what it says; chmod go-w)"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn writes_secret_file_atomically_with_mode_600() {
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path(), "refresh", "old\n", 0o600);
        write_secret_file(&p, &Secret::new("new-token")).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new-token\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_secret_file(&p).unwrap().expose(), "new-token");
    }

    #[test]
    fn secrets_must_be_private_regular_nonempty_files() {
        let d = tempfile::tempdir().unwrap();
        let open = file(d.path(), "open", "s\n", 0o640);
        assert!(read_secret_file(&open).unwrap_err().contains("chmod 600"));
        let empty = file(d.path(), "empty", "\n", 0o600);
        assert!(read_secret_file(&empty).unwrap_err().contains("empty"));
        assert!(read_secret_file(d.path())
            .unwrap_err()
            .contains("not a regular file"));
        let big = file(d.path(), "big", &"x".repeat(70_000), 0o600);
        assert!(read_secret_file(&big).unwrap_err().contains("larger than"));
    }

    #[test]
    fn the_check_and_the_read_see_the_same_file() {
        // A symlink swapped after the open cannot change what is read: the handle stays on the file that
        // was checked.
        let d = tempfile::tempdir().unwrap();
        let good = file(d.path(), "good", "good-secret\n", 0o600);
        let bad = file(d.path(), "bad", "bad-secret\n", 0o644);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        let f = open_checked(&link, Policy::Private).unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&bad, &link).unwrap();
        let text = read_bounded(&link, f, 100).unwrap();
        assert_eq!(&text[..], b"good-secret\n");
        // And the swapped-in file is refused on its own.
        assert!(read_secret_file(&link).is_err());
    }

    #[test]
    fn a_fifo_in_place_of_a_file_is_refused_without_waiting() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read_secret_file(&fifo)
            .unwrap_err()
            .contains("not a regular file"));
        assert!(read_config(&fifo)
            .unwrap_err()
            .contains("not a regular file"));
    }

    #[test]
    fn config_may_be_readable_but_not_writable_by_others() {
        let d = tempfile::tempdir().unwrap();
        let ok = file(d.path(), "ok.toml", "x = 1\n", 0o644);
        assert_eq!(read_config(&ok).unwrap(), "x = 1\n");
        let bad = file(d.path(), "bad.toml", "x = 1\n", 0o664);
        assert!(read_config(&bad).unwrap_err().contains("chmod go-w"));
    }
}
