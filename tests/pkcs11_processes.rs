//! Unattended signing from several processes at once (issue 11, item 1): copies of a small signing
//! application (tests/bin/p11_signer.rs) load the built module, each with the same login-free token
//! whose PIN and authenticator secret are in files, and sign at the same moment, round after round. A
//! TOTP code can be used once, so the processes must not send a code another one already used: every
//! signature succeeds and the service's audit shows no refused authorization (each refusal counts
//! toward the credential's lockout).

use cryptoki_sys::*;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::child::wait_deadline;
use support::config::unattended_toml;
use support::paths::test_program;
use support::prelude::*;

const PERIOD: u64 = 2;
const CRED: &str = "alice-p256";
const PROCESSES: usize = 4;
const ROUNDS: usize = 3;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn processes_signing_at_the_same_moment_never_reuse_a_totp_code() {
    let svc = Service::start_fresh_init_serve(&["--totp-period", &PERIOD.to_string()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let tokens = [token_toml(
        &svc,
        "Seal",
        "alice",
        &unattended_toml(&svc, dir.path(), CRED, PERIOD),
    )];
    let log = dir.path().join("module.log");
    let config = write_config(dir.path(), "debug", &log, &tokens);
    let key_label = svc.demo.credential(CRED).1.label.clone();
    let mut failures = Vec::new();
    let mut signed = 0;
    for round in 0..ROUNDS {
        let start =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_millis(1500);
        let children: Vec<_> = (0..PROCESSES)
            .map(|i| {
                Command::new(test_program("p11-signer"))
                    .arg(&config)
                    .arg("Seal")
                    .arg(&key_label)
                    .arg(start.as_millis().to_string())
                    .arg("1")
                    .arg(format!("round {round} process {i}"))
                    // One user's processes share the runtime folder, as in a login session.
                    .env("XDG_RUNTIME_DIR", runtime.path())
                    .env_remove("CLOUDTOKEN_CONFIG")
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start p11-signer")
            })
            .collect();
        for (i, mut child) in children.into_iter().enumerate() {
            let status = wait_deadline(&mut child, Duration::from_secs(60));
            let mut out = String::new();
            let mut err = String::new();
            use std::io::Read;
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let who = format!("round {round} process {i}");
            let Some(status) = status else {
                failures.push(format!("{who}: still signing after 60 s"));
                continue;
            };
            let cert = out.lines().find_map(|l| l.strip_prefix("CERT ")).map(unhex);
            let result = out
                .lines()
                .find(|l| l.starts_with("OK ") || l.starts_with("ERR "));
            match (cert, result) {
                (Some(cert), Some(line)) if line.starts_with("OK ") => {
                    let case = Case::of(CKM_ECDSA_SHA256, format!("{who} 0").as_bytes());
                    if case.verifies_for(&cert, &unhex(&line[3..])) {
                        signed += 1;
                    } else {
                        failures.push(format!("{who}: openssl rejects the signature"));
                    }
                }
                _ => failures.push(format!(
                    "{who} ({status}): {}{}",
                    result.unwrap_or("no result"),
                    err.lines()
                        .last()
                        .map(|l| format!(" — {l}"))
                        .unwrap_or_default()
                )),
            }
        }
    }
    let refused: Vec<String> = svc
        .authorizations(CRED)
        .iter()
        .filter(|a| !a.ok())
        .map(|a| a.outcome.clone())
        .collect();
    assert!(
        failures.is_empty() && refused.is_empty(),
        "{signed} of {} signatures made; failures: {failures:#?}; refused authorizations in the \
         service's audit: {refused:?}",
        ROUNDS * PROCESSES
    );
}
