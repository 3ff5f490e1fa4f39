//! The user's private runtime folder, for state several processes of the same user share (the TOTP
//! steps already used): `$XDG_RUNTIME_DIR/cloudtoken`, else `/tmp/cloudtoken-UID`. Either is used only
//! when it is a real folder (not a link) owned by the user with mode 0700; the module creates it so.
//!
//! Calls nothing else of the crate.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Checks that `dir` is a folder (not a link) of ours that nobody else can enter.
pub fn check_private_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    if meta.uid() != euid() {
        return Err(format!(
            "{} belongs to uid {}, not to you",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is open to group or others (mode {:o})",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// Creates `dir` with mode 0700 if it does not exist, then checks it.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        // mkdir's mode is filtered by the process-wide umask: set it exactly.
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    check_private_dir(dir)
}

/// The private runtime folder, created when needed; an error says why none can be used.
pub fn private_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("cloudtoken"),
        None => std::env::temp_dir().join(format!("cloudtoken-{}", euid())),
    };
    ensure_private_dir(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_open_to_others_or_a_link_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good");
        ensure_private_dir(&good).unwrap();
        assert_eq!(
            std::fs::metadata(&good).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(ensure_private_dir(&open)
            .unwrap_err()
            .contains("open to group"));
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert!(check_private_dir(&link)
            .unwrap_err()
            .contains("not a folder"));
    }
}
