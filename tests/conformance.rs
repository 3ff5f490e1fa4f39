//! OpenSC's PKCS#11 conformance suite, p11test (built from Debian's opensc source package by
//! tests/conformance/build-p11test.sh, which tests/run.sh runs), against the built module and a real
//! csc-server (issue 11, Build): once in the default configuration and once with
//! `always_authenticate = true`, where p11test makes a context login with the PIN before every
//! signature. Any test p11test reports as failed fails this one.
//!
//! The token is alice's (RSA-2048, RSA-3072, P-256, P-384; TOTP, SMS and out-of-band approval
//! credentials), unattended: the application (p11test) gives the PIN, the module takes every code from
//! the shipped test prompt (examples/prompt/test-prompt.sh, which reads the service's demo phone and
//! outbox), and a thread of this test approves on the approval page whatever the module asks to be
//! approved. p11test's own skips are printed: `wait_test` needs a person at a card reader (`-i`),
//! `pss_oaep_test` runs only with RSA keys that also decrypt.

use cryptoki_sys::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::child::wait_deadline;
use support::page::Page;
use support::paths::target_dir;
use support::prelude::*;

const PERIOD: u64 = 2;

fn p11test() -> PathBuf {
    let p = std::env::var_os("P11TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("conformance/p11test-cloudtoken"));
    assert!(
        p.exists(),
        "{} missing: run `bash tests/conformance/build-p11test.sh` (tests/run.sh does) with the same \
         CARGO_TARGET_DIR",
        p.display()
    );
    p
}

/// What one p11test run said.
struct Outcome {
    failed: Vec<String>,
    skipped: Vec<String>,
    status: String,
    output: String,
}

/// Runs p11test on the token labelled `label` of `config`, approving on alice's approval page meanwhile.
fn run_p11test(svc: &Service, config: &Path, label: &str) -> Outcome {
    // p11test calls C_Initialize(NULL): the configuration comes from CLOUDTOKEN_CONFIG.
    let p = p11();
    assert_rv(p.initialize_with_config(config), CKR_OK, "C_Initialize");
    let slot = p.slot_of(label);
    assert_rv(p.finalize(), CKR_OK, "C_Finalize");

    let stop = Arc::new(AtomicBool::new(false));
    let approver = {
        let stop = stop.clone();
        let mut page = Page::sign_in(svc, "alice");
        std::thread::spawn(move || {
            let mut approved = 0;
            while !stop.load(Ordering::Relaxed) {
                if page.decide_now(None, "approve").is_some() {
                    approved += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            approved
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("p11test.json");
    let pin = svc.demo.token_of("alice").pin.clone();
    let mut child = Command::new(p11test())
        .arg("-m")
        .arg(support::module_path())
        .args(["-s", &slot.to_string(), "-p", &pin, "-o"])
        .arg(&json)
        .env("CLOUDTOKEN_CONFIG", config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start p11test");
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let status = wait_deadline(&mut child, Duration::from_secs(600));
    stop.store(true, Ordering::Relaxed);
    let approved = approver.join().unwrap();
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    let listed = |tag: &str| -> Vec<String> {
        output
            .lines()
            .filter_map(|l| l.strip_prefix(tag))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty() && !t.contains("test(s)"))
            .collect()
    };
    let mut failed = listed("[  FAILED  ]");
    failed.sort();
    failed.dedup();
    let mut skipped = listed("[  SKIPPED ]");
    skipped.sort();
    skipped.dedup();
    eprintln!(
        "p11test on {label}: failed {failed:?}, skipped {skipped:?} (p11test's own), {approved} \
         approvals given"
    );
    Outcome {
        failed,
        skipped,
        status: status.map_or("still running after 600 s (killed)".into(), |s| {
            s.to_string()
        }),
        output,
    }
}

/// A configuration of alice's unattended token `label` with `extra` lines.
fn config(svc: &Service, dir: &Path, label: &str, extra: &str) -> PathBuf {
    let prompt = PromptDir::new(dir.join("prompt"), svc, &svc.demo.token_of("alice").pin);
    let token = token_toml(
        svc,
        label,
        "alice",
        &format!(
            "{}approval_timeout_ms = 60000\n{extra}",
            prompt.command_toml()
        ),
    );
    write_config(dir, "info", &dir.join("module.log"), &[token])
}

fn p11test_passes(label: &str, extra: &str) {
    let svc = Service::start_fresh_init_serve(&["--totp-period", &PERIOD.to_string()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = config(&svc, dir.path(), label, extra);
    let o = isolated(|_| run_p11test(&svc, &config, label));
    assert!(
        o.failed.is_empty() && o.status.contains("exit status: 0"),
        "p11test on {label}: {} failed ({}), p11test {}; skipped by p11test: {:?}\n--- output\n{}",
        o.failed.len(),
        o.failed.join(", "),
        o.status,
        o.skipped,
        o.output
    );
}

#[test]
fn p11test_passes_in_the_default_configuration() {
    p11test_passes("Conformance", "");
}

#[test]
fn p11test_passes_with_always_authenticate() {
    p11test_passes("Conformance Always", "always_authenticate = true\n");
}
