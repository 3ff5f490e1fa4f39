//! OAuth 2.0 end to end (issue 9) through the built module and the `cloudtoken` tool against real
//! csc-servers, the person's part played in headless Chromium (support/oauth2_page.rs):
//! - a provider without `auth/login` (`serve --auth oauth2`): `cloudtoken enroll --service-auth
//!   oauth2-code` (browser sign-in, loopback redirect, only the refresh token kept, 0600), `status`,
//!   refresh-token rotation, a SCAL 2 credential authorized in the browser for each signature (kind
//!   `url` prompt; allowed → verified signature, denied → CKR_FUNCTION_REJECTED, nobody →
//!   CKR_FUNCTION_CANCELED), a revoked refresh token (clear CKR_*, `status` says to enrol again), and no
//!   secret of the new kinds in the trace logs of module and service;
//! - every other `service_auth` signing with the e-seal account (client credentials, password grant,
//!   API key, a static bearer token, no sign-in at all), a wrong client secret, an access token
//!   that expires in the middle of a batch, and a batch SAD extended (`credentials/extendTransaction`)
//!   before it expires.

use cryptoki_sys::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::oauth2_page::{authorize_in_browser, Redirected};
use support::prelude::*;
use support::tools::{cloudtoken, expect_ok, run};
use support::Service;

const DAVE_CRED: &str = "dave-p256-oauth2";
const SEAL_CRED: &str = "seal-p256";
const DESKTOP: &str = "cloudtoken-desktop";
/// A seal whose batch SADs live 34 s: one is about to expire after a few seconds.
const EXTENDED_CRED: &str = "seal-rsa2048";

fn label_of(svc: &Service, id: &str) -> String {
    svc.demo.find(|c| c.id == id).1.label.clone()
}

