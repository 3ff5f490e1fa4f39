//! Where things are: the binaries the workspace build made (`csc-server`, `cloudtoken`, the module),
//! found next to the running test executable, and files of the repository the tests use as shipped.
//!
//! The test executable lives in `<target>/<profile>/deps/`, so `<target>` follows `CARGO_TARGET_DIR`
//! and the profile of the `cargo test` that built it; the README test command builds the workspace
//! once (`cargo build`) before `cargo test` in the same profile. Each binary can be overridden by an
//! environment variable (`CSC_SERVER_BIN`, `GLOBALSIGN_EMULATOR_BIN`, `CRYPTOPRO_EMULATOR_BIN`,
//! `CLOUDTOKEN_MODULE`, `CLOUDTOKEN_BIN`).

use std::path::{Path, PathBuf};

/// `<target>/<profile>/` of the running test binary (it lives in `<target>/<profile>/deps/`; a program
/// of this crate, in `<target>/<profile>/` itself).
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("executable folder");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// `<target>` itself (`CARGO_TARGET_DIR`, else the workspace's `target/`).
pub fn target_dir() -> PathBuf {
    target_profile_dir()
        .parent()
        .expect("the target folder")
        .to_path_buf()
}

/// A binary of the workspace build, or the path in `env_var` when set.
fn built(env_var: Option<&str>, name: &str) -> PathBuf {
    if let Some(p) = env_var.and_then(std::env::var_os) {
        return PathBuf::from(p);
    }
    let p = target_profile_dir().join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build` in the same profile (and CARGO_TARGET_DIR) before the tests",
        p.display()
    );
    p
}

pub fn csc_server_bin() -> PathBuf {
    built(Some("CSC_SERVER_BIN"), "csc-server")
}

/// The GlobalSign DSS emulator (examples/globalsign-dss-emulator).
pub fn globalsign_emulator_bin() -> PathBuf {
    built(Some("GLOBALSIGN_EMULATOR_BIN"), "globalsign-dss-emulator")
}

/// The CryptoPro DSS emulator (examples/cryptopro-dss-emulator).
pub fn cryptopro_emulator_bin() -> PathBuf {
    built(Some("CRYPTOPRO_EMULATOR_BIN"), "cryptopro-dss-emulator")
}

/// The built PKCS#11 module, `libcloudtoken.so`.
pub fn module_path() -> PathBuf {
    built(Some("CLOUDTOKEN_MODULE"), "libcloudtoken.so")
}

/// The `cloudtoken` command-line tool, built next to the module.
pub fn cloudtoken_bin() -> PathBuf {
    built(Some("CLOUDTOKEN_BIN"), "cloudtoken")
}

/// A program of this crate (`tests/bin/`), built next to the module by the workspace build.
pub fn test_program(name: &str) -> PathBuf {
    built(None, name)
}

/// The repository root (tests/..).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// The test prompt the project ships, examples/prompt/test-prompt.sh: the tests drive the very script
/// users read about.
pub fn test_prompt() -> PathBuf {
    repo_root().join("examples/prompt/test-prompt.sh")
}
