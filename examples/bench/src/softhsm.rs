//! The SoftHSM2 token of the direct and p11-kit paths: its own configuration and token folder under
//! the benchmark's folder (never /etc/softhsm), one token with a random user PIN, and a P-256 and an
//! RSA-2048 key pair generated inside it (through hsm-store, as the reference service makes its keys).

use crate::Result;
use hsm_store::{softhsm, Curve, KeySpec, Module, Store};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The token label.
pub const TOKEN: &str = "cloudtoken-bench";
/// The key pairs' labels.
pub const KEY_P256: &str = "bench-p256";
pub const KEY_RSA2048: &str = "bench-rsa2048";
/// The user PIN's file inside the folder.
pub const PIN_FILE: &str = "user.pin";

fn random_pin() -> Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| format!("random PIN: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates `dir` (which must not exist) with `softhsm2.conf`, the token folder, the token, its two
/// keys and `user.pin` (0600). Must run before any PKCS#11 module is loaded in this process.
pub fn init(dir: &Path) -> Result<()> {
    let fail = |e: hsm_store::Error| format!("SoftHSM setup in {}: {e}", dir.display());
    std::fs::create_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let conf = softhsm::create(dir).map_err(fail)?;
    softhsm::use_config(&conf).map_err(fail)?;
    let module = Module::load(Path::new(softhsm::DEFAULT_MODULE)).map_err(fail)?;
    let (so_pin, user_pin) = (random_pin()?, random_pin()?);
    module.init_token(TOKEN, &so_pin, &user_pin).map_err(fail)?;
    let store = Store::open(module, TOKEN, &user_pin, 1).map_err(fail)?;
    store
        .generate(KEY_P256, KeySpec::Ec(Curve::P256))
        .map_err(fail)?;
    store
        .generate(KEY_RSA2048, KeySpec::Rsa { bits: 2048 })
        .map_err(fail)?;
    let path = dir.join(PIN_FILE);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{user_pin}").map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{}", conf.display());
    Ok(())
}