/// `cloudtoken enroll --service-auth oauth2-code` for dave, its browser sign-in answered from here.
/// Returns the configuration written and what the browser saw.
fn enroll_dave(svc: &Service, dir: &Path) -> (PathBuf, Redirected) {
    let config = dir.join("config").join("cloudtoken.toml");
    let mut child = cloudtoken(&[
        "enroll",
        "--url",
        &svc.url,
        "--ca-file",
        &svc.ca_file().display().to_string(),
        "--service-auth",
        "oauth2-code",
        "--client-id",
        DESKTOP,
        "--account",
        "dave",
        "--label",
        "Dave Example",
        "--api",
        "v2",
        "--no-browser",
        "--browser-timeout",
        "60",
        "--config",
        &config.display().to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start cloudtoken enroll");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("enroll printed no address: {seen:?}"))
            .unwrap();
        seen.push(line.clone());
        if let Some(u) = line.trim().strip_prefix(&svc.url) {
            break format!("{}{u}", svc.url);
        }
    };
    let redirected = authorize_in_browser(svc, &url, "dave", true);
    assert!(
        redirected
            .loopback_page
            .contains("cloudtoken received the answer of the signing service"),
        "{}",
        redirected.loopback_page
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "enroll failed: {seen:?} {rest:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = rest.join("\n");
    assert!(text.contains("Added token \"Dave Example\""), "{text}");
    assert!(text.contains(DAVE_CRED), "the credential is listed: {text}");
    (config, redirected)
}

/// The code of the first call on token `label` that fails because the service refused the sign-in
/// (opening a session, or listing its keys).
fn refused_at_sign_in(p: P11, label: &str) -> CK_RV {
    let h = match p.open_session(p.slot_of(label), CKF_SERIAL_SESSION) {
        Err(rv) => return rv,
        Ok(h) => h,
    };
    let listed = p.find(h, &[]);
    let _ = p.close(h);
    match listed {
        Err(rv) => rv,
        Ok(found) => panic!(
            "token {label} signed in with a refused sign-in: {} objects",
            found.len()
        ),
    }
}

fn refresh_file(config: &Path) -> PathBuf {
    config.parent().unwrap().join("dave-example.refresh")
}

fn status(config: &Path) -> std::process::Output {
    run(&mut cloudtoken(&[
        "status",
        "--config",
        &config.display().to_string(),
    ]))
}

/// Polls the test prompt's `urls` file for the next authorization address.
#[test]
fn a_provider_without_auth_login_from_enrolment_to_signature() {
    let dir = tempfile::tempdir().unwrap();
    let service_log = dir.path().join("service.log");
    // Every authorization signs in on the page with a fresh account code: 3-second codes keep the
    // waits short.
    let svc =
        Service::start_fresh_logged(&["--totp-period", "3"], &["--auth", "oauth2"], &service_log);
    let (config, enrolled) = enroll_dave(&svc, dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("service_auth = \"oauth2-code\""), "{text}");
    assert!(
        text.contains("client_id = \"cloudtoken-desktop\""),
        "{text}"
    );
    assert!(!text.contains("password"), "{text}");
    let refresh = refresh_file(&config);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&refresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first_refresh = std::fs::read_to_string(&refresh).unwrap();

    // status signs in with the refresh token; the service rotates it and the new one is kept.
    let out = status(&config);
    let shown = expect_ok("cloudtoken status", &out);
    assert!(shown.contains("oauth2-code"), "{shown}");
    assert!(
        shown.contains(DAVE_CRED) || shown.contains("Dave Example"),
        "{shown}"
    );
    let rotated = std::fs::read_to_string(&refresh).unwrap();
    assert_ne!(
        first_refresh.trim(),
        rotated.trim(),
        "the refresh token rotates"
    );
    // The old one is spent: the service refuses it.
    let old = dir.path().join("old.refresh");
    secret_file(&old, first_refresh.trim());

    let prompt = PromptDir::new(dir.path().join("prompt"), &svc, "");
    let token = format!(
        "[[token]]\nlabel = \"OAuth Dave\"\n{}api = \"v2\"\nservice_auth = \"oauth2-code\"\n\
         client_id = \"{DESKTOP}\"\nrefresh_token_file = {:?}\napproval_timeout_ms = 12000\n{}",
        endpoint_toml(&svc),
        refresh.display().to_string(),
        prompt.command_toml()
    );
    let stale = format!(
        "[[token]]\nlabel = \"Stale Dave\"\n{}api = \"v2\"\nservice_auth = \"oauth2-code\"\n\
         client_id = \"{DESKTOP}\"\nrefresh_token_file = {:?}\n",
        endpoint_toml(&svc),
        old.display().to_string()
    );
    let key_label = label_of(&svc, DAVE_CRED);
    let (codes, module_log) = isolated(|p| {
        let log = dir.path().join("module.log");
        let cfg = support::config::write_config(dir.path(), "trace", &log, &[token, stale]);
        assert_rv(p.initialize_with_config(&cfg), CKR_OK, "C_Initialize");
        // No PIN and no code: the token needs no login.
        let s = KeySession::open(p, "OAuth Dave", None, &key_label);
        let mut codes = vec![enrolled.code().expect("enrolment code")];
        for (round, allow) in [(0, true), (1, true), (2, false)] {
            let svc_ref = &svc;
            let prompt_ref = &prompt;
            let browser = std::thread::scope(|scope| {
                let b = scope.spawn(move || {
                    let url = prompt_ref.nth_url(round);
                    assert!(url.contains("scope=credential"), "{url}");
                    assert!(url.contains(&format!("credentialID={DAVE_CRED}")), "{url}");
                    assert!(url.contains("hashes="), "SCAL 2 binds the hash: {url}");
                    assert!(url.contains("code_challenge_method=S256"), "{url}");
                    authorize_in_browser(svc_ref, &url, "dave", allow)
                });
                let signed = s.sign(format!("document {round}").as_bytes());
                let answered = b.join().unwrap_or_else(|_| {
                    panic!(
                        "the browser failed; the module signed {signed:?}; its log:\n{}",
                        std::fs::read_to_string(dir.path().join("module.log")).unwrap_or_default()
                    )
                });
                (signed, answered)
            });
            match (allow, browser.0) {
                (true, Ok(_)) => codes.push(browser.1.code().expect("a code")),
                (false, Err(rv)) => assert_eq!(rv, CKR_FUNCTION_REJECTED, "{}", rv_name(rv)),
                (_, other) => panic!("round {round} (allow {allow}): {other:?}"),
            }
        }
        // Nobody answers within approval_timeout_ms.
        let started = Instant::now();
        assert_eq!(s.sign(b"nobody answers"), Err(CKR_FUNCTION_CANCELED));
        assert!(started.elapsed() < Duration::from_secs(30));
        let _ = s.close();

        // A refresh token the service no longer accepts: a clear code at the first call that signs in.
        let rv = refused_at_sign_in(p, "Stale Dave");
        assert_eq!(rv, CKR_DEVICE_ERROR, "{}", rv_name(rv));
        (codes, log)
    });

    // status on a configuration whose refresh token was revoked says to enrol again.
    let revoked_config = config.with_file_name("revoked.toml");
    let stale_text = text.replace(
        "\"dave-example.refresh\"",
        &format!("{:?}", old.display().to_string()),
    );
    assert_ne!(
        stale_text, text,
        "the configuration names dave-example.refresh: {text}"
    );
    support::config::write_private(&revoked_config, &stale_text);
    let out = status(&revoked_config);
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        support::tools::text(&out.stdout),
        support::tools::text(&out.stderr)
    );
    assert!(
        said.contains("Enrol again") || said.contains("enroll"),
        "{said}"
    );
    assert!(said.contains("cloudtoken enroll"), "{said}");

    // The enrolment revoked at the service (RFC 7009): status says to enrol again, and how.
    let current = std::fs::read_to_string(&refresh).unwrap().trim().to_owned();
    let http = support::tls::https_client(&svc.ca_file(), Duration::from_secs(30));
    let revoked = http
        .post(format!("{}/oauth2/revoke", svc.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(support::page::urlencode(&[
            ("client_id", DESKTOP),
            ("token", &current),
            ("token_type_hint", "refresh_token"),
        ]))
        .send()
        .expect("revocation request");
    assert_eq!(revoked.status().as_u16(), 200);
    let out = status(&config);
    assert!(!out.status.success());
    let said = support::tools::text(&out.stdout) + &support::tools::text(&out.stderr);
    assert!(
        said.contains("Enrol again") && said.contains("--service-auth oauth2-code"),
        "{said}"
    );

    // No code, verifier or token of the new kinds in any log.
    let mut secrets: Vec<String> = codes;
    secrets.push(first_refresh.trim().to_owned());
    secrets.push(current);
    for (name, path) in [("module", &module_log), ("service", &service_log)] {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        assert!(!log.is_empty(), "{name} log is empty");
        for s in &secrets {
            assert!(!log.contains(s.as_str()), "{name} log contains a secret");
        }
        assert!(
            !log.contains("code_verifier="),
            "{name} log contains a PKCE verifier"
        );
    }
}

#[test]
fn every_service_auth_signs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let svc = Service::start_fresh_with(&[
        "--access-token-lifetime",
        "2",
        "--credential-sad-lifetime",
        &format!("{EXTENDED_CRED}=34"),
    ]);
    let open =
        lasting(|| Service::start_fresh_with(&["--auth", "none", "--anonymous-account", "seal"]));
    let seal = svc.demo.client("seal-automation");
    let secret = secret_file(
        &d.join("seal.client"),
        seal.client_secret.as_deref().unwrap(),
    );
    let wrong = secret_file(&d.join("wrong.client"), "not-the-secret-of-this-client");
    let password_client = svc.demo.client("cloudtoken-password");
    let pw_secret = secret_file(
        &d.join("pw.client"),
        password_client.client_secret.as_deref().unwrap(),
    );
    let password = secret_file(
        &d.join("seal.password"),
        &svc.demo.token_of("seal").password,
    );
    let api_key = secret_file(
        &d.join("seal.apikey"),
        svc.demo.token_of("seal").api_key.as_deref().unwrap(),
    );
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    // A static bearer token: one the client credentials grant gave, valid for the default hour.
    let svc_long = Service::start_fresh();
    let bearer = secret_file(&d.join("seal.bearer"), &client_credentials_token(&svc_long));
    let tokens = [
        seal_token_toml(
            &svc,
            d,
            "Client Seal",
            &format!("service_auth = \"oauth2-client\"\nclient_id = \"seal-automation\"\nclient_secret_file = {}\n", path(&secret)),
        ),
        seal_token_toml(
            &svc,
            d,
            "Password Seal",
            &format!(
                "service_auth = \"oauth2-password\"\nclient_id = \"cloudtoken-password\"\nclient_secret_file = {}\naccount = \"seal\"\npassword_file = {}\n",
                path(&pw_secret),
                path(&password)
            ),
        ),
        seal_token_toml(&svc, d, "Key Seal", &format!("service_auth = \"api-key\"\napi_key_file = {}\n", path(&api_key))),
        seal_token_toml(&svc_long, d, "Bearer Seal", &format!("service_auth = \"bearer\"\naccess_token_file = {}\n", path(&bearer))),
        seal_token_toml(&open, d, "Open Seal", "service_auth = \"none\"\n"),
        seal_token_toml(
            &svc,
            d,
            "Batch Seal",
            &format!(
                "service_auth = \"oauth2-client\"\nclient_id = \"seal-automation\"\n\
                 client_secret_file = {}\nbatch_size = 10\n",
                path(&secret)
            ),
        ),
        seal_token_toml(
            &svc,
            d,
            "Wrong Seal",
            &format!("service_auth = \"oauth2-client\"\nclient_id = \"seal-automation\"\nclient_secret_file = {}\n", path(&wrong)),
        ),
    ];
    let key_label = label_of(&svc, SEAL_CRED);
    isolated(|p| {
        let cfg = support::config::write_config(d, "debug", &d.join("module.log"), &tokens);
        assert_rv(p.initialize_with_config(&cfg), CKR_OK, "C_Initialize");
        for label in [
            "Client Seal",
            "Password Seal",
            "Key Seal",
            "Bearer Seal",
            "Open Seal",
        ] {
            let s = KeySession::open(p, label, None, &key_label);
            s.sign(label.as_bytes())
                .unwrap_or_else(|rv| panic!("{label}: {}", rv_name(rv)));
            let _ = s.close();
        }
        // The access token (2 s) runs out in the middle of a batch: the module signs in again.
        let s = KeySession::open(p, "Client Seal", None, &key_label);
        for n in 0..3 {
            s.sign(format!("batch {n}").as_bytes())
                .unwrap_or_else(|rv| panic!("batch {n}: {}", rv_name(rv)));
            std::thread::sleep(Duration::from_millis(1500));
        }
        let _ = s.close();
        // A kept batch close to its end is extended (credentials/extendTransaction), not authorized anew.
        let s = KeySession::open(p, "Batch Seal", None, &label_of(&svc, EXTENDED_CRED));
        s.sign(b"first of the batch")
            .unwrap_or_else(|rv| panic!("batch: {}", rv_name(rv)));
        std::thread::sleep(Duration::from_secs(5));
        s.sign(b"from the extended batch")
            .unwrap_or_else(|rv| panic!("extended batch: {}", rv_name(rv)));
        let _ = s.close();
        assert_eq!(
            svc.authorizations(EXTENDED_CRED).len(),
            1,
            "one authorization"
        );
        let extended = svc.audit_of("credentials/extendTransaction", EXTENDED_CRED);
        assert!(
            extended.len() == 1 && extended[0].ok(),
            "{extended:?}; the module's log:\n{}",
            std::fs::read_to_string(d.join("module.log")).unwrap_or_default()
        );
        // A wrong client secret: a clear code at the first call that signs in.
        let rv = refused_at_sign_in(p, "Wrong Seal");
        assert_eq!(rv, CKR_DEVICE_ERROR, "{}", rv_name(rv));
    });
    let log = std::fs::read_to_string(d.join("module.log")).unwrap();
    for s in [
        seal.client_secret.as_deref().unwrap(),
        password_client.client_secret.as_deref().unwrap(),
        svc.demo.token_of("seal").api_key.as_deref().unwrap(),
        svc.demo.token_of("seal").password.as_str(),
    ] {
        assert!(!log.contains(s), "the module log contains a secret");
    }
    assert!(
        log.contains("invalid_client"),
        "the wrong secret is logged as such"
    );

    // enroll and status with the secrets a seal holds: the API key, and the client credentials.
    let ca = svc.ca_file().display().to_string();
    for (label, args) in [
        (
            "Key Enrolled",
            vec![
                "--service-auth",
                "api-key",
                "--api-key-file",
                api_key.to_str().unwrap(),
            ],
        ),
        (
            "Client Enrolled",
            vec![
                "--service-auth",
                "oauth2-client",
                "--client-id",
                "seal-automation",
                "--client-secret-file",
                secret.to_str().unwrap(),
            ],
        ),
    ] {
        let config = d.join(format!("{}.toml", label.replace(' ', "-")));
        let config_arg = config.display().to_string();
        let mut all = vec![
            "enroll",
            "--url",
            &svc.url,
            "--ca-file",
            &ca,
            "--api",
            "v2",
            "--label",
            label,
            "--config",
            &config_arg,
        ];
        all.extend(args.iter().copied());
        let said = expect_ok("cloudtoken enroll", &run(&mut cloudtoken(&all)));
        assert!(
            said.contains(SEAL_CRED),
            "the seal's credentials are listed: {said}"
        );
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(!text.contains("refresh_token_file"), "{text}");
        let shown = expect_ok("cloudtoken status", &status(&config));
        assert!(
            shown.contains(&args[1].to_string()),
            "status names the sign-in: {shown}"
        );
    }

    // status for the wrong secret names the problem and the way out.
    let wrong_cfg =
        support::config::write_config(d, "error", &d.join("status.log"), &[tokens[6].clone()]);
    let out = status(&wrong_cfg);
    assert!(!out.status.success());
    let said = support::tools::text(&out.stdout) + &support::tools::text(&out.stderr);
    assert!(
        said.contains("Enrol again") && said.contains("cloudtoken enroll"),
        "{said}"
    );
    assert!(!said.contains("not-the-secret-of-this-client"), "{said}");
}

/// An access token of the seal's client credentials client at `svc`, by a plain token request.
fn client_credentials_token(svc: &Service) -> String {
    let c = svc.demo.client("seal-automation");
    let http = support::tls::https_client(&svc.ca_file(), Duration::from_secs(30));
    let resp = http
        .post(format!("{}/oauth2/token", svc.url))
        .basic_auth(&c.client_id, c.client_secret.as_deref())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=service")
        .send()
        .expect("token request");
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}
