//! A real `csc-server` on 127.0.0.1 with a state folder of its own, the demo data `init` writes
//! (`demo.json`: users, PINs, credentials and their TOTP secrets) and the service's "SMS outbox".
//!
//! Calls: the `csc-server` binary (paths.rs). The audit trail is read by audit.rs.

use crate::paths::csc_server_bin;
use once_cell::sync::OnceCell;
use parking_lot::Mutex;
use serde::Deserialize;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
pub struct Demo {
    pub tokens: Vec<DemoToken>,
    /// The OAuth 2.0 clients `init` registered.
    #[serde(default)]
    pub oauth2_clients: Vec<DemoClient>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DemoClient {
    pub client_id: String,
    /// `None`: a public client.
    pub client_secret: Option<String>,
    /// The account a client_credentials client acts for.
    pub account: Option<String>,
    pub grant_types: Vec<String>,
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
    /// The account's API key (`x-api-key`).
    #[serde(default)]
    pub api_key: Option<String>,
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
    /// The registered OAuth 2.0 client `id`.
    pub fn client(&self, id: &str) -> &DemoClient {
        self.oauth2_clients
            .iter()
            .find(|c| c.client_id == id)
            .unwrap_or_else(|| panic!("demo.json has no OAuth 2.0 client {id}"))
    }

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

    /// The credential with this id and its token.
    pub fn credential(&self, id: &str) -> (&DemoToken, &DemoCredential) {
        self.find(|c| c.id == id)
    }
}

/// Starts something that owns a child process from a thread that lives as long as the process: a
/// child started with PR_SET_PDEATHSIG dies with the *thread* that spawned it, and each test runs on a
/// thread of its own.
pub fn lasting<T: Send + 'static>(start: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(start());
        loop {
            std::thread::park();
        }
    });
    rx.recv().expect("start from a lasting thread")
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
        SHARED.get_or_init(|| lasting(Service::start_fresh))
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
        let (dir, state) = init_state(init_args);
        let mut svc = Service::serve_logged(&state, serve_args, None);
        svc._dir = Some(dir);
        svc
    }

    /// `start_fresh_init_serve` with the service logging at trace level (RUST_LOG=trace) into `log`,
    /// for tests that search every log for secrets.
    pub fn start_fresh_logged(init_args: &[&str], serve_args: &[&str], log: &Path) -> Service {
        let (dir, state) = init_state(init_args);
        let mut svc = Service::serve_logged(&state, serve_args, Some(log));
        svc._dir = Some(dir);
        svc
    }

    /// A service of its own whose TOTP codes change every `period` seconds, started from a lasting
    /// thread (see [`lasting`]) so that a static test environment can keep it.
    pub fn lasting_with_totp_period(period: u64) -> Service {
        lasting(move || {
            Service::start_fresh_init_serve(&["--totp-period", &period.to_string()], &[])
        })
    }

    /// Starts `csc-server serve` on an initialized state folder and waits for `server.url`.
    pub fn serve(state: &Path) -> Service {
        Service::serve_logged(state, &[], None)
    }

    fn serve_logged(state: &Path, serve_args: &[&str], log: Option<&Path>) -> Service {
        let _ = std::fs::remove_file(state.join("server.url"));
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
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawn csc-server serve");
        let url = wait_for_url(&mut child, state, "csc-server serve");
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
        std::fs::read_to_string(self.refresh_token_file(user))
            .unwrap_or_else(|e| panic!("read {user}.refresh: {e}"))
            .trim()
            .to_owned()
    }

    /// `STATE/<user>.refresh`.
    pub fn refresh_token_file(&self, user: &str) -> PathBuf {
        self.state.join(format!("{user}.refresh"))
    }

    /// SMS lines in the outbox for `credential` (all users), oldest first.
    pub fn sms_messages(&self, credential_id: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.state.join("sms-outbox.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["credential"].as_str() == Some(credential_id))
            .collect()
    }

    /// The SMS the service sent for `credential`, oldest first: (code, description).
    pub fn sms(&self, credential_id: &str) -> Vec<(String, String)> {
        self.sms_messages(credential_id)
            .iter()
            .map(|m| {
                (
                    m["code"].as_str().unwrap_or_default().to_owned(),
                    m["description"].as_str().unwrap_or_default().to_owned(),
                )
            })
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

    /// Stops the server and keeps its state folder (tests of what clients do when it is gone).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes `dir` when the process exits: services kept in a test binary's statics are never dropped
/// (statics are not), and their state folders would otherwise stay in /tmp after every run.
pub fn remove_at_exit(dir: PathBuf) {
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_all() {
        if let Some(mut dirs) = DIRS.try_lock() {
            for d in dirs.drain(..) {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    // SAFETY: registers a handler that only removes folders; it runs at normal process exit.
    REGISTER.call_once(|| unsafe {
        libc::atexit(remove_all);
    });
    DIRS.lock().push(dir);
}

/// `csc-server init` into a fresh temporary folder: (the folder, its `state` subfolder).
fn init_state(init_args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("csc-state-")
        .tempdir()
        .expect("tempdir");
    remove_at_exit(dir.path().to_path_buf());
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
    (dir, state)
}

/// The URL a reference service `child` serving `state` writes to `STATE/server.url` once it accepts
/// connections (at most 60 s; `what` names it in the failure).
pub fn wait_for_url(child: &mut Child, state: &Path, what: &str) -> String {
    let url_file = state.join("server.url");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = std::fs::read_to_string(&url_file) {
            let s = s.trim().to_owned();
            if !s.is_empty() {
                return s;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited early: {st}");
        }
        assert!(Instant::now() < deadline, "{what} did not write server.url");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Has the kernel kill the command's process when the thread that spawned it ends (PR_SET_PDEATHSIG), so
/// that no helper outlives a test run.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
