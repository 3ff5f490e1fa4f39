//! No secret in any log (issue #5): every second-factor flow runs with the module at its most verbose
//! level (`[log] level = "trace"`) and the service at RUST_LOG=trace, and then both logs are searched for
//! every secret the flows used — the PIN, the account password, the refresh token, every one-time code
//! of the time window (authenticator codes of each step, every SMS code, the approval page's account
//! codes), the PIN+code passcodes — and for every access token, SAD and approval handle the service
//! issued: the service keeps only their SHA-256, so every word of the logs is hashed and compared.
//! The second test does the same for the secrets of the provider sign-ins (issue 9): client secrets,
//! an API key, and a SCAL 2 credential authorized in the browser (its authorization code, PKCE
//! verifier and credential token).

use cryptoki_sys::*;
use sha2::Digest;
use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};
use support::oauth2_page::authorize_in_browser;
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
        "SELECT hash FROM api_keys",
        "SELECT secret_hash FROM oauth2_clients WHERE secret_hash IS NOT NULL",
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

/// Every code of `token`'s approval-page authenticator between `from` and `to`.
fn account_codes(token: &support::service::DemoToken, from: u64, to: u64) -> Vec<String> {
    token
        .approval_totp_secret
        .as_ref()
        .map_or_else(Vec::new, |s| {
            support::totp::codes_between(s, token.approval_totp_period.unwrap_or(30), from, to)
        })
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
    let passcodes = isolated(|p| {
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
        passcodes
    });
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
    secrets.extend(account_codes(&alice, started, ended));
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

    assert_logs(
        (
            &module_log,
            &[
                "asking the user for the PIN",
                "asking the user for the one-time password",
                "the service refused the one-time password; asking again",
                "the user cancelled the prompt",
                "the user approved the request",
                "C_Sign",
            ],
        ),
        (&server_log, &["credentials/authorize"]),
        &secrets,
        &issued,
        &[],
    );
}

/// Reads the module's and the service's logs, checks that they saw the flows (each has its markers),
/// and searches them for every secret in `secrets`, every word whose SHA-256 the service stored for a
/// secret it issued or was given, and every word whose PKCE challenge is in `challenges`.
fn assert_logs(
    module: (&std::path::Path, &[&str]),
    service: (&std::path::Path, &[&str]),
    secrets: &[String],
    issued: &HashSet<Vec<u8>>,
    challenges: &[String],
) {
    use base64::Engine;
    for (name, (path, markers)) in [("module", module), ("service", service)] {
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.as_str();
        for marker in markers {
            let mut tail = text.len().saturating_sub(3000);
            while !text.is_char_boundary(tail) {
                tail += 1;
            }
            assert!(
                text.contains(marker),
                "the {name} log lacks {marker:?}; it ends:\n{}",
                &text[tail..]
            );
        }
        for s in secrets {
            assert!(
                !contains_word(text, s),
                "the {name} log holds a secret ({} chars)",
                s.len()
            );
        }
        for w in words(text) {
            let hash = sha2::Sha256::digest(w.as_bytes());
            assert!(
                !issued.contains(hash.as_slice()),
                "the {name} log holds a secret the service issued or keeps hashed"
            );
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash);
            assert!(
                !challenges.contains(&challenge),
                "the {name} log holds a PKCE verifier"
            );
        }
    }
}

/// The value of `key` in the query of `url`.
fn query_value(url: &str, key: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {url}"))
        .to_owned()
}

