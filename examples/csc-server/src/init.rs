//! `csc-server init`: a new state folder with its HSM token, the demo CA (key in the HSM), TLS
//! certificate, users, credentials (keys generated in the HSM), and the files clients need (CA
//! bundle, module configuration, demo.json, refresh tokens, passwords).

use crate::db::{self, Db};
use crate::files::{write_new, StateDir};
use crate::hsm;
use crate::keys;
use crate::model::{CredentialSpec, KeyKind, OtpKind, UserSpec, CREDENTIALS, PIN_LENGTH, USERS};
use crate::pki::Ca;
use crate::vault::{purpose, Vault};
use crate::{audit, passwords, random, tokens};
use rusqlite::params;
use serde::Serialize;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} is not empty; init needs a new or empty folder")]
    NotEmpty(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error("{0}")]
    Setup(String),
    #[error("writing {0}: {1}")]
    Encode(&'static str, String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub struct Options {
    pub totp_period: u64,
    pub hsm: hsm::Choice,
}

/// Secrets of one user, for the files a client reads.
struct UserSecrets {
    password: Zeroizing<String>,
    pin: Zeroizing<String>,
    refresh_token: Zeroizing<String>,
    /// Base32 TOTP secret of the account: the second factor of the approval page login.
    account_totp: Zeroizing<String>,
    /// The account's API key (`x-api-key`).
    api_key: Zeroizing<String>,
}

/// The OAuth 2.0 clients `init` registers.
struct ClientSpec {
    id: &'static str,
    name: &'static str,
    /// A confidential client (with a secret) or a public one (PKCE only).
    confidential: bool,
    account: Option<&'static str>,
    grant_types: &'static [&'static str],
    /// Native apps' loopback redirect (any port, RFC 8252 §7.3).
    redirect: bool,
}

const LOOPBACK_REDIRECT: &str = "http://127.0.0.1/callback";

const CLIENTS: &[ClientSpec] = &[
    // A person's desktop (cloudtoken enroll, the module's credential authorizations).
    ClientSpec {
        id: DESKTOP_CLIENT,
        name: "cloudtoken on your computer",
        confidential: false,
        account: None,
        grant_types: &["authorization_code", "refresh_token"],
        redirect: true,
    },
    // The same with client authentication at the token endpoint, as the EU wallet's QTSP reference has.
    ClientSpec {
        id: "cloudtoken-qtsp",
        name: "cloudtoken (registered client)",
        confidential: true,
        account: None,
        grant_types: &["authorization_code", "refresh_token"],
        redirect: true,
    },
    // Unattended signing of an account's own: client credentials.
    ClientSpec {
        id: "alice-automation",
        name: "Alice's signing automation",
        confidential: true,
        account: Some("alice"),
        grant_types: &["client_credentials"],
        redirect: false,
    },
    ClientSpec {
        id: "seal-automation",
        name: "Example Organisation e-seal service",
        confidential: true,
        account: Some("seal"),
        grant_types: &["client_credentials"],
        redirect: false,
    },
    // The resource-owner password grant, as SSL.com documents it.
    ClientSpec {
        id: "cloudtoken-password",
        name: "cloudtoken (password grant)",
        confidential: true,
        account: None,
        grant_types: &["password", "refresh_token"],
        redirect: false,
    },
];

/// A fresh TOTP secret: 160 bits, the RFC 4226 recommendation for HMAC-SHA1. Returns it sealed for
/// `purpose` and in base32 for the user's authenticator app.
pub fn totp_secret(vault: &Vault, purpose: &str) -> (Vec<u8>, Zeroizing<String>) {
    let secret = random::bytes::<20>();
    let base32 = Zeroizing::new(
        totp_rs::Secret::Raw(secret.to_vec())
            .to_encoded()
            .to_string(),
    );
    (vault.seal(purpose, secret.as_ref()), base32)
}

