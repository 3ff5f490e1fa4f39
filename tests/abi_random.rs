//! Bounded randomized ABI sequences (issue 11, conformance): thousands of random call sequences over
//! every C_* function (tests/bin/p11_abi_fuzz.rs: NULL pointers, huge lengths, bad and stale handles,
//! wrong order, random mechanisms and attributes) against the built module, in child processes, so a
//! crash or an abort is a detected failure and not a lost runner; a sequence that does not end within
//! its deadline is a hang. Every return value must be one the specification lists for the function.
//!
//! Remote work is bounded: the tokens reach the service through the fault proxy, which forwards the
//! first FORWARDED authorization and signing requests (a few real signatures) and answers every later
//! one at once with a CSC error. The seed is fixed (CT_ABI_SEED overrides it) and printed with every failure,
//! with the command that replays one sequence; CT_ABI_SEQUENCES changes how many run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::config::{token_toml_via, totp_file_toml, unattended_toml};
use support::fault_proxy::FaultProxy;
use support::paths::test_program;
use support::prelude::*;

const SEED: u64 = 0x5eed_c10d_0011;
const SEQUENCES: u64 = 3000;
const FORWARDED: usize = 150;
/// A sequence of at most 40 calls that takes longer hangs.
const PER_SEQUENCE: Duration = Duration::from_secs(20);
/// Hangs after which the run stops (each costs PER_SEQUENCE); a crash only costs a new process.
const MAX_HANGS: usize = 3;
/// The run stops here whatever is left (CI budget: the whole test under two minutes).
const TIME_BUDGET: Duration = Duration::from_secs(90);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs sequences `first..end` in one fuzzer process; returns the next sequence to run and what
/// happened: violations (lines), and an incident when the process crashed or hung.
fn run_from(
    config: &Path,
    pin: &str,
    seed: u64,
    first: u64,
    end: u64,
) -> (u64, Vec<String>, Option<String>) {
    let mut child = Command::new(test_program("p11-abi-fuzz"))
        .arg(config)
        .arg(pin)
        .arg(seed.to_string())
        .arg(first.to_string())
        .arg((end - first).to_string())
        .env_remove("CLOUDTOKEN_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("CT_ABI_VERBOSE").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("start p11-abi-fuzz");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut violations = Vec::new();
    let mut current = first;
    loop {
        match rx.recv_timeout(PER_SEQUENCE) {
            Ok(line) => {
                let mut parts = line.splitn(2, ' ');
                match (parts.next(), parts.next()) {
                    (Some("S"), Some(i)) => current = i.parse().unwrap(),
                    (Some("E"), _) => {}
                    (Some("V" | "N"), _) => violations.push(line),
                    _ => {}
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return (
                    current + 1,
                    violations,
                    Some(format!(
                        "sequence {current} hung: no progress for {PER_SEQUENCE:?} (killed)"
                    )),
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().unwrap();
    if status.success() {
        (end, violations, None)
    } else {
        (
            current + 1,
            violations,
            Some(format!("sequence {current} crashed the process: {status}")),
        )
    }
}

#[test]
fn random_call_sequences_never_crash_hang_or_answer_an_unlisted_code() {
    let svc = Service::start_fresh_init_serve(&["--totp-period", "2"], &[]);
    let proxy = FaultProxy::start(&svc);
    // Authorizations and signatures are bounded; reading credentials is not (bounded anyway by the
    // fuzzer's few re-initializations), so that sessions keep opening.
    proxy.limit_forwarding(
        FORWARDED,
        &[
            "/credentials/authorize",
            "/signatures/",
            "/credentials/sendOTP",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let via = |label: &str, extra: &str| {
        token_toml_via(
            &svc,
            &proxy.url,
            &proxy.ca_file(),
            label,
            "alice",
            &format!("request_timeout_ms = 3000\nconnect_timeout_ms = 3000\napproval_timeout_ms = 1000\n{extra}"),
        )
    };
    let tokens = [
        via(
            "Fuzz PIN",
            &totp_file_toml(&svc, dir.path(), "alice-p256", 2),
        ),
        via(
            "Fuzz Free",
            &unattended_toml(&svc, dir.path(), "alice-rsa2048", 2),
        ),
    ];
    let config = write_config(dir.path(), "error", &dir.path().join("module.log"), &tokens);
    let pin = svc.demo.token_of("alice").pin.clone();
    let seed = env_u64("CT_ABI_SEED", SEED);
    let total = env_u64("CT_ABI_SEQUENCES", SEQUENCES);

    let started = Instant::now();
    let (mut next, mut violations, mut incidents) = (0, Vec::new(), Vec::new());
    let hangs = |i: &[String]| i.iter().filter(|x| x.contains("hung")).count();
    while next < total && hangs(&incidents) < MAX_HANGS && started.elapsed() < TIME_BUDGET {
        let (after, v, incident) = run_from(&config, &pin, seed, next, total);
        violations.extend(v);
        incidents.extend(incident);
        next = after;
    }
    let took = started.elapsed();
    eprintln!(
        "abi_random: {next} of {total} sequences in {took:?}, {} violations, {} incidents, {} requests \
         forwarded to the service",
        violations.len(),
        incidents.len(),
        proxy.forwarded()
    );
    let failed = !incidents.is_empty() || !violations.is_empty() || next < total;
    // Kept for a replay (the service is gone by then: calls that need it fail at once).
    let kept = if failed { Some(dir.keep()) } else { None };
    // One example per function and code, with how often it came.
    let kind = |v: &String| v.split(' ').skip(3).take(2).collect::<Vec<_>>().join(" ");
    let mut kinds: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for v in &violations {
        kinds.entry(kind(v)).or_insert((0, v.clone())).0 += 1;
    }
    let report: Vec<String> = kinds
        .values()
        .map(|(n, example)| format!("{n} x, e.g. {example}"))
        .collect();
    assert!(
        !failed,
        "seed {seed}: {next} of {total} sequences ran in {took:?}; {} incidents {incidents:#?}\n{} distinct violations (V sequence call function \
         code arguments; N function = both CKR_FUNCTION_NOT_SUPPORTED and CKR_OK):\n{}\nReplay one \
         sequence: CT_ABI_VERBOSE=1 {} {} {pin} {seed} SEQUENCE 1, or rerun the test with \
         CT_ABI_SEED={seed}.",
        incidents.len(),
        report.len(),
        report.join("\n"),
        test_program("p11-abi-fuzz").display(),
        kept.map(|d| d.join("cloudtoken.toml").display().to_string()).unwrap_or_default()
    );
}
