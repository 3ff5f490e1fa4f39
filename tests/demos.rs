//! The README's demos, as a newcomer runs them (no standard input), on the binaries of this build:
//! `examples/demo.sh` (pdfsig and NSS cmsutil through the module, each signature verified with openssl)
//! and `examples/batch-sign.sh` (several pdfsig processes under one SMS code). Each starts and stops
//! its own reference service; and `examples/demo-globalsign.sh` (pkcs11-tool, pdfsig and
//! pkcs11-provider against the GlobalSign DSS emulator).

use std::process::{Command, Stdio};
use support::tools::text;
use support::{repo_root, target_profile_dir};

/// One demo at a time: each is meant to have the machine to itself, as for a person trying it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `script args` from the repository root under a 10-minute bound; its exit status and output.
fn run_demo(script: &str, args: &[&str]) -> (bool, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let out = Command::new("timeout")
        .args(["600", "bash", script])
        .args(args)
        .current_dir(repo_root())
        .env("CLOUDTOKEN_BIN_DIR", target_profile_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.success(), said)
}

#[test]
fn demo_signs_a_pdf_and_a_cms_file_and_verifies_both() {
    let (ok, said) = run_demo("examples/demo.sh", &[]);
    assert!(ok, "examples/demo.sh failed:\n{said}");
    for expected in [
        "pdfsig: signature valid, certificate trusted; openssl cms -verify of the embedded signature: OK",
        "openssl cms -verify contract.p7s against the demo CA: OK",
    ] {
        assert!(said.contains(expected), "{expected:?} missing:\n{said}");
    }
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.contains("done: the keys never left the service"),
        "last line {last:?}"
    );
}

#[test]
fn batch_sign_signs_every_pdf_with_one_code() {
    let (ok, said) = run_demo("examples/batch-sign.sh", &["4"]);
    assert!(ok, "examples/batch-sign.sh failed:\n{said}");
    let last = said.lines().last().unwrap_or_default();
    assert_eq!(
        last, "signed 4/4, verified 4/4, one-time codes delivered: 1",
        "\n{said}"
    );
}

#[test]
fn demo_globalsign_verifies_every_signature() {
    let (ok, said) = run_demo("examples/demo-globalsign.sh", &[]);
    assert!(ok, "examples/demo-globalsign.sh failed:\n{said}");
    let last = said.lines().last().unwrap_or_default();
    let counts = last
        .strip_prefix("verified ")
        .and_then(|r| r.strip_suffix(" signatures"))
        .and_then(|r| r.split_once('/'));
    assert!(
        matches!(counts, Some((v, s)) if v == s && s.parse::<u32>().is_ok_and(|n| n > 0)),
        "last line {last:?}\n{said}"
    );
}