pub fn run(dir: &Path, opts: &Options) -> Result<(), InitError> {
    prepare_dir(dir)?;
    let dir = fs::canonicalize(dir).map_err(io_err(dir))?;
    let state = StateDir::new(dir);
    // The HSM first: SoftHSM's configuration is set for the process before any thread starts.
    let store = hsm::create(&state, opts.hsm.clone()).map_err(InitError::Setup)?;
    // Key labels name this state folder too, so several state folders can share one token.
    let tag: String = random::bytes::<4>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let label = |id: &str| format!("csc-server {tag} {id}");
    let now = crate::clock::unix_now();
    let now_dt =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);

    // The expensive parts in parallel: key generation in the HSM and the Argon2 hashes.
    let (keys, ca_key, hashed) = std::thread::scope(|s| {
        let key_jobs: Vec<_> = CREDENTIALS
            .iter()
            .map(|c| {
                let (store, label) = (&store, label(c.id));
                s.spawn(move || keys::generate(store, &label, c.key))
            })
            .collect();
        let ca_job = s.spawn(|| keys::generate(&store, &label("ca"), KeyKind::P256));
        let user_jobs: Vec<_> = USERS
            .iter()
            .map(|_| {
                s.spawn(|| {
                    let password = random::password();
                    let pin = random::digits(PIN_LENGTH);
                    let password_hash = passwords::hash(password.as_bytes());
                    let pin_hash = passwords::hash(pin.as_bytes());
                    (password, pin, password_hash, pin_hash)
                })
            })
            .collect();
        let keys: Vec<Result<hsm_store::Key, _>> = key_jobs
            .into_iter()
            .map(|j| j.join().expect("key generation thread"))
            .collect();
        let ca_key = ca_job.join().expect("key generation thread");
        let hashed: Vec<_> = user_jobs
            .into_iter()
            .map(|j| j.join().expect("hashing thread"))
            .collect();
        (keys, ca_key, hashed)
    });

    let vault = Vault::create(&state.master_key())?;
    let ca = Ca::create(store.clone(), ca_key?, now_dt)?;
    let tls = ca.issue_tls(now_dt)?;
    let db = Db::create(&state.database()).map_err(InitError::Setup)?;
    let mut conn = db.lock();
    let tx = conn.transaction()?;
    db::set_meta(&tx, "ca_cert", &ca.cert_der)?;
    db::set_meta(&tx, "ca_key_label", label("ca").as_bytes())?;
    db::set_meta(&tx, "tls_cert", &tls.cert_der)?;
    db::set_meta(
        &tx,
        "tls_key",
        &vault.seal(purpose::TLS_KEY, &tls.key_pkcs8),
    )?;

    let mut secrets = Vec::new();
    for (pos, (user, (password, pin, password_hash, pin_hash))) in
        USERS.iter().zip(hashed).enumerate()
    {
        let (sealed_account_totp, account_totp) =
            totp_secret(&vault, &purpose::account_totp(user.name));
        tx.execute(
            "INSERT INTO users (name, position, display_name, password_hash, pin_hash,
                                sealed_account_totp, account_totp_period)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                user.name,
                pos as i64,
                user.display_name,
                password_hash,
                pin_hash,
                sealed_account_totp,
                opts.totp_period as i64
            ],
        )?;
        let refresh_token = tokens::issue(&tx, user.name, tokens::Kind::Refresh, now, None, None)?;
        let api_key = random::token();
        tx.execute(
            "INSERT INTO api_keys (hash, user, created_at) VALUES (?1, ?2, ?3)",
            params![db::secret_id(&api_key), user.name, now],
        )?;
        secrets.push(UserSecrets {
            password,
            pin,
            refresh_token,
            account_totp,
            api_key,
        });
    }
    let mut client_secrets = Vec::new();
    for c in CLIENTS {
        let secret = c.confidential.then(random::token);
        crate::service::oauth::register_client(
            &tx,
            &crate::oauth2::Client {
                id: c.id.to_owned(),
                name: c.name.to_owned(),
                secret_hash: secret.as_deref().map(|s| db::secret_id(s)),
                account: c.account.map(str::to_owned),
                grant_types: c.grant_types.iter().map(|g| (*g).to_owned()).collect(),
                redirect_uri: c.redirect.then(|| LOOPBACK_REDIRECT.to_owned()),
            },
        )?;
        client_secrets.push(secret);
    }

    let mut totp_secrets: Vec<Option<Zeroizing<String>>> = Vec::new();
    for (pos, (spec, key)) in CREDENTIALS.iter().zip(keys).enumerate() {
        let key = key?;
        let user = USERS
            .iter()
            .find(|u| u.name == spec.user)
            .expect("credential of a known user");
        let cert = ca.issue_credential(
            user.display_name,
            spec.key,
            spec.usage,
            key.spki_der(),
            now_dt,
        )?;
        let (sealed_totp, period, base32) = match spec.otp {
            OtpKind::Totp => {
                let (sealed, base32) = totp_secret(&vault, &purpose::totp_secret(spec.id));
                (Some(sealed), Some(opts.totp_period as i64), Some(base32))
            }
            OtpKind::Sms | OtpKind::Approval | OtpKind::PinOnly | OtpKind::OAuth2 => {
                (None, None, None)
            }
        };
        tx.execute(
            "INSERT INTO credentials (id, position, user, label, key_kind, otp_kind, scal, multisign,
                                      key_label, certificate, sealed_totp, totp_period, sad_lifetime)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                spec.id,
                pos as i64,
                spec.user,
                spec.label,
                spec.key.name(),
                spec.otp.name(),
                spec.scal,
                spec.multisign,
                key.label(),
                cert,
                sealed_totp,
                period,
                spec.sad_lifetime
            ],
        )?;
        totp_secrets.push(base32);
    }
    audit::append(
        &tx,
        now,
        &audit::Event {
            event: "init",
            user: None,
            credential: None,
            hashes: &[],
            outcome: "ok",
            detail: Some("state created"),
        },
    )?;
    tx.commit()?;
    drop(conn);

    // Files for clients.
    let ca_path = state.ca_pem();
    write_new(&ca_path, ca.cert_pem.as_bytes(), 0o644).map_err(io_err(&ca_path))?;
    for (user, s) in USERS.iter().zip(&secrets) {
        let p = state.refresh_token(user.name);
        write_new(&p, s.refresh_token.as_bytes(), 0o600).map_err(io_err(&p))?;
        let p = state.password(user.name);
        write_new(&p, s.password.as_bytes(), 0o600).map_err(io_err(&p))?;
        let p = state.path().join(format!("{}.apikey", user.name));
        write_new(&p, s.api_key.as_bytes(), 0o600).map_err(io_err(&p))?;
    }
    for (c, secret) in CLIENTS.iter().zip(&client_secrets) {
        if let Some(secret) = secret {
            let p = state.path().join(format!("{}.secret", c.id));
            write_new(&p, secret.as_bytes(), 0o600).map_err(io_err(&p))?;
        }
    }
    let config = module_config(&state)?;
    let p = state.module_config();
    write_new(&p, config.as_bytes(), 0o600).map_err(io_err(&p))?;
    let demo = Zeroizing::new(demo_json(
        &secrets,
        &totp_secrets,
        &client_secrets,
        opts.totp_period,
    )?);
    let p = state.demo_json();
    write_new(&p, demo.as_bytes(), 0o600).map_err(io_err(&p))?;
    Ok(())
}

