//! No secret in any log (issue #5): every second-factor flow runs with the module at its most verbose
//! level (`[log] level = "trace"`) and the service at RUST_LOG=trace, and then both logs are searched for
//! every secret the flows used — the PIN, the account password, the refresh token, every one-time code
//! of the time window (authenticator codes of each step, every SMS code, the approval page's account
//! codes), the PIN+code passcodes — and for every access token, SAD and approval handle the service
//! issued: the service keeps only their SHA-256, so every word of the logs is hashed and compared.

use cryptoki_sys::*;
use sha2::Digest;
use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};
use support::page::Page;
use support::prelude::*;
use support::Service;

const PERIOD: u64 = 5;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Whether `word` occurs in `text` with no letter or digit right before or after it.
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// SHA-256 values the service stored for the bearer secrets it issued.
fn issued_secret_hashes(svc: &Service) -> HashSet<Vec<u8>> {
    let conn = rusqlite::Connection::open_with_flags(
        svc.state.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let mut all = HashSet::new();
    for query in [
        "SELECT hash FROM tokens",
        "SELECT hash FROM sads",
        "SELECT handle FROM approvals",
    ] {
        let mut stmt = conn.prepare(query).unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(Result::unwrap);
        all.extend(rows);
    }
    all
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| w.len() >= 16)
}

