//! The `cloudtoken` tool against a real csc-server: `enroll` (password on standard input, a refresh token
//! kept instead, the configuration written and updated), `status` (service, TLS, credentials, pkcs11:
//! URIs checked against what the module shows, expiry checked against openssl), `register` for p11-kit
//! and NSS (checked with p11-kit and certutil), and failures explained in plain words.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::paths::test_prompt;
use support::tools::*;
use support::{module_path, Service};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn pkcs11_tool(config: &Path, args: &[&str]) -> String {
    let out = run(Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module_path())
        .args(args)
        .env("CLOUDTOKEN_CONFIG", config));
    expect_ok("pkcs11-tool", &out)
}

/// RFC 7512 percent-decoding of one URI attribute value.
fn pct_decode(v: &str) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn uri_attr<'a>(uri: &'a str, name: &str) -> &'a str {
    uri.trim_start_matches("pkcs11:")
        .split(';')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{uri} has no {name}"))
}

#[test]
fn enroll_keeps_a_refresh_token_not_the_password() {
    let svc = Service::shared();
    let alice = svc.demo.token_of("alice");
    let e = enroll(svc, "alice", "Alice Example", &[]);

    let dir = e.config.parent().unwrap();
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&e.config), 0o600);
    let refresh = dir.join("alice-example.refresh");
    assert_eq!(mode(&refresh), 0o600);
    let token = std::fs::read_to_string(&refresh).unwrap();
    assert!(token.trim().len() >= 16, "a refresh token is stored");
    for f in [&e.config, &refresh] {
        let body = std::fs::read_to_string(f).unwrap();
        assert!(
            !body.contains(&alice.password),
            "{} holds the password",
            f.display()
        );
    }

    let cfg: toml::Value = toml::from_str(&std::fs::read_to_string(&e.config).unwrap()).unwrap();
    let t = &cfg["token"].as_array().unwrap()[0];
    assert_eq!(t["label"].as_str(), Some("Alice Example"));
    assert_eq!(t["url"].as_str(), Some(svc.url.as_str()));
    assert_eq!(t["account"].as_str(), Some("alice"));
    assert_eq!(
        PathBuf::from(t["ca_file"].as_str().unwrap()),
        std::fs::canonicalize(svc.ca_file()).unwrap()
    );
    assert!(t.get("password_file").is_none());

    // The module signs in with the enrolment alone: every certificate of the account is visible
    // before any login.
    let listed = pkcs11_tool(&e.config, &["--list-objects", "--type", "cert"]);
    for c in &alice.credentials {
        assert!(
            listed.contains(&format!("label:      {}", c.label)),
            "{} missing from:\n{listed}",
            c.label
        );
    }
}

