//! The HSM of a state folder: which PKCS#11 module and token hold the signing keys (`STATE/hsm.toml`),
//! the token's user PIN (`STATE/hsm.pin`, 0600), and, for the default SoftHSM, its configuration and
//! token folder inside the state folder. `init` sets it up; `serve` opens it. Calls `hsm_store`.

use crate::files::{self, StateDir};
use hsm_store::{softhsm, Module, Store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The label of the token `init` creates in SoftHSM.
pub const SOFTHSM_TOKEN: &str = "csc-server";
/// Sessions signing at once, unless `serve --hsm-sessions` says otherwise.
pub const DEFAULT_SESSIONS: usize = 4;

/// Where `init` puts the keys.
#[derive(Debug, Clone)]
pub enum Choice {
    /// A new SoftHSM token whose files live in the state folder (the default): `module` must read
    /// `SOFTHSM2_CONF` (SoftHSM2 does).
    SoftHsmInState { module: PathBuf },
    /// An initialized token of any PKCS#11 module, and its user PIN.
    Token {
        module: PathBuf,
        token: String,
        pin: Zeroizing<String>,
    },
}

/// `STATE/hsm.toml`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// SoftHSM's configuration in the state folder (relative to it), exported as SOFTHSM2_CONF
    /// before the module is loaded; absent for other modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub softhsm2_conf: Option<PathBuf>,
}

fn hsm_err(e: hsm_store::Error) -> String {
    format!("HSM: {e}")
}

/// Sets up the HSM of a new state folder and returns its open store. Runs before any other thread
/// of the process (SoftHSM's configuration is an environment variable).
pub fn create(state: &StateDir, choice: Choice) -> Result<Arc<Store>, String> {
    let (config, pin) = match choice {
        Choice::SoftHsmInState { module } => {
            let conf = softhsm::create(state.path()).map_err(hsm_err)?;
            softhsm::use_config(&conf).map_err(hsm_err)?;
            let pin = crate::random::password();
            // The SO PIN is needed only to initialize the token; nobody keeps it.
            let so_pin = crate::random::password();
            Module::load(&module)
                .and_then(|m| m.init_token(SOFTHSM_TOKEN, &so_pin, &pin))
                .map_err(hsm_err)?;
            let config = Config {
                module,
                token: SOFTHSM_TOKEN.to_owned(),
                softhsm2_conf: Some(PathBuf::from(softhsm::CONF_FILE)),
            };
            (config, pin)
        }
        Choice::Token { module, token, pin } => (
            Config {
                module,
                token,
                softhsm2_conf: None,
            },
            pin,
        ),
    };
    let text = toml::to_string(&config).map_err(|e| format!("hsm.toml: {e}"))?;
    let text = format!(
        "# The PKCS#11 token that holds this service's signing keys (written by `csc-server init`).\n\
         # The token's user PIN is in hsm.pin.\n{text}"
    );
    let path = state.hsm_config();
    files::write_new(&path, text.as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let path = state.hsm_pin();
    files::write_new(&path, pin.as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    open_with(&config, &pin, DEFAULT_SESSIONS)
}

/// Reads `STATE/hsm.toml`; for SoftHSM in the state folder, points the process at its
/// configuration. Runs before any other thread of the process.
pub fn configure(state: &StateDir) -> Result<Config, String> {
    let path = state.hsm_config();
    let text = files::read_private(&path).map_err(|e| {
        format!(
            "{}: {e} (a state folder from before the HSM must be created anew with `csc-server init`)",
            path.display()
        )
    })?;
    let text = std::str::from_utf8(&text).map_err(|_| format!("{}: not UTF-8", path.display()))?;
    let config: Config = toml::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(conf) = &config.softhsm2_conf {
        softhsm::use_config(&state.path().join(conf)).map_err(hsm_err)?;
    }
    Ok(config)
}

/// Logs in to the configured token with the PIN in `STATE/hsm.pin`.
pub fn open(state: &StateDir, config: &Config, sessions: usize) -> Result<Arc<Store>, String> {
    open_with(config, &read_pin_file(&state.hsm_pin())?, sessions)
}

fn open_with(config: &Config, pin: &str, sessions: usize) -> Result<Arc<Store>, String> {
    let module = Module::load(&config.module).map_err(hsm_err)?;
    Store::open(module, &config.token, pin, sessions)
        .map(Arc::new)
        .map_err(|e| format!("HSM token {:?}: {e}", config.token))
}

/// The PIN of an existing token, from a file only its owner can read.
pub fn read_pin_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let bytes = files::read_private(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pin = std::str::from_utf8(&bytes)
        .map_err(|_| format!("{}: not UTF-8", path.display()))?
        .trim_end_matches(['\n', '\r']);
    if pin.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Zeroizing::new(pin.to_owned()))
}