#[test]
fn no_secret_reaches_any_log() {
    let dir = tempfile::tempdir().unwrap();
    let server_log = dir.path().join("server.log");
    let svc = {
        let log = server_log.clone();
        lasting(move || {
            Service::start_fresh_logged(&["--totp-period", &PERIOD.to_string()], &[], &log)
        })
    };
    let started = now();
    let alice = svc.demo.token_of("alice").clone();
    let prompt = PromptDir::new(dir.path().join("alice"), &svc, &alice.pin);
    let (_, seal) = svc.demo.find(|c| c.id == "alice-rsa2048");
    let pin_file = secret_file(&dir.path().join("seal.pin"), &alice.pin);
    let totp_file = secret_file(
        &dir.path().join("seal.totp"),
        seal.totp_secret.as_deref().unwrap(),
    );
    let tokens = [
        token_toml(&svc, "Log Pin", "alice", ""),
        token_toml(&svc, "Log Prompt", "alice", &prompt.command_toml()),
        token_toml(
            &svc,
            "Log Free",
            "alice",
            &format!("mode = \"login-free\"\n{}", prompt.command_toml()),
        ),
        token_toml(
            &svc,
            "Log Path",
            "alice",
            &format!("mode = \"protected-path\"\n{}", prompt.command_toml()),
        ),
        token_toml(
            &svc,
            "Log Seal",
            "alice",
            &format!(
                "mode = \"login-free\"\npin_file = {:?}\ntotp_secret_file = {:?}\n\
                 totp_credential = \"alice-rsa2048\"\ntotp_period = {PERIOD}\nbatch_size = 1\n",
                pin_file.display().to_string(),
                totp_file.display().to_string()
            ),
        ),
    ];
    let module_log = dir.path().join("module.log");
    let config = write_config(dir.path(), "trace", &module_log, &tokens);
    let p = p11();
    assert_rv(p.initialize_with_config(&config), CKR_OK, "C_Initialize");
    let label = |id: &str| svc.demo.find(|c| c.id == id).1.label.clone();
    let mut passcodes = Vec::new();

    // pin mode: PIN+TOTP passcode, then an SMS code by context login.
    let h = p.open(p.slot_of("Log Pin"));
    let code = std::process::Command::new(support::csc_server_bin())
        .args(["demo-otp", "--state"])
        .arg(&svc.state)
        .args(["--credential", "alice-p256"])
        .output()
        .unwrap();
    let code = String::from_utf8(code.stdout).unwrap().trim().to_owned();
    let passcode = format!("{}{code}", alice.pin);
    assert_rv(p.login(h, CKU_USER, &passcode), CKR_OK, "C_Login");
    passcodes.push(passcode);
    ok(
        sign_verified(p, h, &key_of(p, h, &label("alice-p256")), b"passcode"),
        "passcode signature",
    );
    let key = key_of(p, h, &label("alice-p384"));
    let case = cases_for(CKM_ECDSA_SHA384, b"context").remove(0);
    let before = svc.sms_messages("alice-p384").len();
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    let sms_code = svc.wait_sms_code("alice-p384", before);
    assert_rv(
        p.login(h, CKU_CONTEXT_SPECIFIC, &sms_code),
        CKR_OK,
        "context",
    );
    ok(p.sign_only(h, &case.input), "context signature");
    // A wrong PIN must not be logged either.
    assert_rv(p.logout(h), CKR_OK, "C_Logout");
    let wrong_pin: String = alice.pin.chars().rev().collect();
    assert_ne!(wrong_pin, alice.pin);
    let wrong_passcode = format!("{wrong_pin}{code}");
    assert_rv(p.login(h, CKU_USER, &wrong_passcode), CKR_OK, "C_Login");
    assert_eq!(
        sign_verified(p, h, &key_of(p, h, &label("alice-p256")), b"wrong pin"),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    passcodes.push(wrong_pin);
    passcodes.push(wrong_passcode);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");

    // The prompt: TOTP with a wrong code first, SMS, cancel.
    let h = p.open(p.slot_of("Log Prompt"));
    assert_rv(p.login(h, CKU_USER, &alice.pin), CKR_OK, "C_Login");
    prompt.plan(&["wrong", "right"]);
    ok(
        sign_verified(p, h, &key_of(p, h, &label("alice-p256")), b"prompt totp"),
        "prompt TOTP",
    );
    ok(
        sign_verified(p, h, &key_of(p, h, &label("alice-rsa3072")), b"prompt sms"),
        "prompt SMS",
    );
    prompt.plan(&["cancel"]);
    assert_eq!(
        sign_verified(p, h, &key_of(p, h, &label("alice-p384")), b"cancel"),
        Err(CKR_FUNCTION_CANCELED)
    );
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");

    // login-free: PIN and SMS code from the prompt; protected path: PIN from the prompt.
    let h = p.open(p.slot_of("Log Free"));
    ok(
        sign_verified(p, h, &key_of(p, h, &label("alice-p384")), b"free"),
        "login-free",
    );
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
    let h = p.open(p.slot_of("Log Path"));
    assert_rv(p.login_null(h, CKU_USER), CKR_OK, "C_Login(NULL)");
    ok(
        sign_verified(p, h, &key_of(p, h, &label("alice-p256")), b"path"),
        "protected path",
    );
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");

    // Unattended, and an approval on the page (access token, SAD, handle, account code).
    let h = p.open(p.slot_of("Log Seal"));
    ok(
        sign_verified(p, h, &key_of(p, h, &label("alice-rsa2048")), b"seal"),
        "unattended",
    );
    let approve_label = label("alice-p256-approve");
    let approved = {
        std::thread::scope(|s| {
            let approver = s.spawn(|| {
                let mut page = Page::sign_in(&svc, "alice");
                let marker = format!(
                    "title=\"{}\"",
                    sha("sha256", b"approved")
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                );
                page.decide(&marker, "approve");
            });
            let key = key_of(p, h, &approve_label);
            let signed = sign_verified(p, h, &key, b"approved");
            approver.join().unwrap();
            signed
        })
    };
    ok(approved, "approval");
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
    assert_rv(p.finalize(), CKR_OK, "C_Finalize");
    let ended = now();

    // Every secret the flows used.
    let mut secrets: Vec<String> = vec![alice.pin.clone(), alice.password.clone()];
    secrets.push(svc.refresh_token("alice"));
    secrets.extend(passcodes);
    for c in svc.demo.token_of("alice").credentials.iter() {
        if let Some(s) = &c.totp_secret {
            secrets.extend(support::totp::codes_between(
                s,
                c.totp_period.unwrap_or(30),
                started,
                ended,
            ));
        }
        for m in svc.sms_messages(&c.id) {
            secrets.push(m["code"].as_str().unwrap().to_owned());
        }
    }
    if let Some(s) = &alice.approval_totp_secret {
        secrets.extend(support::totp::codes_between(
            s,
            alice.approval_totp_period.unwrap_or(30),
            started,
            ended,
        ));
    }
    let issued = issued_secret_hashes(&svc);
    assert!(issued.len() >= 5, "tokens and SADs were issued");
    // The searches find what they look for: a planted PIN, and the refresh token by its hash (the
    // service stores every bearer secret the same way).
    assert!(contains_word(
        &format!("C_Login pin={}.", alice.pin),
        &alice.pin
    ));
    let refresh = svc.refresh_token("alice");
    let planted = format!("Bearer {refresh}\n");
    assert!(words(&planted).any(|w| issued.contains(&sha2::Sha256::digest(w.as_bytes()).to_vec())));

    let module_text = std::fs::read_to_string(&module_log).unwrap();
    let server_text = std::fs::read_to_string(&server_log).unwrap();
    // The logs are not empty: they saw the flows.
    for marker in [
        "asking the user for the PIN",
        "asking the user for the one-time password",
        "the service refused the one-time password; asking again",
        "the user cancelled the prompt",
        "the user approved the request",
        "C_Sign",
    ] {
        assert!(module_text.contains(marker), "module log lacks {marker:?}");
    }
    assert!(server_text.contains("credentials/authorize"), "service log");
    for (name, text) in [("module", &module_text), ("service", &server_text)] {
        for s in &secrets {
            assert!(
                !contains_word(text, s),
                "the {name} log holds a secret ({} chars)",
                s.len()
            );
        }
        for w in words(text) {
            let hash = sha2::Sha256::digest(w.as_bytes()).to_vec();
            assert!(
                !issued.contains(&hash),
                "the {name} log holds a token, SAD or handle the service issued"
            );
        }
    }
}