#[test]
fn enroll_updates_one_token_and_keeps_the_rest() {
    let svc = Service::shared();
    let e = enroll(svc, "alice", "Alice Example", &[]);
    let config = e.config.display().to_string();
    let mut text = std::fs::read_to_string(&e.config).unwrap();
    text.push_str("# kept: a note of the user's\n");
    std::fs::write(&e.config, text).unwrap();

    let bob = svc.demo.token_of("bob");
    let ca = svc.ca_file().display().to_string();
    let out = run_with_input(
        &mut cloudtoken(&[
            "enroll",
            "--url",
            &svc.url,
            "--account",
            "bob",
            "--label",
            "Bob Example",
            "--ca-file",
            &ca,
            "--config",
            &config,
            "--password-stdin",
            "--api",
            "v1",
        ]),
        &format!("{}\n", bob.password),
    );
    assert!(expect_ok("enroll bob", &out).contains("Added token \"Bob Example\""));
    // Alice again, now login-free with a prompt: her entry changes, Bob's and the note stay.
    let prompt = test_prompt().display().to_string();
    let alice = svc.demo.token_of("alice");
    let out = run_with_input(
        &mut cloudtoken(&[
            "enroll",
            "--url",
            &svc.url,
            "--account",
            "alice",
            "--label",
            "Alice Example",
            "--ca-file",
            &ca,
            "--config",
            &config,
            "--password-stdin",
            "--mode",
            "login-free",
            "--prompt-command",
            &prompt,
            "--prompt-arg",
            "/nonexistent/answers",
        ]),
        &format!("{}\n", alice.password),
    );
    assert!(expect_ok("enroll alice again", &out).contains("Updated token \"Alice Example\""));

    let text = std::fs::read_to_string(&e.config).unwrap();
    assert!(text.contains("# kept: a note of the user's"), "{text}");
    let cfg: toml::Value = toml::from_str(&text).unwrap();
    let tokens = cfg["token"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{text}");
    let a = &tokens[0];
    assert_eq!(a["label"].as_str(), Some("Alice Example"));
    assert_eq!(a["mode"].as_str(), Some("login-free"));
    let cmd: Vec<&str> = a["prompt_command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        cmd,
        [
            std::fs::canonicalize(test_prompt())
                .unwrap()
                .to_str()
                .unwrap(),
            "/nonexistent/answers"
        ]
    );
    assert_eq!(tokens[1]["label"].as_str(), Some("Bob Example"));
    assert_eq!(tokens[1]["api"].as_str(), Some("v1"));
    assert_eq!(mode(&e.config), 0o600);
    // Both enrolments work for the module: two slots, Bob's over CSC v1.
    let slots = pkcs11_tool(&e.config, &["--list-token-slots"]);
    assert!(
        slots.contains("Alice Example") && slots.contains("Bob Example"),
        "{slots}"
    );
}

#[test]
fn failures_are_explained_in_plain_words_and_change_nothing() {
    let svc = Service::shared();
    let alice = svc.demo.token_of("alice");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c").join("cloudtoken.toml");
    let config_arg = config.display().to_string();
    let ca = svc.ca_file().display().to_string();
    let attempt = |url: &str, ca: Option<&str>, password: &str| {
        let mut args = vec![
            "enroll",
            "--url",
            url,
            "--account",
            "alice",
            "--config",
            &config_arg,
            "--password-stdin",
        ];
        if let Some(ca) = ca {
            args.extend(["--ca-file", ca]);
        }
        let out = run_with_input(&mut cloudtoken(&args), password);
        assert!(!out.status.success(), "enroll to {url} succeeded");
        text(&out.stderr)
    };

    let e = attempt("https://127.0.0.1:1", Some(&ca), "x\n");
    assert!(
        e.contains("The service at https://127.0.0.1:1 could not be reached: connection refused. Is the address right"),
        "{e}"
    );
    let e = attempt(&svc.url, None, "x\n");
    assert!(
        e.contains("The service's certificate is not trusted: it was issued by a certificate authority this computer does not trust")
            && e.contains("--ca-file"),
        "{e}"
    );
    let e = attempt(&format!("{}/somewhere/else", svc.url), Some(&ca), "x\n");
    assert!(e.contains("not like a CSC signing service"), "{e}");
    let e = attempt(&svc.url, Some(&ca), "not-the-password\n");
    assert!(
        e.contains("The service did not accept the account name or password."),
        "{e}"
    );
    let e = attempt(&svc.url, Some(&ca), "\n");
    assert!(e.contains("The password is empty"), "{e}");
    // None of that wrote anything.
    assert!(!config.exists() && !config.parent().unwrap().exists());
    // And no message repeats what was typed.
    let e = attempt(&svc.url, Some(&ca), &format!("{}x\n", alice.password));
    assert!(!e.contains(&alice.password), "{e}");
}

#[test]
fn status_shows_service_tls_credentials_uris_and_expiry() {
    let svc = Service::shared();
    let alice = svc.demo.token_of("alice");
    let e = enroll(svc, "alice", "Alice Example", &[]);
    let out = run(&mut cloudtoken(&[
        "status",
        "--config",
        &e.config.display().to_string(),
    ]));
    let status = expect_ok("cloudtoken status", &out);
    let ca = std::fs::canonicalize(svc.ca_file()).unwrap();
    for needle in [
        "Token \"Alice Example\" (slot 0)".to_owned(),
        format!("{}: reachable", svc.url),
        "CSC API v2".to_owned(),
        format!(
            "verified: the service's certificate is trusted through the certificate authority in {}",
            ca.display()
        ),
        "signed in with this computer's enrolment".to_owned(),
        "mode pin".to_owned(),
        format!("credentials  {}", alice.credentials.len()),
    ] {
        assert!(status.contains(&needle), "{needle:?} missing from:\n{status}");
    }
    for c in &alice.credentials {
        assert!(
            status.contains(&format!("credential   {}:", c.id)),
            "{}",
            c.id
        );
    }

    // Every certificate URI names an object the module really shows: same label, same CKA_ID.
    let listed = pkcs11_tool(&e.config, &["--list-objects", "--type", "cert"]);
    let cert_uris: Vec<&str> = status
        .lines()
        .filter_map(|l| l.trim().strip_prefix("certificate  pkcs11:"))
        .collect();
    assert_eq!(cert_uris.len(), alice.credentials.len(), "{status}");
    for uri in &cert_uris {
        assert_eq!(pct_decode(uri_attr(uri, "token")), b"Alice Example");
        assert!(uri.ends_with(";type=cert"), "{uri}");
        let label = String::from_utf8(pct_decode(uri_attr(uri, "object"))).unwrap();
        let id: String = pct_decode(uri_attr(uri, "id"))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let block = listed
            .split("Certificate Object")
            .find(|b| b.contains(&format!("label:      {label}\n")))
            .unwrap_or_else(|| panic!("the module shows no certificate {label:?}:\n{listed}"));
        assert!(
            block.contains(&format!("ID:         {id}")),
            "{label}: {id} vs\n{block}"
        );
    }
    let key_uris = status
        .lines()
        .filter(|l| l.trim().starts_with("key          pkcs11:") && l.ends_with(";type=private"))
        .count();
    assert_eq!(key_uris, alice.credentials.len());

    // Expiry as openssl reads it from the certificate the module serves.
    let first = &alice.credentials[0];
    let uri = cert_uris
        .iter()
        .find(|u| pct_decode(uri_attr(u, "object")) == first.label.as_bytes())
        .unwrap();
    let id: String = pct_decode(uri_attr(uri, "id"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let der = e.dir.path().join("cert.der");
    pkcs11_tool(
        &e.config,
        &[
            "--read-object",
            "--type",
            "cert",
            "--id",
            &id,
            "--output-file",
            der.to_str().unwrap(),
        ],
    );
    let out = run(Command::new("openssl")
        .args([
            "x509", "-inform", "DER", "-noout", "-enddate", "-dateopt", "iso_8601", "-in",
        ])
        .arg(&der));
    let end = expect_ok("openssl x509 -enddate", &out);
    let date = end.trim().trim_start_matches("notAfter=")[..10].to_owned();
    let block: String = status
        .lines()
        .skip_while(|l| *l != format!("    {}", first.label))
        .skip(1)
        .take_while(|l| l.starts_with("      "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        block.contains(&format!("valid until  {date} (")) && block.contains("days left)"),
        "{date} not in:\n{block}"
    );
}

#[test]
fn status_explains_a_revoked_enrolment_and_an_unreachable_service() {
    let svc = Service::start_fresh();
    let e = enroll(&svc, "carol", "Carol Example", &[]);
    let config = e.config.display().to_string();
    expect_ok(
        "status",
        &run(&mut cloudtoken(&["status", "--config", &config])),
    );

    // The service revokes the enrolment (as an administrator or the user would elsewhere).
    let refresh_file = e.config.parent().unwrap().join("carol-example.refresh");
    let refresh =
        remote_client::Secret::new(std::fs::read_to_string(&refresh_file).unwrap().trim());
    let mut cc = remote_client::ClientConfig::new(svc.url.clone());
    cc.ca_file = Some(svc.ca_file());
    let client = remote_client::CscClient::new(&cc).unwrap();
    let access = client.refresh(&refresh).unwrap().access_token;
    client.revoke(&access, &refresh, "refresh_token").unwrap();
    let out = run(&mut cloudtoken(&["status", "--config", &config]));
    assert!(!out.status.success());
    let said = text(&out.stdout);
    assert!(
        said.contains(
            "The service no longer accepts this computer's enrolment of token \"Carol Example\""
        ) && said.contains(&format!(
            "cloudtoken enroll --url {} --account carol",
            svc.url
        )),
        "{said}"
    );

    let url = svc.url.clone();
    svc.stop();
    let out = run(&mut cloudtoken(&["status", "--config", &config]));
    assert!(!out.status.success());
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!(
            "The service at {url} could not be reached: connection refused"
        )),
        "{said}"
    );
}

/// Removes a registration file when the test ends, however it ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn register_with_p11_kit() {
    let svc = Service::shared();
    let e = enroll(svc, "alice", "Alice Example", &[]);
    let module = std::fs::canonicalize(module_path()).unwrap();
    let config = std::fs::canonicalize(&e.config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut cloudtoken(&[
        "register",
        "--p11-kit",
        "--modules-dir",
        dir.path().to_str().unwrap(),
        "--module",
        module.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]));
    expect_ok("register --p11-kit --modules-dir", &out);
    let file = dir.path().join("cloudtoken.module");
    assert_eq!(mode(&file), 0o644);
    let body = std::fs::read_to_string(&file).unwrap();
    assert!(
        body.contains(&format!("\nmodule: {}\n", module.display())),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "\nx-init-reserved: cloudtoken_conf={}\n",
            config.display()
        )),
        "{body}"
    );

    // p11-kit itself reads the registration and, through it, the module and its configuration. Root's
    // p11-kit reads only the system folder; the file is limited to the p11-kit program so that other
    // tests running meanwhile do not load it.
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let name = format!("cloudtoken-clitest-{}", std::process::id());
    let home = tempfile::tempdir().unwrap();
    let mut register = cloudtoken(&[
        "register",
        "--p11-kit",
        "--name",
        &name,
        "--only-for",
        "p11-kit",
        "--module",
        module.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let registered = if root {
        PathBuf::from(format!("/etc/pkcs11/modules/{name}.module"))
    } else {
        register
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"));
        home.path()
            .join(format!(".config/pkcs11/modules/{name}.module"))
    };
    let _cleanup = RemoveOnDrop(registered.clone());
    let said = expect_ok("register --p11-kit", &run(&mut register));
    assert!(said.contains(&registered.display().to_string()), "{said}");
    let mut list = Command::new("p11-kit");
    list.arg("list-modules").env_remove("CLOUDTOKEN_CONFIG");
    if !root {
        list.env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"));
    }
    let listed = expect_ok("p11-kit list-modules", &run(&mut list));
    // One block per module: "NAME: PATH" and its indented details.
    let start = listed
        .find(&format!("{name}: "))
        .unwrap_or_else(|| panic!("p11-kit does not list {name}:\n{listed}"));
    let ours: String = listed[start..]
        .lines()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    assert!(
        ours.starts_with(&format!("{name}: {}", module.display())),
        "{ours}"
    );
    assert!(ours.contains("token: Alice Example"), "{ours}");

    if root {
        let out = run(&mut cloudtoken(&["register", "--p11-kit", "--user"]));
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("p11-kit does not read per-user module files for root"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn register_with_an_nss_database() {
    let svc = Service::shared();
    let e = enroll(svc, "alice", "Alice Example", &[]);
    let module = std::fs::canonicalize(module_path()).unwrap();
    let config = std::fs::canonicalize(&e.config).unwrap();
    let db_dir = e.dir.path().join("nssdb");

    let register = || {
        run(&mut cloudtoken(&[
            "register",
            "--nss",
            &format!("sql:{}", db_dir.display()),
            "--module",
            module.to_str().unwrap(),
        ]))
    };
    let out = register();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("There is no NSS database in")
            && text(&out.stderr).contains("certutil -N"),
        "{}",
        text(&out.stderr)
    );

    std::fs::create_dir(&db_dir).unwrap();
    let db = format!("sql:{}", db_dir.display());
    expect_ok(
        "certutil -N",
        &run(Command::new("certutil").args(["-N", "-d", &db, "--empty-password"])),
    );
    // Twice: the second registration replaces the first.
    expect_ok("register --nss", &register());
    expect_ok("register --nss again", &register());

    let modules = expect_ok(
        "modutil -list",
        &run(Command::new("modutil").args(["-dbdir", &db, "-list"])),
    );
    assert_eq!(modules.matches(". cloudtoken\n").count(), 1, "{modules}");
    assert!(modules.contains(&module.display().to_string()), "{modules}");
    // NSS loads the module, which finds its configuration, and sees the token.
    let out = run(Command::new("certutil")
        .args(["-U", "-d", &db])
        .env("CLOUDTOKEN_CONFIG", &config));
    let tokens = expect_ok("certutil -U", &out);
    assert!(tokens.contains("token: Alice Example"), "{tokens}");
}
