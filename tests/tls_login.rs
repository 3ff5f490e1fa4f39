//! TLS client authentication with the cloud key (issue #12): a local HTTPS server (`openssl s_server`)
//! requires a client certificate from the demo CA and verifies the chain; clients log in with alice's
//! login credentials (clientAuth certificates, SCAL 1) through the module: `curl` with `pkcs11:` URIs
//! (Debian 12's curl 7.88 loads them through OpenSSL's libp11 engine; it has no provider support) and
//! `openssl s_client` with a `pkcs11:` URI through pkcs11-provider, and headless Chromium (NSS) with the
//! module in its NSS database and a policy that selects the certificate. TLS 1.3 and 1.2; ECDSA P-256 and
//! RSA-PSS (the server accepts only that scheme from the client). Every login is checked on the server
//! side: s_server prints the client certificate's subject and the verification result.
//!
//! A handshake is one signature made while the client waits, so the login token is set up the way the
//! README recommends for authentication keys: login-free, with the PIN and the authenticator secret in
//! files (0600) — never SCAL 2. The service runs with 3-second TOTP steps so that each client process
//! gets a fresh code quickly.
//!
//! Needs openssl, curl, libengine-pkcs11-openssl and pkcs11-provider (tests/run.sh installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::browser::{chromium_path, spki_pin};
use support::config::{secret_file, token_toml, unattended_toml, write_config};
use support::prelude::{is_root, skip};
use support::prompt::PromptDir;
use support::service::die_with_parent;
use support::tools::{expect_ok, run, text};
use support::uri::object_uri;
use support::{module_path, Service};

const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";
use support::tools::{pkcs11_provider_conf, PKCS11_PROVIDER as PROVIDER};
const TOTP_PERIOD: u64 = 3;

