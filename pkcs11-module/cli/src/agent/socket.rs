//! Where the agent's socket lives, and who may reach it: a folder only the user can enter (0700), a
//! socket file only the user can open (0600), and — checked per connection — a peer of the same user.

use crate::words::{Failure, Outcome};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// The listening socket and what to remove when the agent ends.
pub struct Bound {
    pub listener: UnixListener,
    pub path: PathBuf,
    /// A private folder created for this agent alone (removed with the socket).
    own_dir: Option<tempfile::TempDir>,
}

impl Bound {
    /// Removes the socket (and its private folder). Safe to call more than once.
    pub fn remove(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(d) = self.own_dir.take() {
            let _ = d.close();
        }
    }
}

/// `$XDG_RUNTIME_DIR/cloudtoken/agent.PID.sock`, else a fresh private temporary folder.
fn default_place() -> Outcome<(PathBuf, Option<tempfile::TempDir>)> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|d| d.is_dir());
    if let Some(runtime) = runtime {
        let dir = runtime.join("cloudtoken");
        cloudtoken::runtime::ensure_private_dir(&dir).map_err(|e| {
            Failure(format!(
                "The agent's folder is not private, so it is not used: {e}."
            ))
        })?;
        let path = dir.join(format!("agent.{}.sock", std::process::id()));
        return Ok((path, None));
    }
    let dir = tempfile::Builder::new()
        .prefix("cloudtoken-agent-")
        .tempdir()
        .map_err(|e| {
            Failure(format!(
                "A private folder for the agent cannot be created: {e}."
            ))
        })?;
    // mkdtemp makes it 0700 already; say so explicitly rather than rely on it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Failure(format!("The agent's folder cannot be made private: {e}.")))?;
    let path = dir.path().join("agent.sock");
    Ok((path, Some(dir)))
}

/// Creates the listening socket at `given` or the default place.
pub fn bind(given: Option<PathBuf>) -> Outcome<Bound> {
    let (path, own_dir) = match given {
        Some(p) => (p, None),
        None => default_place()?,
    };
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        let answering = std::os::unix::net::UnixStream::connect(&path).is_ok();
        if !meta.file_type().is_socket() || answering {
            return Err(Failure(format!(
                "{} is already in use{}; choose another --socket.",
                path.display(),
                if answering { " by a running agent" } else { "" }
            )));
        }
        // A socket nobody answers on: left behind by an agent that was killed.
        let _ = std::fs::remove_file(&path);
    }
    // No moment in which the socket is open to others: it is created 0600 under this umask.
    // SAFETY: umask only swaps the process's file mode mask. It is process-wide: a file another thread
    // creates in this window gets a stricter mode, never a looser one.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(&path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| {
        Failure(format!(
            "The agent's socket {} cannot be created: {e}.",
            path.display()
        ))
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        let _ = std::fs::remove_file(&path);
        Failure(format!("The agent's socket cannot be made private: {e}."))
    })?;
    Ok(Bound {
        listener,
        path,
        own_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn socket_is_private_and_a_live_one_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let mut b = bind(Some(path.clone())).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let e = bind(Some(path.clone())).err().unwrap();
        assert!(e.0.contains("running agent"), "{e}");
        // A stale socket (its listener gone) is replaced.
        drop(std::mem::replace(
            &mut b.listener,
            UnixListener::bind(dir.path().join("other")).unwrap(),
        ));
        let mut again = bind(Some(path.clone())).unwrap();
        again.remove();
        assert!(!path.exists());
        // A regular file is never removed.
        std::fs::write(&path, "x").unwrap();
        assert!(bind(Some(path.clone())).is_err());
        assert!(path.exists());
    }

    #[test]
    fn default_place_is_a_private_folder() {
        let runtime = tempfile::tempdir().unwrap();
        std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // Threads of the test harness share the environment; this test is the only one touching it.
        std::env::set_var("XDG_RUNTIME_DIR", runtime.path());
        let (path, own) = default_place().unwrap();
        std::env::remove_var("XDG_RUNTIME_DIR");
        assert!(own.is_none());
        assert!(path.starts_with(runtime.path().join("cloudtoken")));
        let mode = std::fs::metadata(runtime.path().join("cloudtoken"))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(
            runtime.path().join("cloudtoken"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::env::set_var("XDG_RUNTIME_DIR", runtime.path());
        let refused = default_place();
        std::env::remove_var("XDG_RUNTIME_DIR");
        assert!(refused.err().unwrap().0.contains("not private"));
    }
}