#[test]
fn no_secret_of_a_provider_sign_in_reaches_any_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server_log = d.join("server.log");
    // The browser signs in with fresh account codes: 3-second codes keep the wait short.
    let svc = {
        let log = server_log.clone();
        lasting(move || Service::start_fresh_logged(&["--totp-period", "3"], &[], &log))
    };
    let started = now();
    let seal = svc.demo.token_of("seal").clone();
    let dave = svc.demo.token_of("dave").clone();
    let automation = svc.demo.client("seal-automation");
    let password_client = svc.demo.client("cloudtoken-password");
    let client_secret = automation.client_secret.clone().unwrap();
    let password_secret = password_client.client_secret.clone().unwrap();
    let api_key = seal.api_key.clone().unwrap();
    let path = |p: std::path::PathBuf| format!("{:?}", p.display().to_string());
    let prompt = PromptDir::new(d.join("prompt"), &svc, "");
    let tokens = [
        seal_token_toml(
            &svc,
            d,
            "Log Client",
            &format!(
                "service_auth = \"oauth2-client\"\nclient_id = \"seal-automation\"\nclient_secret_file = {}\n",
                path(secret_file(&d.join("seal.client"), &client_secret))
            ),
        ),
        seal_token_toml(
            &svc,
            d,
            "Log Password",
            &format!(
                "service_auth = \"oauth2-password\"\nclient_id = \"cloudtoken-password\"\n\
                 client_secret_file = {}\naccount = \"seal\"\npassword_file = {}\n",
                path(secret_file(&d.join("pw.client"), &password_secret)),
                path(secret_file(&d.join("seal.password"), &seal.password))
            ),
        ),
        seal_token_toml(
            &svc,
            d,
            "Log Key",
            &format!(
                "service_auth = \"api-key\"\napi_key_file = {}\n",
                path(secret_file(&d.join("seal.apikey"), &api_key))
            ),
        ),
        // dave signs in with auth/login; his SCAL 2 credential is authorized in the browser.
        token_toml(
            &svc,
            "Log Consent",
            "dave",
            &format!(
                "client_id = \"cloudtoken-desktop\"\napproval_timeout_ms = 60000\n{}",
                prompt.command_toml()
            ),
        ),
    ];
    let module_log = d.join("module.log");
    let config = write_config(d, "trace", &module_log, &tokens);
    let (url, redirected) = isolated(|p| {
        assert_rv(p.initialize_with_config(&config), CKR_OK, "C_Initialize");
        let label = |id: &str| svc.demo.find(|c| c.id == id).1.label.clone();
        for token in ["Log Client", "Log Password", "Log Key"] {
            let h = p.open(p.slot_of(token));
            ok(
                sign_verified(p, h, &key_of(p, h, &label("seal-p256")), token.as_bytes()),
                token,
            );
            assert_rv(p.close(h), CKR_OK, "C_CloseSession");
        }
        let h = p.open(p.slot_of("Log Consent"));
        let key = key_of(p, h, &label("dave-p256-oauth2"));
        let (signed, url, redirected) = std::thread::scope(|s| {
            let browser = s.spawn(|| {
                let url = prompt.nth_url(0);
                let answer = authorize_in_browser(&svc, &url, "dave", true);
                (url, answer)
            });
            let signed = sign_verified(p, h, &key, b"consented");
            let (url, answer) = browser.join().unwrap();
            (signed, url, answer)
        });
        ok(signed, "the signature the browser authorized");
        assert_rv(p.close(h), CKR_OK, "C_CloseSession");
        (url, redirected)
    });
    let ended = now();

    let code = redirected.code().expect("an authorization code");
    let challenge = query_value(&url, "code_challenge");
    let mut secrets = vec![
        client_secret,
        password_secret,
        api_key,
        seal.password.clone(),
        seal.pin.clone(),
        dave.password.clone(),
        svc.refresh_token("dave"),
        code,
    ];
    secrets.extend(account_codes(&dave, started, ended));
    let issued = issued_secret_hashes(&svc);
    // The searches find what they look for: the credential token the consent gave (a SAD bound to
    // the hash) and the seal's client secret are stored hashed, and the challenge is one a verifier
    // of the module's alphabet maps to.
    assert!(
        words(&format!("secret {} end", secrets[0]))
            .any(|w| issued.contains(sha2::Sha256::digest(w.as_bytes()).as_slice())),
        "the client secret is found by its hash"
    );
    assert_eq!(challenge.len(), 43, "a base64url SHA-256: {challenge}");

    assert_logs(
        (
            &module_log,
            &[
                "oauth2/token -> 200",
                "the user authorized dave-p256-oauth2",
                "signatures/signHash -> 200",
            ],
        ),
        (&server_log, &["oauth2/token"]),
        &secrets,
        &issued,
        &[challenge],
    );
}
