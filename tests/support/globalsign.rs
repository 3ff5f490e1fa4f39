//! A real `globalsign-dss-emulator` on 127.0.0.1 with a state folder of its own: the account's files
//! (client certificate and key, API secret), `demo.json`, the written module configuration, the root
//! CA the identities chain to, and module configurations of the tests' own.
//!
//! Calls: the emulator binary (paths.rs); the process helpers of service.rs.

use crate::paths::globalsign_emulator_bin;
use crate::service::die_with_parent;
use parking_lot::Mutex;
use serde::Deserialize;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `STATE/demo.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct DssDemo {
    pub api_key: String,
    pub token_label: String,
    pub common_name: String,
    pub organization: String,
}

/// A running emulator. Killed when dropped, and by the kernel when the thread that started it ends
/// (PR_SET_PDEATHSIG): start it from a [`crate::service::lasting`] thread when a static keeps it.
pub struct Emulator {
    pub state: PathBuf,
    /// The API base, `https://127.0.0.1:PORT/v2`.
    pub url: String,
    pub demo: DssDemo,
    child: Mutex<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl Emulator {
    /// `init` (with `init_args`) into a fresh folder, then `serve` (with `serve_args`, e.g.
    /// `["--identity-lifetime", "20"]`), waiting until it writes `server.url`.
    pub fn start(init_args: &[&str], serve_args: &[&str]) -> Emulator {
        let dir = tempfile::Builder::new()
            .prefix("dss-state-")
            .tempdir()
            .expect("tempdir");
        let state = dir.path().join("state");
        let out = Command::new(globalsign_emulator_bin())
            .arg("init")
            .arg("--state")
            .arg(&state)
            .args(init_args)
            .stdin(Stdio::null())
            .output()
            .expect("run globalsign-dss-emulator init");
        assert!(
            out.status.success(),
            "globalsign-dss-emulator init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.path().join("emulator.log")).expect("emulator log");
        let mut cmd = Command::new(globalsign_emulator_bin());
        cmd.arg("serve")
            .arg("--state")
            .arg(&state)
            .args(["--listen", "127.0.0.1:0"])
            .args(serve_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(log);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawn globalsign-dss-emulator serve");
        let url_file = state.join("server.url");
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            if let Some(u) = std::fs::read_to_string(&url_file)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
            {
                break u;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "globalsign-dss-emulator serve exited early ({st}):\n{}",
                    std::fs::read_to_string(dir.path().join("emulator.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the emulator did not write server.url"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let demo =
            serde_json::from_slice(&std::fs::read(state.join("demo.json")).expect("demo.json"))
                .expect("parse demo.json");
        Emulator {
            state,
            url,
            demo,
            child: Mutex::new(Some(child)),
            _dir: dir,
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.state.join(name)
    }

    /// The root CA of the service's TLS certificate and of the identities' certificates.
    pub fn ca_file(&self) -> PathBuf {
        self.file("ca.pem")
    }

    /// The module configuration `init` wrote (label `demo.token_label`, shared identities).
    pub fn config_file(&self) -> PathBuf {
        self.file("cloudtoken.toml")
    }

    /// What the emulator logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.parent().unwrap().join("emulator.log"))
            .unwrap_or_default()
    }

    /// One `[[token]]` labelled `label` on this emulator's account and identity, with `extra` lines
    /// (e.g. `identity_cache = false`).
    pub fn token_toml(&self, label: &str, extra: &str) -> String {
        let path = |name: &str| format!("{:?}", self.file(name).display().to_string());
        format!(
            "[[token]]\nlabel = {label:?}\nprotocol = \"globalsign-dss\"\nurl_file = {}\n\
             ca_file = {}\nclient_cert = {}\nclient_key = {}\napi_key = {:?}\n\
             api_secret_file = {}\nmode = \"login-free\"\nrequest_timeout_ms = 30000\n\
             subject_dn = {{ common_name = {:?}, organization = {:?} }}\n{extra}\n",
            path("server.url"),
            path("ca.pem"),
            path("client.pem"),
            path("client.key"),
            self.demo.api_key,
            path("api-secret"),
            self.demo.common_name,
            self.demo.organization,
        )
    }

    /// The audit trail's events (`event` fields), oldest first.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.file("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private folder (0700) for the identity cache of the client processes a test starts, so that
/// they share identities with each other and not with the user's own processes: pass it as their
/// `XDG_RUNTIME_DIR`.
pub fn runtime_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new()
        .prefix("dss-runtime-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}
