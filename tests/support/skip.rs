//! Visible skips. A test that cannot check its rule on this machine (it needs root, or a system file it
//! must not touch is in the way) says so here instead of returning early: the skip is printed on
//! standard error and appended to `<target>/<profile>/test-skips.txt`, which tests/run.sh empties before
//! the run and prints and counts after it. With `CLOUDTOKEN_TESTS_NO_SKIP` set (tests/run.sh sets it in
//! CI) a skip is a failure with the same reason.

use crate::paths::target_profile_dir;
use std::io::Write;

/// Where the skips of a run are collected.
pub fn skip_file() -> std::path::PathBuf {
    target_profile_dir().join("test-skips.txt")
}

/// Records that the running test skips (part of) its check because of `reason`. The caller returns
/// right after. Panics instead when skips are not allowed.
pub fn skip(reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let bin = exe.rsplit_once('-').map_or(exe.as_str(), |(b, _)| b);
    let line = format!("SKIPPED {bin}::{test}: {reason}");
    if std::env::var_os("CLOUDTOKEN_TESTS_NO_SKIP").is_some() {
        panic!("{line} (CLOUDTOKEN_TESTS_NO_SKIP is set: a skip is a failure)");
    }
    eprintln!("{line}");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_file())
        .expect("open the skip list");
    writeln!(f, "{line}").expect("record the skip");
}

/// Whether this process runs as root (some checks act as another user).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}
