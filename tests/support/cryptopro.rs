//! A real `cryptopro-dss-emulator` on 127.0.0.1 with a state folder of its own: the demo data `init`
//! writes (`demo.json`: users, passwords, the confirmation page's authenticator secrets, certificates),
//! the module configuration it writes (`cloudtoken.toml`), and the emulator's own "phone"
//! (`demo-confirm`).
//!
//! Calls: the emulator binary (paths.rs); shares the service's child handling (service.rs).

use crate::paths::cryptopro_emulator_bin;
use crate::service::{die_with_parent, remove_at_exit, wait_for_url};
use parking_lot::Mutex;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

#[derive(Debug, Clone, Deserialize)]
pub struct DssDemo {
    pub client_id: String,
    pub users: Vec<DssUser>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DssUser {
    pub name: String,
    pub display_name: String,
    pub password: String,
    /// Base32 TOTP secret of the confirmation page's sign-in.
    pub account_totp_secret: String,
    pub account_totp_period: u64,
    pub certificates: Vec<DssCert>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DssCert {
    pub id: u32,
    pub friendly_name: String,
    /// "gost2012-256" | "gost2012-512" | "rsa-2048"
    pub key: String,
}

impl DssDemo {
    pub fn user(&self, name: &str) -> &DssUser {
        self.users
            .iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("no demo user {name}"))
    }
}

impl DssUser {
    /// A code of the page authenticator newer than every one handed out before (totp.rs).
    pub fn page_code(&self) -> String {
        crate::totp::fresh_totp_code(&self.account_totp_secret, self.account_totp_period)
    }
}

/// A running emulator. Killed when dropped, and by the kernel when the thread that started it ends
/// (PR_SET_PDEATHSIG; start it through `service::lasting` to share it between tests).
pub struct DssEmulator {
    pub state: PathBuf,
    pub url: String,
    pub demo: DssDemo,
    child: Mutex<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl DssEmulator {
    /// `init` into a fresh folder, then `serve` with `serve_args` (e.g. `["--confirmation-timeout",
    /// "5"]`), waiting for `server.url`.
    pub fn start(serve_args: &[&str]) -> DssEmulator {
        let dir = tempfile::Builder::new()
            .prefix("dss-state-")
            .tempdir()
            .expect("tempdir");
        remove_at_exit(dir.path().to_path_buf());
        let state = dir.path().join("state");
        let out = Command::new(cryptopro_emulator_bin())
            .arg("init")
            .arg("--state")
            .arg(&state)
            .stdin(Stdio::null())
            .output()
            .expect("run cryptopro-dss-emulator init");
        assert!(
            out.status.success(),
            "cryptopro-dss-emulator init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cmd = Command::new(cryptopro_emulator_bin());
        cmd.arg("serve")
            .arg("--state")
            .arg(&state)
            .args(serve_args)
            .stdin(Stdio::null());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawn cryptopro-dss-emulator serve");
        let url = wait_for_url(&mut child, &state, "cryptopro-dss-emulator serve");
        let demo = serde_json::from_slice(&std::fs::read(state.join("demo.json")).unwrap())
            .expect("parse demo.json");
        DssEmulator {
            state,
            url,
            demo,
            child: Mutex::new(Some(child)),
            _dir: dir,
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.state.join("ca.pem")
    }

    /// The module configuration `init` wrote (tokens "Alice DSS", "Alice DSS session", ...).
    pub fn config_file(&self) -> PathBuf {
        self.state.join("cloudtoken.toml")
    }

    /// The user's phone: `demo-confirm` waits for `count` confirmations of `user` and confirms (or
    /// declines) each; started now, collected with [`Phone::done`].
    pub fn phone(&self, user: &str, decline: bool, count: u32) -> Phone {
        let mut cmd = Command::new(cryptopro_emulator_bin());
        cmd.arg("demo-confirm")
            .arg("--state")
            .arg(&self.state)
            .args([
                "--user",
                user,
                "--count",
                &count.to_string(),
                "--wait",
                "60",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if decline {
            cmd.arg("--decline");
        }
        die_with_parent(&mut cmd);
        Phone(cmd.spawn().expect("spawn demo-confirm"))
    }

    /// The audit trail's entries of `event` (csc-server's schema).
    pub fn audit(&self, event: &str) -> Vec<crate::AuditEntry> {
        crate::audit_entries(&self.state, event)
    }
}

impl Drop for DssEmulator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running `demo-confirm`.
pub struct Phone(Child);

impl Phone {
    /// Its output once it has answered (it gives up by itself after 60 s without a confirmation).
    pub fn done(self) -> Output {
        self.0.wait_with_output().expect("wait for demo-confirm")
    }
}

/// The emulator's `cloudtoken.toml` written into `dir` with its paths made absolute and `extra`
/// appended to every token (e.g. a short `approval_timeout_ms`).
pub fn config_with(emulator: &DssEmulator, dir: &Path, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(emulator.config_file()).unwrap();
    let state = emulator.state.display().to_string();
    let text = text
        .replace("url_file = \"", &format!("url_file = \"{state}/"))
        .replace("ca_file = \"", &format!("ca_file = \"{state}/"))
        .replace("password_file = \"", &format!("password_file = \"{state}/"))
        .replace("batch_size = 10\n", &format!("batch_size = 10\n{extra}"));
    let path = dir.join("cloudtoken.toml");
    crate::config::write_private(&path, &text);
    path
}