pub fn prepare_dir(dir: &Path) -> Result<(), InitError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(InitError::NotEmpty(dir.display().to_string()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir)),
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// The module configuration, in the format of examples/cloudtoken.example.toml.
#[derive(Serialize)]
struct ModuleConfig {
    log: LogSection,
    token: Vec<TokenSection>,
}

#[derive(Serialize)]
struct LogSection {
    level: &'static str,
}

#[derive(Serialize)]
struct TokenSection {
    label: String,
    url_file: String,
    api: &'static str,
    ca_file: String,
    connect_timeout_ms: u64,
    request_timeout_ms: u64,
    account: String,
    refresh_token_file: String,
    otp_channels: Vec<&'static str>,
    otp_length: usize,
    batch_size: u32,
    /// The OAuth 2.0 client the module authorizes `oauth2code` credentials with (tokens that have one).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'static str>,
}

/// The public client of a person's desktop: cloudtoken enroll and the module's browser authorizations.
const DESKTOP_CLIENT: &str = "cloudtoken-desktop";

fn module_config(state: &StateDir) -> Result<String, InitError> {
    let path = |p: std::path::PathBuf| p.display().to_string();
    let config = ModuleConfig {
        log: LogSection { level: "error" },
        token: USERS
            .iter()
            .map(|u: &UserSpec| TokenSection {
                label: u.display_name.to_owned(),
                url_file: path(state.server_url()),
                api: "v2",
                ca_file: path(state.ca_pem()),
                connect_timeout_ms: 10_000,
                request_timeout_ms: 60_000,
                account: u.name.to_owned(),
                refresh_token_file: path(state.refresh_token(u.name)),
                otp_channels: vec!["passcode", "context"],
                otp_length: crate::model::OTP_LENGTH,
                batch_size: u.batch_size,
                client_id: CREDENTIALS
                    .iter()
                    .any(|c| c.user == u.name && c.otp == OtpKind::OAuth2)
                    .then_some(DESKTOP_CLIENT),
            })
            .collect(),
    };
    let body = toml::to_string(&config)
        .map_err(|e| InitError::Encode("cloudtoken.toml", e.to_string()))?;
    Ok(format!(
        "# cloudtoken module configuration for the demo service in {}\n\
         # (written by `csc-server init`; start the service with `csc-server serve --state ...`).\n\n{body}",
        state.path().display()
    ))
}

