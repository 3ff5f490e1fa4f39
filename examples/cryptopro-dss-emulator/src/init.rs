//! `cryptopro-dss-emulator init`: a new state folder — master key, database, the demo CA and TLS
//! certificate (csc-server's PKI), the users with their passwords and page authenticators, their
//! certificates and keys (GOST keys from OpenSSL's GOST engine, sealed; RSA keys in the SoftHSM token of
//! the state folder), the OAuth client, and the files clients read (ca.pem, demo.json, cloudtoken.toml,
//! <user>.password).

use crate::model::{
    CertSpec, KeyKind, CERTS, CLIENT_ID, HSM_TOKEN, RESOURCE, SIGNSERVER, STS, USERS,
};
use crate::{certs, gost, store};
use csc_server::db::set_meta;
use csc_server::files::{write_new, StateDir};
use csc_server::init::{prepare_dir, totp_secret};
use csc_server::model::{KeyKind as CscKeyKind, Usage};
use csc_server::pki::Ca;
use csc_server::vault::{purpose, Vault};
use csc_server::{passwords, random};
use hsm_store::{softhsm, Curve, KeySpec, Module, Store};
use rusqlite::params;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

pub struct Options {
    /// Seconds per code of the page authenticators.
    pub totp_period: u64,
}

/// What a GOST key is sealed for: its certificate.
pub fn gost_key_purpose(cert_id: i64) -> String {
    format!("gost-key:{cert_id}")
}

/// The HSM token's user PIN, sealed in the database.
pub const HSM_PIN: &str = "hsm-pin";

/// The HSM label of the demo CA's P-256 key.
const CA_KEY: &str = "ca";

pub fn run(state: &StateDir, opts: &Options) -> Result<(), String> {
    prepare_dir(state.path()).map_err(|e| e.to_string())?;
    let hsm = Hsm::create(state.path())?;
    fill(state, opts, &hsm)
}

/// The state folder's content, with the RSA keys in `hsm`.
pub(crate) fn fill(state: &StateDir, opts: &Options, hsm: &Hsm) -> Result<(), String> {
    let vault = Vault::create(&state.master_key()).map_err(|e| e.to_string())?;
    let db = store::create(&state.database())?;
    let now = csc_server::clock::unix_now();
    let now_dt = time::OffsetDateTime::from_unix_timestamp(now).map_err(|e| e.to_string())?;
    let hsm_err = |e: hsm_store::Error| format!("the HSM store: {e}");
    let ca_key = hsm
        .store
        .generate(CA_KEY, KeySpec::Ec(Curve::P256))
        .map_err(hsm_err)?;
    let ca_signer = certs::CaKey::new(hsm.store.clone(), ca_key.clone())?;
    let ca = Ca::create(hsm.store.clone(), ca_key, now_dt).map_err(|e| e.to_string())?;
    let tls = ca.issue_tls(now_dt).map_err(|e| e.to_string())?;

    let mut users = Vec::new();
    let conn = db.lock();
    let sql = |e: rusqlite::Error| format!("database: {e}");
    set_meta(&conn, "ca_cert", &ca.cert_der).map_err(sql)?;
    set_meta(&conn, "tls_cert", &tls.cert_der).map_err(sql)?;
    set_meta(
        &conn,
        "tls_key",
        &vault.seal(purpose::TLS_KEY, &tls.key_pkcs8),
    )
    .map_err(sql)?;
    set_meta(&conn, "hsm_token", hsm.token.as_bytes()).map_err(sql)?;
    set_meta(&conn, HSM_PIN, &vault.seal(HSM_PIN, hsm.pin.as_bytes())).map_err(sql)?;
    conn.execute("INSERT INTO clients (id) VALUES (?1)", [CLIENT_ID])
        .map_err(sql)?;
    for (position, user) in USERS.iter().enumerate() {
        let password = random::password();
        let (sealed_totp, totp_base32) = totp_secret(&vault, &purpose::account_totp(user.name));
        conn.execute(
            "INSERT INTO users (name, position, display_name, password_hash, sealed_account_totp,
                                account_totp_period)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                user.name,
                position as i64,
                user.display_name,
                passwords::hash(password.as_bytes()),
                sealed_totp,
                opts.totp_period as i64
            ],
        )
        .map_err(sql)?;
        let mut certificates = Vec::new();
        for (n, cert) in CERTS.iter().filter(|c| c.user == user.name).enumerate() {
            let MadeKey {
                der,
                sealed_key,
                hsm_label,
            } = make_key(cert, (&ca, &ca_signer), &vault, hsm)?;
            conn.execute(
                "INSERT INTO certificates (id, user, friendly_name, kind, is_default, der, sealed_key,
                                           hsm_label)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    cert.id,
                    cert.user,
                    cert.friendly_name,
                    cert.kind.name(),
                    n == 0,
                    der,
                    sealed_key,
                    hsm_label
                ],
            )
            .map_err(sql)?;
            certificates.push(json!({
                "id": cert.id, "friendly_name": cert.friendly_name, "key": cert.kind.name(),
            }));
        }
        write_new(&state.password(user.name), password.as_bytes(), 0o600)
            .map_err(|e| format!("{}: {e}", state.password(user.name).display()))?;
        users.push(json!({
            "name": user.name,
            "display_name": user.display_name,
            "password": password.as_str(),
            "account_totp_secret": totp_base32.as_str(),
            "account_totp_period": opts.totp_period,
            "certificates": certificates,
        }));
    }
    drop(conn);
    write_files(state, &ca.cert_pem, users)
}

