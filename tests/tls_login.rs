//! TLS client authentication with the cloud key (issue #12): a local HTTPS server (`openssl s_server`)
//! requires a client certificate from the demo CA and verifies the chain; clients log in with alice's
//! login credentials (clientAuth certificates, SCAL 1) through the module: `curl` with `pkcs11:` URIs
//! (Debian 12's curl 7.88 loads them through OpenSSL's libp11 engine; it has no provider support) and
//! `openssl s_client` with a `pkcs11:` URI through pkcs11-provider. TLS 1.3 and 1.2; ECDSA P-256 and
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
use support::config::{token_toml, unattended_toml, write_config};
use support::service::die_with_parent;
use support::tools::{expect_ok, run, text};
use support::uri::object_uri;
use support::{module_path, Service};

const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";
const PROVIDER: &str = "/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so";
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
    /// The client signature scheme the server accepts (s_server -client_sigalgs).
    sigalg: &'static str,
}

fn world() -> World {
    let svc = Service::start_fresh_init_serve(&["--totp-period", &TOTP_PERIOD.to_string()], &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut tokens = Vec::new();
    for (id, label) in [
        ("alice-auth-p256", "Alice TLS P-256"),
        ("alice-auth-rsa2048", "Alice TLS RSA"),
    ] {
        let extra = unattended_toml(&svc, dir.path(), id, TOTP_PERIOD);
        tokens.push(token_toml(&svc, label, "alice", &extra));
    }
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

fn serve(w: &World, tls: &str, sigalg: &str, name: &str) -> Server {
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
        "1",
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
    fn client_subject(mut self, cn: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
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
        let finished = log.contains("1 server accepts that finished");
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
    let p = w.dir.path().join("provider.cnf");
    std::fs::write(
        &p,
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n\
             [provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n[default_sect]\nactivate = 1\n\
             [pkcs11_sect]\nmodule = {PROVIDER}\npkcs11-module-path = {}\nactivate = 1\n",
            module_path().display()
        ),
    )
    .unwrap();
    p
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
enum Client {
    Curl,
    SClient,
}

fn log_in(w: &World, l: &Login, client: Client, tls: &str) -> Result<String, String> {
    let name = format!("{client:?}-{tls}-{}", l.sigalg);
    let server = serve(w, tls, l.sigalg, &name);
    let out = match client {
        Client::Curl => with_deadline(
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
        Client::SClient => with_deadline(
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
    };
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let subject = server.client_subject(&l.cn);
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
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for l in &logins {
        for client in [Client::Curl, Client::SClient] {
            for tls in ["tls1_3", "tls1_2"] {
                match log_in(&w, l, client, tls) {
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
    assert!(
        failures.is_empty(),
        "{} of 8 logins failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