/// The world of the test: the service, a login-free token per login credential, the server's files.
struct World {
    svc: Service,
    dir: tempfile::TempDir,
    config: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// One login credential as the clients name it.
struct Login {
    token: String,
    label: String,
    /// The subject s_server prints for the certificate (OpenSSL's one-line form ends with the CN).
    cn: String,
    /// The subject's organizational unit: what tells a person's login certificates apart.
    unit: String,
    /// The client signature scheme the server accepts (s_server -client_sigalgs).
    sigalg: &'static str,
}

/// The world with a login-free token per login credential, each with its PIN and authenticator secret
/// in files.
fn world() -> World {
    world_with(|svc, dir| {
        [
            ("alice-auth-p256", "Alice TLS P-256"),
            ("alice-auth-rsa2048", "Alice TLS RSA"),
        ]
        .into_iter()
        .map(|(id, label)| {
            let extra = unattended_toml(svc, dir, id, TOTP_PERIOD);
            token_toml(svc, label, "alice", &extra)
        })
        .collect()
    })
}

/// The world with one login-free token, "Alice TLS", for a browser: NSS shows a certificate held by
/// several tokens as one, so each login certificate must be on one token only. The PIN is in a file; the
/// codes of both credentials come from the shipped test prompt (playing the user's authenticator).
fn browser_world() -> World {
    world_with(|svc, dir| {
        let pin = secret_file(&dir.join("alice.pin"), &svc.demo.token_of("alice").pin);
        let prompt = PromptDir::new(dir.join("prompt"), svc, &svc.demo.token_of("alice").pin);
        let extra = format!(
            "mode = \"login-free\"\npin_file = {:?}\n{}",
            pin.display().to_string(),
            prompt.command_toml()
        );
        vec![token_toml(svc, "Alice TLS", "alice", &extra)]
    })
}

fn world_with(tokens: impl Fn(&Service, &Path) -> Vec<String>) -> World {
    let svc = Service::start_fresh_init_serve(&["--totp-period", &TOTP_PERIOD.to_string()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens(&svc, dir.path());
    let config = write_config(dir.path(), "info", &dir.path().join("module.log"), &tokens);
    let server_cert = dir.path().join("server.pem");
    let server_key = dir.path().join("server.key");
    expect_ok(
        "openssl req (server certificate)",
        &run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .arg("-keyout")
            .arg(&server_key)
            .arg("-out")
            .arg(&server_cert)),
    );
    World {
        svc,
        dir,
        config,
        server_cert,
        server_key,
    }
}

fn login(w: &World, id: &str, token: &str, sigalg: &'static str) -> Login {
    let (_, cred) = w.svc.demo.credential(id);
    assert_eq!(cred.usage, "authentication", "{id} is a login credential");
    // The subject as the module shows it: read the certificate the token holds.
    let pem = w.dir.path().join(format!("{id}.pem"));
    let der = w.dir.path().join(format!("{id}.der"));
    expect_ok(
        "pkcs11-tool --read-object",
        &run(Command::new("pkcs11-tool")
            .arg("--module")
            .arg(module_path())
            .args([
                "--token-label",
                token,
                "--label",
                &cred.label,
                "--read-object",
                "--type",
                "cert",
            ])
            .arg("--output-file")
            .arg(&der)
            .env("CLOUDTOKEN_CONFIG", &w.config)),
    );
    expect_ok(
        "openssl x509",
        &run(Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(&der)
            .arg("-out")
            .arg(&pem)),
    );
    let subject = expect_ok(
        "openssl x509 -subject",
        &run(Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-nameopt", "oneline", "-in"])
            .arg(&pem)),
    );
    let cn = subject
        .rsplit_once("CN = ")
        .map(|(_, cn)| cn.trim().to_owned())
        .unwrap_or_else(|| panic!("no CN in {subject}"));
    let unit = subject
        .split_once("OU = ")
        .and_then(|(_, rest)| rest.split(", CN = ").next())
        .map(|ou| ou.trim().to_owned())
        .unwrap_or_else(|| panic!("no OU in {subject}"));
    // The login certificate is for client authentication, from the demo CA.
    expect_ok(
        "openssl verify -purpose sslclient",
        &run(Command::new("openssl")
            .args(["verify", "-purpose", "sslclient", "-CAfile"])
            .arg(w.svc.ca_file())
            .arg(&pem)),
    );
    Login {
        token: token.to_owned(),
        label: cred.label.clone(),
        cn,
        unit,
        sigalg,
    }
}

/// `openssl s_server` on a free loopback port, requiring a client certificate from the demo CA.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(w: &World, tls: &str, sigalg: &str, name: &str, connections: u32) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = w.dir.path().join(format!("s_server-{name}.log"));
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_server",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-naccept",
        &connections.to_string(),
        "-www",
    ])
    .arg(format!("-{tls}"))
    .arg("-cert")
    .arg(&w.server_cert)
    .arg("-key")
    .arg(&w.server_key)
    // A client certificate is required and its chain must verify against the demo CA.
    .args(["-Verify", "2", "-verify_return_error", "-CAfile"])
    .arg(w.svc.ca_file())
    .args(["-client_sigalgs", sigalg])
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&log).unwrap())
    .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let child = cmd.spawn().expect("start openssl s_server");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Not probed by connecting: the server serves one connection only. It says ACCEPT when it listens.
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("ACCEPT")
    {
        assert!(
            Instant::now() < deadline,
            "s_server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port, log }
}

impl Server {
    /// What the server said about the client after the one connection it serves: the subject of the
    /// verified client certificate, or why the login failed.
    fn client_subject(mut self, cn: &str, one_connection: bool) -> Result<String, String> {
        // A one-connection server ends by itself after it; the statistics it prints then are part of
        // the check.
        let wait = if one_connection { 30 } else { 0 };
        let deadline = Instant::now() + Duration::from_secs(wait);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = self.child.kill();
            let _ = e.read_to_string(&mut err);
        }
        // The verify callback reports on standard error, the connection statistics on standard output.
        let said = format!("{log}{err}");
        let leaf = said
            .lines()
            .find(|l| l.starts_with("depth=0 ") && l.ends_with(&format!("CN = {cn}")));
        let verified = said
            .lines()
            .filter(|l| l.trim() == "verify return:1")
            .count();
        let finished = !one_connection || log.contains("1 server accepts that finished");
        match leaf {
            Some(l) if verified >= 2 && finished && !said.contains("verify error") => {
                Ok(l.to_owned())
            }
            _ => Err(format!("the server did not verify {cn:?}:\n{said}")),
        }
    }
}

/// The libp11 engine over the module, for curl.
fn engine_conf(w: &World) -> PathBuf {
    let p = w.dir.path().join("engine.cnf");
    std::fs::write(
        &p,
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n\
             [engine_section]\npkcs11 = pkcs11_section\n[pkcs11_section]\nengine_id = pkcs11\n\
             dynamic_path = {ENGINE}\nMODULE_PATH = {}\ninit = 0\n",
            module_path().display()
        ),
    )
    .unwrap();
    p
}