/// The key of one certificate and the certificate.
struct MadeKey {
    der: Vec<u8>,
    /// A GOST key, sealed.
    sealed_key: Option<Vec<u8>>,
    /// The HSM label of an RSA key.
    hsm_label: Option<String>,
}

fn make_key(
    cert: &CertSpec,
    (ca, ca_signer): (&Ca, &certs::CaKey),
    vault: &Vault,
    hsm: &Hsm,
) -> Result<MadeKey, String> {
    let now = time::OffsetDateTime::now_utc();
    let common_name = cert.friendly_name;
    match cert.kind {
        KeyKind::Gost256 | KeyKind::Gost512 => {
            let size = if cert.kind == KeyKind::Gost256 {
                gost::Size::Bits256
            } else {
                gost::Size::Bits512
            };
            let key = gost::generate(size)?;
            let spki = gost::public_key(&key)?;
            let der = certs::issue(&ca.cert_der, ca_signer, common_name, &spki)?;
            if !certs::carries(&der, &spki) {
                return Err(format!(
                    "the certificate of {common_name} does not carry its key"
                ));
            }
            let sealed = vault.seal(&gost_key_purpose(i64::from(cert.id)), &key);
            Ok(MadeKey {
                der,
                sealed_key: Some(sealed),
                hsm_label: None,
            })
        }
        KeyKind::Rsa2048 => {
            let label = format!("{}-rsa-{}", cert.user, cert.id);
            let key = hsm
                .store
                .generate(&label, KeySpec::Rsa { bits: 2048 })
                .map_err(|e| format!("the HSM store: {e}"))?;
            let der = ca
                .issue_credential(
                    common_name,
                    CscKeyKind::Rsa2048,
                    Usage::Signing,
                    key.spki_der(),
                    now,
                )
                .map_err(|e| e.to_string())?;
            Ok(MadeKey {
                der,
                sealed_key: None,
                hsm_label: Some(label),
            })
        }
    }
}

/// The SoftHSM token of the state folder.
pub struct Hsm {
    pub store: Arc<Store>,
    pub token: String,
    pub pin: Zeroizing<String>,
}

impl Hsm {
    /// A new SoftHSM configuration and token in `dir` (`init`).
    fn create(dir: &Path) -> Result<Hsm, String> {
        let conf = softhsm::create(dir).map_err(|e| e.to_string())?;
        softhsm::use_config(&conf).map_err(|e| e.to_string())?;
        let module = Module::load(Path::new(softhsm::DEFAULT_MODULE)).map_err(|e| e.to_string())?;
        let pin = random::token();
        module
            .init_token(HSM_TOKEN, &random::token(), &pin)
            .map_err(|e| e.to_string())?;
        let store = Arc::new(Store::open(module, HSM_TOKEN, &pin, 1).map_err(|e| e.to_string())?);
        Ok(Hsm {
            store,
            token: HSM_TOKEN.to_owned(),
            pin,
        })
    }

    /// A throw-away token of the test process's SoftHSM (unit tests: one process, many state folders).
    #[cfg(test)]
    pub(crate) fn scratch() -> Hsm {
        let t = hsm_store::testing::scratch_token().unwrap();
        let store = Arc::new(Store::open(t.module, &t.label, &t.pin, 1).unwrap());
        Hsm {
            store,
            token: t.label,
            pin: t.pin,
        }
    }
}

fn write_files(
    state: &StateDir,
    ca_pem: &str,
    users: Vec<serde_json::Value>,
) -> Result<(), String> {
    let io = |p: &Path| {
        let shown = p.display().to_string();
        move |e: std::io::Error| format!("{shown}: {e}")
    };
    write_new(&state.ca_pem(), ca_pem.as_bytes(), 0o644).map_err(io(&state.ca_pem()))?;
    let demo = json!({
        "client_id": CLIENT_ID,
        "resource": RESOURCE,
        "sts": STS,
        "signserver": SIGNSERVER,
        "users": users,
    });
    let text = serde_json::to_vec_pretty(&demo).map_err(|e| e.to_string())?;
    write_new(&state.demo_json(), &text, 0o600).map_err(io(&state.demo_json()))?;
    let mut config = String::from(
        "# cloudtoken module configuration for the CryptoPro DSS emulator of this folder (written by\n\
         # `cryptopro-dss-emulator init`; keys: examples/cloudtoken.example.toml).\n[log]\nlevel = \"warn\"\n",
    );
    for user in USERS {
        let first = user.display_name.split(' ').next().unwrap_or(user.name);
        for (label, confirmation) in [
            (format!("{first} DSS"), "operation"),
            (format!("{first} DSS session"), "session"),
        ] {
            config.push_str(&format!(
                "\n[[token]]\nlabel = \"{label}\"\nprotocol = \"cryptopro-dss\"\nurl_file = \"server.url\"\n\
                 ca_file = \"ca.pem\"\nservice_auth = \"oauth2-password\"\naccount = \"{name}\"\npassword_file = \"{name}.password\"\n\
                 client_id = \"{CLIENT_ID}\"\nmode = \"login-free\"\ndss_confirmation = \"{confirmation}\"\n\
                 batch_size = 10\n",
                name = user.name
            ));
        }
    }
    write_new(&state.module_config(), config.as_bytes(), 0o600).map_err(io(&state.module_config()))
}
