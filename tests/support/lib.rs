//! Shared test support: a real `csc-server` on 127.0.0.1, the demo data it writes, TOTP codes, the SMS
//! outbox, and independent signature verification with the `openssl` command line.
//!
//! Binaries are found next to the test executable's directory (`target/<profile>/`), so the README test
//! command builds the workspace once (`cargo build`) before `cargo test` in the same profile.

use once_cell::sync::OnceCell;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `target/<profile>/` of the running test binary (it lives in `target/<profile>/deps/`).
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

pub fn csc_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CSC_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let p = target_profile_dir().join("csc-server");
    assert!(
        p.exists(),
        "{} missing: run `cargo build` in the same profile before the tests",
        p.display()
    );
    p
}

/// The built PKCS#11 module, `libcloudtoken.so`.
pub fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("CLOUDTOKEN_MODULE") {
        return PathBuf::from(p);
    }
    let p = target_profile_dir().join("libcloudtoken.so");
    assert!(
        p.exists(),
        "{} missing: run `cargo build` in the same profile before the tests",
        p.display()
    );
    p
}

#[derive(Debug, Clone, Deserialize)]
pub struct Demo {
    pub tokens: Vec<DemoToken>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DemoToken {
    pub label: String,
    pub user: String,
    pub password: String,
    pub pin: String,
    /// Base32 TOTP secret of the account: the second factor of the approval page login.
    #[serde(default)]
    pub approval_totp_secret: Option<String>,
    #[serde(default)]
    pub approval_totp_period: Option<u64>,
    pub credentials: Vec<DemoCredential>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DemoCredential {
    pub id: String,
    pub label: String,
    /// "rsa-2048" | "rsa-3072" | "ec-p256" | "ec-p384"
    pub key: String,
    /// "totp" | "sms" | "approval" (no code: the user approves each request on the approval page)
    pub otp: String,
    pub totp_secret: Option<String>,
    #[serde(default)]
    pub totp_period: Option<u64>,
    pub scal: u8,
    pub multisign: u32,
    /// "signing" (documents, seals) or "authentication" (TLS client login: a clientAuth certificate).
    #[serde(default = "signing")]
    pub usage: String,
    /// Seconds a SAD lives when the credential has a lifetime of its own (the e-seals).
    #[serde(default)]
    pub sad_lifetime: Option<u64>,
}

fn signing() -> String {
    "signing".to_owned()
}

impl Demo {
    pub fn token_of(&self, user: &str) -> &DemoToken {
        self.tokens
            .iter()
            .find(|t| t.user == user)
            .unwrap_or_else(|| panic!("no demo token for {user}"))
    }

    /// The first credential anywhere that matches.
    pub fn find(&self, pred: impl Fn(&DemoCredential) -> bool) -> (&DemoToken, &DemoCredential) {
        for t in &self.tokens {
            for c in &t.credentials {
                if pred(c) {
                    return (t, c);
                }
            }
        }
        panic!("no demo credential matches");
    }
}

/// A running `csc-server` with its own state folder. Killed when dropped, and by the kernel when the test
/// process dies (PR_SET_PDEATHSIG), so no server outlives a test run.
pub struct Service {
    pub state: PathBuf,
    pub url: String,
    pub demo: Demo,
    child: Mutex<Option<Child>>,
    _dir: Option<tempfile::TempDir>,
}

impl Service {
    /// One service shared by every test of this test binary.
    pub fn shared() -> &'static Service {
        static SHARED: OnceCell<Service> = OnceCell::new();
        // PR_SET_PDEATHSIG fires when the *thread* that spawned the server ends, and each test runs on a
        // thread of its own: start the shared server from a thread that lives as long as the process.
        SHARED.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(Service::start_fresh());
                loop {
                    std::thread::park();
                }
            });
            rx.recv().expect("start the shared csc-server")
        })
    }

    /// A service of its own, for tests that change server-wide state (lockouts).
    pub fn start_fresh() -> Service {
        Service::start_fresh_with(&[])
    }

    /// A service of its own started with extra `serve` arguments, e.g. `["--sad-lifetime", "2"]`.
    pub fn start_fresh_with(serve_args: &[&str]) -> Service {
        Service::start_fresh_init_serve(&[], serve_args)
    }

    /// A service of its own with extra `init` arguments (e.g. `["--totp-period", "3"]`) and extra `serve`
    /// arguments.
    pub fn start_fresh_init_serve(init_args: &[&str], serve_args: &[&str]) -> Service {
        let dir = tempfile::Builder::new()
            .prefix("csc-state-")
            .tempdir()
            .expect("tempdir");
        let state = dir.path().join("state");
        let status = Command::new(csc_server_bin())
            .arg("init")
            .arg("--state")
            .arg(&state)
            .args(init_args)
            .stdin(Stdio::null())
            .status()
            .expect("run csc-server init");
        assert!(status.success(), "csc-server init failed: {status}");
        let mut svc = Service::serve_with(&state, serve_args);
        svc._dir = Some(dir);
        svc
    }

    /// Starts `csc-server serve` on an initialized state folder and waits for `server.url`.
    pub fn serve(state: &Path) -> Service {
        Service::serve_with(state, &[])
    }

    /// `serve` with extra arguments after `--listen`.
    pub fn serve_with(state: &Path, serve_args: &[&str]) -> Service {
        Service::serve_logged(state, serve_args, None)
    }

    /// `start_fresh_init_serve` with the service logging at trace level (RUST_LOG=trace) into `log`,
    /// for tests that search every log for secrets.
    pub fn start_fresh_logged(init_args: &[&str], serve_args: &[&str], log: &Path) -> Service {
        let dir = tempfile::Builder::new()
            .prefix("csc-state-")
            .tempdir()
            .expect("tempdir");
        let state = dir.path().join("state");
        let status = Command::new(csc_server_bin())
            .arg("init")
            .arg("--state")
            .arg(&state)
            .args(init_args)
            .stdin(Stdio::null())
            .status()
            .expect("run csc-server init");
        assert!(status.success(), "csc-server init failed: {status}");
        let mut svc = Service::serve_logged(&state, serve_args, Some(log));
        svc._dir = Some(dir);
        svc
    }

    fn serve_logged(state: &Path, serve_args: &[&str], log: Option<&Path>) -> Service {
        let url_file = state.join("server.url");
        let _ = std::fs::remove_file(&url_file);
        let mut cmd = Command::new(csc_server_bin());
        cmd.arg("serve")
            .arg("--state")
            .arg(state)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(serve_args)
            .stdin(Stdio::null());
        if let Some(log) = log {
            let file = std::fs::File::create(log).expect("create the service log");
            cmd.env("RUST_LOG", "trace").stderr(file);
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn csc-server serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            if let Ok(s) = std::fs::read_to_string(&url_file) {
                let s = s.trim().to_owned();
                if !s.is_empty() {
                    break s;
                }
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("csc-server serve exited early: {st}");
            }
            assert!(
                Instant::now() < deadline,
                "csc-server did not write server.url"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let demo: Demo = serde_json::from_slice(
            &std::fs::read(state.join("demo.json")).expect("read demo.json"),
        )
        .expect("parse demo.json");
        Service {
            state: state.to_path_buf(),
            url,
            demo,
            child: Mutex::new(Some(child)),
            _dir: None,
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.state.join("ca.pem")
    }

    pub fn config_file(&self) -> PathBuf {
        self.state.join("cloudtoken.toml")
    }

    /// The refresh token `init` issued for `user` (`STATE/<user>.refresh`).
    pub fn refresh_token(&self, user: &str) -> String {
        std::fs::read_to_string(self.state.join(format!("{user}.refresh")))
            .unwrap_or_else(|e| panic!("read {user}.refresh: {e}"))
            .trim()
            .to_owned()
    }

    /// SMS lines in the outbox for `credential` (all users), oldest first.
    pub fn sms_messages(&self, credential_id: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.state.join("sms-outbox.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["credential"].as_str() == Some(credential_id))
            .collect()
    }

    /// Waits until the outbox holds more than `seen` messages for `credential_id`; returns the newest code.
    pub fn wait_sms_code(&self, credential_id: &str, seen: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let msgs = self.sms_messages(credential_id);
            if msgs.len() > seen {
                return msgs
                    .last()
                    .and_then(|m| m["code"].as_str())
                    .expect("sms line has a code")
                    .to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no SMS arrived for {credential_id}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Hands out TOTP codes the service will accept: the service refuses a code whose time step is not newer
/// than the last one it accepted for that credential (RFC 6238 §5.2), so each call returns a code for a
/// step after every step handed out before, waiting for the clock where needed.
pub fn totp_code(cred: &DemoCredential) -> String {
    let secret = cred
        .totp_secret
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no TOTP secret", cred.id));
    fresh_totp_code(secret, cred.totp_period.unwrap_or(30))
}

/// A code for a time step newer than every step handed out before for this `secret` (one TOTP secret is
/// one credential or one account), waiting for the clock where needed.
fn fresh_totp_code(secret: &str, period: u64) -> String {
    static LAST: OnceCell<Mutex<HashMap<String, u64>>> = OnceCell::new();
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32 TOTP secret");
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, period, bytes);
    let map = LAST.get_or_init(|| Mutex::new(HashMap::new()));
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let step_now = now / period;
        let mut last = map.lock();
        let next = last
            .get(secret)
            .map(|s| s + 1)
            .unwrap_or(step_now)
            .max(step_now);
        // The service accepts one step of drift; stay within it.
        if next <= step_now + 1 {
            last.insert(secret.to_owned(), next);
            return totp.generate(next * period);
        }
        drop(last);
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How a signature was made, for `openssl_verify`.
#[derive(Debug, Clone, Copy)]
pub enum Scheme {
    /// RSASSA-PKCS1-v1_5 over a hash.
    RsaPkcs1,
    /// RSASSA-PSS with MGF1 using the same hash and this salt length.
    RsaPss { salt_len: usize },
    /// ECDSA; the signature is DER `Ecdsa-Sig-Value`.
    EcdsaDer,
    /// ECDSA; the signature is PKCS#11's fixed-width r||s.
    EcdsaRaw,
}

/// Verifies `signature` over the *hash* `digest` with the certificate's public key, using the `openssl`
/// command line, independently of the code that made it. `hash` is "sha1", "sha256", ...
pub fn openssl_verify(
    cert_der: &[u8],
    hash: &str,
    digest: &[u8],
    signature: &[u8],
    scheme: Scheme,
) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.der");
    std::fs::write(&cert, cert_der).unwrap();
    let pubkey = dir.path().join("pub.pem");
    let out = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&cert)
        .args(["-pubkey", "-noout", "-out"])
        .arg(&pubkey)
        .output()
        .expect("run openssl x509");
    assert!(
        out.status.success(),
        "openssl x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = match scheme {
        Scheme::EcdsaRaw => ecdsa_raw_to_der(signature),
        _ => signature.to_vec(),
    };
    std::fs::write(dir.path().join("sig"), &sig).unwrap();
    std::fs::write(dir.path().join("digest"), digest).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir.path())
        .args([
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-in", "digest", "-sigfile", "sig",
        ])
        .args(["-pkeyopt", &format!("digest:{hash}")]);
    if let Scheme::RsaPss { salt_len } = scheme {
        cmd.args(["-pkeyopt", "rsa_padding_mode:pss"])
            .args(["-pkeyopt", &format!("rsa_pss_saltlen:{salt_len}")])
            .args(["-pkeyopt", &format!("rsa_mgf1_md:{hash}")]);
    }
    let out = cmd.output().expect("run openssl pkeyutl");
    out.status.success()
}

/// Fixed-width r||s to DER `Ecdsa-Sig-Value`, for openssl.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Vec<u8> {
    use der::Encode;
    #[derive(der::Sequence)]
    struct EcdsaSigValue<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    assert!(
        raw.len().is_multiple_of(2) && !raw.is_empty(),
        "r||s has an even length"
    );
    let (r, s) = raw.split_at(raw.len() / 2);
    EcdsaSigValue {
        r: der::asn1::UintRef::new(r).expect("r"),
        s: der::asn1::UintRef::new(s).expect("s"),
    }
    .to_der()
    .expect("encode Ecdsa-Sig-Value")
}

/// Writes `data` to a file in a fresh temporary folder; returns both (the folder must outlive the use).
pub fn temp_file(name: &str, data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(data).expect("write");
    (dir, p)
}

/// The code of `token`'s account authenticator for the approval page login (`GET /approve`). Like
/// `totp_code`, each call returns a code for a newer time step than the calls before for the same
/// account (secret), waiting for the clock where needed, because the service refuses a replayed step.
pub fn account_code(token: &DemoToken) -> String {
    let secret = token
        .approval_totp_secret
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no approval_totp_secret in demo.json", token.user));
    fresh_totp_code(secret, token.approval_totp_period.unwrap_or(30))
}

/// The `cloudtoken` command-line tool, built next to the module.
pub fn cloudtoken_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CLOUDTOKEN_BIN") {
        return PathBuf::from(p);
    }
    let p = target_profile_dir().join("cloudtoken");
    assert!(
        p.exists(),
        "{} missing: run `cargo build` in the same profile before the tests",
        p.display()
    );
    p
}

/// One entry of a service's audit trail.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub event: String,
    pub user: Option<String>,
    pub credential: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// The audit entries of `event` (e.g. "credentials/authorize") in the state folder's database, oldest
/// first, read without changing anything (the service may be running).
pub fn audit_entries(state: &Path, event: &str) -> Vec<AuditEntry> {
    let db = rusqlite::Connection::open_with_flags(
        state.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open state.db read-only");
    let mut stmt = db
        .prepare(
            "SELECT event, user, credential, outcome, detail FROM audit WHERE event = ?1 ORDER BY seq",
        )
        .expect("prepare the audit query");
    let rows = stmt
        .query_map([event], |r| {
            Ok(AuditEntry {
                event: r.get(0)?,
                user: r.get(1)?,
                credential: r.get(2)?,
                outcome: r.get(3)?,
                detail: r.get(4)?,
            })
        })
        .expect("query the audit trail");
    rows.map(|r| r.expect("audit row")).collect()
}

impl Service {
    /// This service's audit entries of `event`; see [`audit_entries`].
    pub fn audit(&self, event: &str) -> Vec<AuditEntry> {
        audit_entries(&self.state, event)
    }
}

impl Service {
    /// Stops the server and keeps its state folder (tests of what clients do when it is gone).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
