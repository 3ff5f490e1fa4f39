//! `init`: a new state folder — SoftHSM2 with the emulator's token (its PINs random, the user PIN kept
//! 0600 for `serve`), the CA keys generated inside it, the certificates, the account with a random API
//! key and secret bound to a TLS client certificate, and what a customer (and the tests) need: the
//! client certificate and key, the API secret, `demo.json` and a module configuration.

use crate::pki;
use crate::state::{write_new, Account, Demo, StateDir, HSM_TOKEN};
use sha2::{Digest, Sha256};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;

pub struct Options {
    pub signature_quota: u64,
    pub timestamp_quota: u64,
}

/// The token label and identity the written configuration uses.
const LABEL: &str = "ACME Invoices";
const ORGANIZATION: &str = "ACME GmbH";

pub fn run(dir: &Path, opts: &Options) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let state = StateDir::new(dir.to_path_buf());
    let conf = hsm_store::softhsm::create(dir).map_err(|e| e.to_string())?;
    hsm_store::softhsm::use_config(&conf).map_err(|e| e.to_string())?;
    let module = hsm_store::Module::load(Path::new(hsm_store::softhsm::DEFAULT_MODULE))
        .map_err(|e| e.to_string())?;
    let so_pin = crate::random::hex(16);
    let user_pin = crate::random::hex(16);
    module
        .init_token(HSM_TOKEN, &so_pin, &user_pin)
        .map_err(|e| e.to_string())?;
    write_new(
        &state.hsm_pin(),
        format!("{}\n", user_pin.as_str()).as_bytes(),
        0o600,
    )?;
    let store = Arc::new(
        hsm_store::Store::open(module, HSM_TOKEN, &user_pin, 1).map_err(|e| e.to_string())?,
    );
    let now = time::OffsetDateTime::now_utc();
    let made = pki::create(&store, now).map_err(|e| e.to_string())?;
    write_new(&state.ca_pem(), made.root_pem.as_bytes(), 0o644)?;
    write_new(&state.issuing_ca_pem(), made.issuing_pem.as_bytes(), 0o644)?;
    write_new(&state.tls_cert(), made.tls_chain_pem.as_bytes(), 0o644)?;
    write_new(&state.tls_key(), made.tls_key_pem.as_bytes(), 0o600)?;
    write_new(
        &state.client_cert(),
        made.client_chain_pem.as_bytes(),
        0o644,
    )?;
    write_new(&state.client_key(), made.client_key_pem.as_bytes(), 0o600)?;

    // The documentation's formats: 16 hex digits of API key, 40 of secret.
    let api_key = crate::random::hex(8).to_string();
    let api_secret = crate::random::hex(20);
    write_new(
        &state.api_secret(),
        format!("{}\n", api_secret.as_str()).as_bytes(),
        0o600,
    )?;
    let account = Account {
        api_key: api_key.clone(),
        api_secret_sha256: base16ct::lower::encode_string(&Sha256::digest(api_secret.as_bytes())),
        client_serial: made.client_serial,
        signature_quota: opts.signature_quota,
        timestamp_quota: opts.timestamp_quota,
    };
    let json = serde_json::to_vec_pretty(&account).map_err(|e| e.to_string())?;
    write_new(&state.account(), &json, 0o600)?;
    let demo = Demo {
        api_key: api_key.clone(),
        token_label: LABEL.into(),
        common_name: LABEL.into(),
        organization: ORGANIZATION.into(),
    };
    let json = serde_json::to_vec_pretty(&demo).map_err(|e| e.to_string())?;
    write_new(&state.demo_json(), &json, 0o644)?;
    write_new(
        &state.module_config(),
        module_config(&api_key).as_bytes(),
        0o600,
    )?;
    write_new(&state.audit(), b"", 0o600)?;
    Ok(())
}

/// The module configuration of the account's identity, relative to the state folder.
fn module_config(api_key: &str) -> String {
    format!(
        "# cloudtoken over the GlobalSign DSS emulator in this folder (written by init).\n\
         [[token]]\n\
         label = {LABEL:?}\n\
         protocol = \"globalsign-dss\"\n\
         url_file = \"server.url\"\n\
         ca_file = \"ca.pem\"\n\
         client_cert = \"client.pem\"\n\
         client_key = \"client.key\"\n\
         api_key = {api_key:?}\n\
         api_secret_file = \"api-secret\"\n\
         mode = \"login-free\"\n\
         subject_dn = {{ common_name = {LABEL:?}, organization = {ORGANIZATION:?}, country = \"DE\" }}\n"
    )
}