#[derive(Serialize)]
struct Demo<'a> {
    tokens: Vec<DemoToken<'a>>,
    oauth2_clients: Vec<DemoClient<'a>>,
}

#[derive(Serialize)]
struct DemoClient<'a> {
    client_id: &'a str,
    /// `None`: a public client.
    client_secret: Option<&'a str>,
    /// The account a client_credentials client acts for; `None`: whoever signs in.
    account: Option<&'a str>,
    grant_types: &'a [&'a str],
    redirect_uri: Option<&'a str>,
}

#[derive(Serialize)]
struct DemoToken<'a> {
    label: &'a str,
    user: &'a str,
    password: &'a str,
    pin: &'a str,
    /// The account's TOTP secret (base32) for the approval page login (`GET /approve`).
    approval_totp_secret: &'a str,
    approval_totp_period: u64,
    /// The account's API key (`x-api-key`; also in `<user>.apikey`).
    api_key: &'a str,
    credentials: Vec<DemoCredential<'a>>,
}

#[derive(Serialize)]
struct DemoCredential<'a> {
    id: &'a str,
    label: &'a str,
    key: &'a str,
    otp: &'a str,
    totp_secret: Option<&'a str>,
    totp_period: u64,
    scal: u8,
    multisign: u32,
    /// "signing" (documents, seals) or "authentication" (TLS client login: clientAuth certificate).
    usage: &'a str,
    /// Seconds a SAD lives when the credential has a lifetime of its own (the seals).
    #[serde(skip_serializing_if = "Option::is_none")]
    sad_lifetime: Option<i64>,
}

fn demo_json(
    secrets: &[UserSecrets],
    totp: &[Option<Zeroizing<String>>],
    client_secrets: &[Option<Zeroizing<String>>],
    period: u64,
) -> Result<String, InitError> {
    let creds: Vec<(&CredentialSpec, &Option<Zeroizing<String>>)> =
        CREDENTIALS.iter().zip(totp).collect();
    let demo = Demo {
        tokens: USERS
            .iter()
            .zip(secrets)
            .map(|(u, s)| DemoToken {
                label: u.display_name,
                user: u.name,
                password: &s.password,
                pin: &s.pin,
                approval_totp_secret: &s.account_totp,
                approval_totp_period: period,
                api_key: &s.api_key,
                credentials: creds
                    .iter()
                    .filter(|(c, _)| c.user == u.name)
                    .map(|(c, secret)| DemoCredential {
                        id: c.id,
                        label: c.label,
                        key: c.key.name(),
                        otp: c.otp.name(),
                        totp_secret: secret.as_ref().map(|s| s.as_str()),
                        totp_period: period,
                        scal: c.scal,
                        multisign: c.multisign,
                        usage: c.usage.name(),
                        sad_lifetime: c.sad_lifetime,
                    })
                    .collect(),
            })
            .collect(),
        oauth2_clients: CLIENTS
            .iter()
            .zip(client_secrets)
            .map(|(c, secret)| DemoClient {
                client_id: c.id,
                client_secret: secret.as_ref().map(|s| s.as_str()),
                account: c.account,
                grant_types: c.grant_types,
                redirect_uri: c.redirect.then_some(LOOPBACK_REDIRECT),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&demo)
        .map_err(|e| InitError::Encode("demo.json", e.to_string()))?;
    s.push('\n');
    Ok(s)
}
