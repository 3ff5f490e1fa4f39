//! The state folder: what `init` writes and `serve` reads — the HSM (SoftHSM2 configuration and token
//! folder, with the service's CA keys and the identities' keys), the certificates, the TLS key, the
//! account, the files a customer gets from GlobalSign (client certificate and key, API key and secret)
//! and a module configuration that uses them, and the audit trail.

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The label of the emulator's token in its HSM.
pub const HSM_TOKEN: &str = "globalsign-dss-emulator";

pub struct StateDir(PathBuf);

impl StateDir {
    pub fn new(path: PathBuf) -> StateDir {
        StateDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// The SoftHSM user PIN of the emulator's token (the service's own secret).
    pub fn hsm_pin(&self) -> PathBuf {
        self.file("hsm.pin")
    }
    pub fn softhsm_conf(&self) -> PathBuf {
        self.file(hsm_store::softhsm::CONF_FILE)
    }
    /// The root CA: what clients trust for TLS and for the identities' certificates.
    pub fn ca_pem(&self) -> PathBuf {
        self.file("ca.pem")
    }
    pub fn issuing_ca_pem(&self) -> PathBuf {
        self.file("issuing-ca.pem")
    }
    pub fn tls_cert(&self) -> PathBuf {
        self.file("tls.pem")
    }
    pub fn tls_key(&self) -> PathBuf {
        self.file("tls.key")
    }
    /// The account's mutual-TLS certificate chain and key, as GlobalSign hands them to a customer.
    pub fn client_cert(&self) -> PathBuf {
        self.file("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.file("client.key")
    }
    pub fn api_secret(&self) -> PathBuf {
        self.file("api-secret")
    }
    pub fn account(&self) -> PathBuf {
        self.file("account.json")
    }
    pub fn demo_json(&self) -> PathBuf {
        self.file("demo.json")
    }
    pub fn module_config(&self) -> PathBuf {
        self.file("cloudtoken.toml")
    }
    pub fn audit(&self) -> PathBuf {
        self.file("audit.jsonl")
    }
}

/// The one account of the emulator, as `init` made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub api_key: String,
    /// SHA-256 of the API secret, hex (the secret is 160 random bits: no slow hash is needed).
    pub api_secret_sha256: String,
    /// The serial number (hex) of the account's TLS client certificate: a login over another client
    /// certificate is refused (the API documentation's `X-SSL-Client-Serial` header).
    pub client_serial: String,
    /// Signatures and time-stamps the account may make, unless `serve` says otherwise.
    pub signature_quota: u64,
    pub timestamp_quota: u64,
}

impl Account {
    pub fn load(state: &StateDir) -> Result<Account, String> {
        let path = state.account();
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// What tests and demos need to know (`demo.json`): the account's API key, the token label and the
/// identity's subject the written module configuration uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Demo {
    pub api_key: String,
    pub token_label: String,
    pub common_name: String,
    pub organization: String,
}

/// Creates `path` (which must not exist) with mode `mode` and writes `data`.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    let named = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(named)?;
    f.write_all(data).map_err(named)?;
    f.sync_all().map_err(named)
}

/// The first line of a secret file of the state folder.
pub fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    Ok(zeroize::Zeroizing::new(
        text.lines().next().unwrap_or("").trim().to_owned(),
    ))
}