/// pkcs11-provider over the module, for openssl s_client.
fn provider_conf(w: &World) -> PathBuf {
    pkcs11_provider_conf(&w.dir.path().join("provider.cnf"), &module_path(), None)
}

fn with_deadline(cmd: &mut Command) -> std::process::Output {
    die_with_parent(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    let started = Instant::now();
    while child.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().expect("client output")
}

#[derive(Clone, Copy, Debug)]
enum Tool {
    Curl,
    SClient,
    Chromium,
}

/// The HOME Chromium runs with: its NSS database (`$HOME/.pki/nssdb`, where Chromium on Linux keeps
/// certificates and security devices) holds the module, added with NSS's own modutil.
fn chromium_home(w: &World) -> PathBuf {
    let home = w.dir.path().join("chromium-home");
    let db = home.join(".pki/nssdb");
    if !db.join("pkcs11.txt").exists() {
        std::fs::create_dir_all(&db).unwrap();
        let sql = format!("sql:{}", db.display());
        expect_ok(
            "certutil -N",
            &run(Command::new("certutil").args(["-N", "--empty-password", "-d", &sql])),
        );
        expect_ok(
            "modutil -add",
            &run(Command::new("modutil")
                .args(["-force", "-dbdir", &sql, "-add", "cloudtoken", "-libfile"])
                .arg(module_path())
                .env("CLOUDTOKEN_CONFIG", &w.config)),
        );
    }
    home
}

/// Chromium's managed policies: read by every Chromium on the machine at start, so the file names
/// this test's server only, and is removed however the test ends.
const POLICY_DIR: &str = "/etc/chromium/policies/managed";

struct Policy(PathBuf);

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// AutoSelectCertificateForUrls for `port`: Chromium picks the certificate of `l`'s subject without
/// asking (what an administrator sets up for a web login with a token; headless Chromium has no
/// certificate chooser).
fn auto_select(port: u16, l: &Login, name: &str) -> Policy {
    std::fs::create_dir_all(POLICY_DIR).unwrap();
    let file = Path::new(POLICY_DIR).join(format!(
        "cloudtoken-tls-login-{}-{name}.json",
        std::process::id()
    ));
    let rule = serde_json::json!({
        "pattern": format!("https://127.0.0.1:{port}"),
        "filter": {"SUBJECT": {"CN": l.cn, "OU": l.unit}},
    })
    .to_string();
    let policy = serde_json::json!({ "AutoSelectCertificateForUrls": [rule] });
    std::fs::write(&file, policy.to_string()).unwrap();
    Policy(file)
}

fn log_in(w: &World, l: &Login, client: Tool, tls: &str) -> Result<String, String> {
    let name = format!("{client:?}-{tls}-{}", l.sigalg);
    // Chromium opens several connections (preconnects; it answers the certificate request by closing
    // the connection, choosing, and connecting again): its server serves up to 20 and is stopped when
    // Chromium has the page.
    let connections = if matches!(client, Tool::Chromium) {
        20
    } else {
        1
    };
    let server = serve(w, tls, l.sigalg, &name, connections);
    let out = match client {
        Tool::Curl => with_deadline(
            Command::new("curl")
                .args(["--silent", "--show-error", "--fail", "--max-time", "60"])
                .arg(if tls == "tls1_3" {
                    "--tlsv1.3"
                } else {
                    "--tlsv1.2"
                })
                .args(["--tls-max", if tls == "tls1_3" { "1.3" } else { "1.2" }])
                .arg("--cacert")
                .arg(&w.server_cert)
                .args([
                    "--cert",
                    &object_uri(&l.token, &l.label, "cert"),
                    "--key",
                    &object_uri(&l.token, &l.label, "private"),
                ])
                .arg(format!("https://127.0.0.1:{}/", server.port))
                .env("OPENSSL_CONF", engine_conf(w))
                .env("CLOUDTOKEN_CONFIG", &w.config),
        ),
        Tool::SClient => with_deadline(
            Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &format!("127.0.0.1:{}", server.port),
                ])
                .arg(format!("-{tls}"))
                .arg("-CAfile")
                .arg(&w.server_cert)
                .args(["-verify_return_error", "-cert"])
                .arg(w.dir.path().join(format!("{}.pem", cred_id(l))))
                .args(["-key", &object_uri(&l.token, &l.label, "private")])
                .env("OPENSSL_CONF", provider_conf(w))
                .env("CLOUDTOKEN_CONFIG", &w.config),
        ),
        Tool::Chromium => {
            let _policy = auto_select(server.port, l, &name);
            let home = chromium_home(w);
            let out = with_deadline(
                Command::new(chromium_path())
                    .args([
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--no-first-run",
                    ])
                    .args([
                        "--disable-background-networking",
                        "--disable-component-update",
                    ])
                    .arg("--disable-sync")
                    .arg(format!(
                        "--user-data-dir={}",
                        w.dir.path().join(format!("profile-{name}")).display()
                    ))
                    .arg(format!(
                        "--ignore-certificate-errors-spki-list={}",
                        spki_pin(&w.server_cert)
                    ))
                    .arg("--dump-dom")
                    .arg(format!("https://127.0.0.1:{}/", server.port))
                    .env("HOME", &home)
                    .env("CLOUDTOKEN_CONFIG", &w.config),
            );
            // The page s_server -www serves describes the session, with the client's certificate.
            let page = text(&out.stdout);
            if !page.contains("Client certificate")
                || !page.contains(&l.cn)
                || !page.contains(&l.unit)
            {
                // Without a session bus Chromium logs D-Bus failures by the dozen; they say nothing here.
                let stderr = text(&out.stderr);
                let said: Vec<&str> = page
                    .lines()
                    .chain(stderr.lines())
                    .filter(|l| !l.contains("dbus"))
                    .collect();
                let said = said.join("\n");
                let log =
                    std::fs::read_to_string(w.dir.path().join("module.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(12).collect();
                let said = format!(
                    "{said}\n--- the module's log, last lines:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
                return Err(format!(
                    "Chromium {tls} {}: the page does not show {:?} as the client certificate:\n{said}",
                    l.sigalg, l.cn
                ));
            }
            out
        }
    };
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let subject = server.client_subject(&l.cn, connections == 1);
    match (out.status.success(), subject) {
        (true, Ok(s)) => Ok(s),
        (_, Err(e)) => Err(format!(
            "{client:?} {tls} {}: {e}\nclient said:\n{said}",
            l.sigalg
        )),
        (false, Ok(_)) => Err(format!(
            "{client:?} {tls} failed although the server verified it:\n{said}"
        )),
    }
}

fn cred_id(l: &Login) -> &'static str {
    if l.sigalg.starts_with("ECDSA") {
        "alice-auth-p256"
    } else {
        "alice-auth-rsa2048"
    }
}

/// Each client logs in with each login credential over TLS 1.3 and 1.2; the table of what the server
/// verified, or the failures.
fn every_login(w: &World, logins: &[Login], clients: &[Tool]) {
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for l in logins {
        for &client in clients {
            for tls in ["tls1_3", "tls1_2"] {
                match log_in(w, l, client, tls) {
                    Ok(s) => table.push(format!(
                        "{client:?} {tls} {}: server verified {s}",
                        l.sigalg
                    )),
                    Err(e) => failures.push(e),
                }
            }
        }
    }
    eprintln!("{}", table.join("\n"));
    let tried = logins.len() * clients.len() * 2;
    assert!(
        failures.is_empty(),
        "{} of {tried} logins failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(table.len(), tried);
}

#[test]
fn curl_and_openssl_log_in_with_the_cloud_key() {
    for tool in ["/usr/bin/curl", "/usr/bin/openssl", ENGINE, PROVIDER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing (tests/run.sh installs it)"
        );
    }
    let w = world();
    let logins = [
        login(&w, "alice-auth-p256", "Alice TLS P-256", "ECDSA+SHA256"),
        login(&w, "alice-auth-rsa2048", "Alice TLS RSA", "RSA-PSS+SHA256"),
    ];
    every_login(&w, &logins, &[Tool::Curl, Tool::SClient]);
}

#[test]
fn chromium_logs_in_with_the_cloud_key() {
    // Chromium has no switch for AutoSelectCertificateForUrls; only a managed policy (root) sets it.
    if !is_root() {
        skip("writing a Chromium policy under /etc/chromium/policies/managed needs root");
        return;
    }
    chromium_path();
    let w = browser_world();
    let logins = [
        login(&w, "alice-auth-p256", "Alice TLS", "ECDSA+SHA256"),
        login(&w, "alice-auth-rsa2048", "Alice TLS", "RSA-PSS+SHA256"),
    ];
    every_login(&w, &logins, &[Tool::Chromium]);
}
