//! The module configuration (`cloudtoken.toml`, documented key by key in examples/cloudtoken.example.toml):
//! what it may contain, and loading it. Where it is found is `locate`'s, its checks `validate`'s, the
//! file-permission rules `files`' (used by everyone who reads a file the user trusts), and what each
//! token mode means `mode`'s.
//!
//! A configuration that exists but is not acceptable (unreadable, bad syntax, unknown key, unsafe
//! permissions, a missing secret file) makes C_Initialize fail with CKR_GENERAL_ERROR after one error log
//! line naming the file and the reason: the configuration decides which server receives the user's PIN, so
//! it is never half-applied. p11-kit skips a module whose C_Initialize fails (unless marked critical), and
//! pkcs11-tool/NSS report the failure, so the user learns of it. No configuration at all is not an error:
//! the module then offers no slots and says so at warn level.

pub mod files;
mod locate;
mod mode;
#[cfg(test)]
mod tests;
mod validate;

pub use locate::{locate, user_config_dir, user_file, CONFIG_ENV, RESERVED_PREFIX};

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(path: &Path, msg: impl fmt::Display) -> ConfigError {
    ConfigError(format!("configuration {}: {msg}", path.display()))
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it came from; `None` when no configuration was found.
    pub source: Option<PathBuf>,
    pub log: LogConfig,
    pub tokens: Vec<TokenConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: Option<String>,
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    V1,
    V2,
    Auto,
}

/// How applications log in to the token (CK_TOKEN_INFO flags); see the README, "Second factor".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenMode {
    /// CKF_LOGIN_REQUIRED: the application gives the PIN (possibly followed by the OTP) to C_Login.
    #[default]
    Pin,
    /// CKF_LOGIN_REQUIRED | CKF_PROTECTED_AUTHENTICATION_PATH: C_Login(CKU_USER, NULL_PTR, 0) has the
    /// module collect the PIN itself (`pin_file`, else the prompt).
    ProtectedPath,
    /// No CKF_LOGIN_REQUIRED: keys are usable without C_Login; the PIN is collected at signing time.
    LoginFree,
}

/// Where a one-time password may come from; see auth.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OtpChannel {
    /// Appended to the PIN given to C_Login(CKU_USER).
    Passcode,
    /// C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit.
    Context,
    /// Computed from the authenticator secret in `totp_secret_file` (unattended signing).
    TotpFile,
    /// Asked from the user through `prompt_command`.
    Prompt,
}

/// The protocol the token's service speaks; each has its implementation of the service seam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The Cloud Signature Consortium API (service/csc.rs).
    #[default]
    Csc,
    /// The GlobalSign Digital Signing Service API (service/globalsign.rs).
    GlobalsignDss,
    /// CryptoPro DSS: its identity and signature services' REST API (service/cryptopro.rs).
    CryptoproDss,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Csc => "csc",
            Protocol::GlobalsignDss => "globalsign-dss",
            Protocol::CryptoproDss => "cryptopro-dss",
        }
    }

    /// The token's model in CK_TOKEN_INFO (at most 16 characters).
    pub fn model(self) -> &'static str {
        match self {
            Protocol::Csc => "CSC remote token",
            Protocol::GlobalsignDss => "GlobalSign DSS",
            Protocol::CryptoproDss => "CryptoPro DSS",
        }
    }
}

/// What the user confirms at a CryptoPro DSS service (README, "CryptoPro DSS").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DssConfirmation {
    /// Every signature is an operation (a DSS transaction) the user confirms out of band.
    #[default]
    Operation,
    /// The user confirms a sign-in to the signature service once, and the module signs a package of up
    /// to `batch_size` documents within it.
    Session,
}

/// How the token signs in to the service account (`service_auth`); README, "Providers".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceAuthKind {
    /// CSC `auth/login` with `refresh_token_file` (from `cloudtoken enroll`) or `password_file`.
    #[default]
    Login,
    /// No sign-in (services with `authType` external or implicit, test services, mTLS alone).
    None,
    /// A static access token from `access_token_file`.
    Bearer,
    /// `api_key_file` in the header `api_key_header`.
    ApiKey,
    /// OAuth 2.0 client credentials (RFC 6749 §4.4): `client_id`, `client_secret_file`.
    Oauth2Client,
    /// OAuth 2.0 resource-owner password grant (RFC 6749 §4.3): `client_id`, `account`, `password_file`.
    Oauth2Password,
    /// OAuth 2.0 authorization code with PKCE (RFC 7636): `cloudtoken enroll` stores the refresh token in
    /// `refresh_token_file`; the module refreshes access tokens itself.
    Oauth2Code,
}

impl ServiceAuthKind {
    pub fn name(self) -> &'static str {
        match self {
            ServiceAuthKind::Login => "login",
            ServiceAuthKind::None => "none",
            ServiceAuthKind::Bearer => "bearer",
            ServiceAuthKind::ApiKey => "api-key",
            ServiceAuthKind::Oauth2Client => "oauth2-client",
            ServiceAuthKind::Oauth2Password => "oauth2-password",
            ServiceAuthKind::Oauth2Code => "oauth2-code",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub label: String,
    pub slot_id: Option<u64>,
    #[serde(default)]
    pub protocol: Protocol,
    pub url: Option<String>,
    pub url_file: Option<PathBuf>,
    /// The full base of the CSC methods when the service does not use `{url}/csc/v1|v2`.
    pub api_base: Option<String>,
    #[serde(default = "default_api")]
    pub api: Api,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    #[serde(default)]
    pub allow_loopback_http: bool,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// `credentials/authorize` may wait for the user to approve a push; `None`: `request_timeout_ms`.
    pub authorize_timeout_ms: Option<u64>,
    #[serde(default)]
    pub service_auth: ServiceAuthKind,
    /// The account at the service (empty when the sign-in names none; globalsign-dss: unused).
    #[serde(default)]
    pub account: String,
    pub refresh_token_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub access_token_file: Option<PathBuf>,
    pub api_key_file: Option<PathBuf>,
    #[serde(default = "default_api_key_header")]
    pub api_key_header: String,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// `None`: the protocol's (csc: `{info.oauth2}/oauth2/token`; cryptopro-dss:
    /// `{url}/{dss_sts}/oauth/token`).
    pub oauth2_token_url: Option<String>,
    /// `None`: `{info.oauth2}/oauth2/authorize`.
    pub oauth2_authorize_url: Option<String>,
    /// `None`: the protocol's ([`TokenConfig::oauth2_scope`]).
    pub oauth2_scope: Option<String>,
    #[serde(default)]
    pub mode: TokenMode,
    /// `None`: the default order, [`DEFAULT_CHANNELS`], without the channels that are not set up.
    pub otp_channels: Option<Vec<OtpChannel>>,
    /// Program and arguments run (without a shell) to ask the user for the PIN or an OTP.
    pub prompt_command: Option<Vec<String>>,
    #[serde(default = "default_prompt_timeout")]
    pub prompt_timeout_ms: u64,
    /// Answers the prompt may give per authorization when the service refuses one.
    #[serde(default = "default_prompt_attempts")]
    pub prompt_attempts: u32,
    /// Base32 authenticator (TOTP) secret, mode 0600, for unattended signing.
    pub totp_secret_file: Option<PathBuf>,
    /// The credential the TOTP secret belongs to; `None`: every credential with an offline OTP.
    pub totp_credential: Option<String>,
    #[serde(default = "default_totp_period")]
    pub totp_period: u64,
    /// The signing PIN, mode 0600, for unattended signing and for protected-path logins.
    pub pin_file: Option<PathBuf>,
    /// How long to wait for an out-of-band approval (CSC v2 asynchronous authorize).
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_ms: u64,
    #[serde(default = "default_otp_length")]
    pub otp_length: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Give every private key CKA_ALWAYS_AUTHENTICATE (a context login per signing operation).
    #[serde(default)]
    pub always_authenticate: bool,
    /// The secret files, as read when the configuration was checked (files.rs).
    #[serde(skip)]
    pub secrets: files::Preloaded,
    /// The `cloudtoken agent` socket that keeps batch authorizations across processes (see agent.rs);
    /// CLOUDTOKEN_AGENT_SOCK overrides it.
    pub agent_socket: Option<PathBuf>,
    /// globalsign-dss: the account's API key (its login name) and the file holding its API secret.
    pub api_key: Option<String>,
    pub api_secret_file: Option<PathBuf>,
    /// globalsign-dss: the subject of the token's identity (`subject_dn` of `POST /identity`); absent
    /// for an account with a static identity.
    pub subject_dn: Option<remote_client::globalsign::SubjectDn>,
    /// globalsign-dss: how long before its certificate expires an identity is replaced.
    #[serde(default = "default_identity_renew_before")]
    pub identity_renew_before_s: u64,
    /// globalsign-dss: how long a login (access token) lasts at the service.
    #[serde(default = "default_session_lifetime")]
    pub session_lifetime_s: u64,
    /// globalsign-dss: processes of the user reuse a live identity through a cache file.
    #[serde(default = "default_true")]
    pub identity_cache: bool,
    /// The `openssl` program that checks GOST R 34.10-2012 signatures with its GOST engine
    /// (mechanism/gost_check.rs); `None`: /usr/bin/openssl.
    pub openssl_path: Option<PathBuf>,
    /// CryptoPro DSS: the identity service's application name (`https://host/<dss_sts>/...`); "STS".
    pub dss_sts: Option<String>,
    /// CryptoPro DSS: the signature service's application name; "SignServer".
    pub dss_signserver: Option<String>,
    /// CryptoPro DSS: the signature service's identifier at the identity service; `None`:
    /// `urn:cryptopro:dss:signserver:<dss_signserver in lower case>`.
    pub dss_resource: Option<String>,
    /// CryptoPro DSS: what the user confirms; see [`DssConfirmation`].
    pub dss_confirmation: Option<DssConfirmation>,
}

fn default_api() -> Api {
    Api::Auto
}
fn default_connect_timeout() -> u64 {
    10_000
}
fn default_request_timeout() -> u64 {
    60_000
}
/// The order used when `otp_channels` is not given. Each channel that is not set up (no
/// `totp_secret_file`, no `prompt_command`) is skipped, so the default works for an application that
/// never makes a context login as soon as the token has a prompt or a TOTP secret.
pub const DEFAULT_CHANNELS: [OtpChannel; 4] = [
    OtpChannel::Passcode,
    OtpChannel::Context,
    OtpChannel::TotpFile,
    OtpChannel::Prompt,
];
fn default_api_key_header() -> String {
    remote_client::DEFAULT_API_KEY_HEADER.to_owned()
}
fn default_prompt_timeout() -> u64 {
    120_000
}
fn default_prompt_attempts() -> u32 {
    3
}
fn default_totp_period() -> u64 {
    30
}
fn default_approval_timeout() -> u64 {
    120_000
}
fn default_otp_length() -> usize {
    6
}
fn default_batch_size() -> u32 {
    30
}
/// Half of the ten minutes GlobalSign's identities last (README, "GlobalSign DSS").
fn default_identity_renew_before() -> u64 {
    300
}
/// "Signing sessions ... expire after 10 minutes" (pdf-tools' GlobalSignDss provider reference).
fn default_session_lifetime() -> u64 {
    600
}
fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    token: Vec<TokenConfig>,
}

impl TokenConfig {
    /// The OAuth 2.0 scope of the sign-in: `oauth2_scope`, or the protocol's ("service", CSC's scope
    /// for its API; "dss" for CryptoPro DSS).
    pub fn oauth2_scope(&self) -> String {
        self.oauth2_scope
            .clone()
            .unwrap_or_else(|| match self.protocol {
                // GlobalSign signs in with its API key, never with OAuth 2.0.
                Protocol::Csc | Protocol::GlobalsignDss => "service".to_owned(),
                Protocol::CryptoproDss => "dss".to_owned(),
            })
    }

    /// The OTP channels in the order they are tried, without those that are not set up.
    pub fn channels(&self) -> Vec<OtpChannel> {
        let listed = self.otp_channels.as_deref().unwrap_or(&DEFAULT_CHANNELS);
        listed
            .iter()
            .copied()
            .filter(|c| match c {
                OtpChannel::Passcode | OtpChannel::Context => true,
                OtpChannel::TotpFile => self.totp_secret_file.is_some(),
                OtpChannel::Prompt => self.prompt_command.is_some(),
            })
            .collect()
    }

    pub fn has_channel(&self, c: OtpChannel) -> bool {
        self.channels().contains(&c)
    }
}

/// Finds and loads the configuration. `Ok(Config::default())` (no tokens) when there is none.
pub fn load(reserved: Option<PathBuf>) -> Result<Config, ConfigError> {
    match locate(reserved) {
        None => Ok(Config::default()),
        Some((path, _explicit)) => load_file(&path),
    }
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = files::read_config(path).map_err(|e| ConfigError(format!("configuration {e}")))?;
    let parsed: FileFormat = toml::from_str(&text).map_err(|e| err(path, e.message()))?;
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut tokens = parsed.token;
    let mut log = parsed.log;
    log.file = log.file.map(|f| base.join(f));
    for t in &mut tokens {
        resolve_paths(t, &base);
    }
    validate::validate(path, &tokens)?;
    if let Some(level) = &log.level {
        if crate::log::parse_level(level).is_none() {
            return Err(err(path, format!("[log] level {level:?} is not a level")));
        }
    }
    Ok(Config {
        source: Some(path.to_path_buf()),
        log,
        tokens,
    })
}

/// Relative paths in the file are relative to the file's folder.
fn resolve_paths(t: &mut TokenConfig, base: &Path) {
    for p in [
        &mut t.url_file,
        &mut t.ca_file,
        &mut t.client_cert,
        &mut t.client_key,
        &mut t.refresh_token_file,
        &mut t.password_file,
        &mut t.access_token_file,
        &mut t.api_key_file,
        &mut t.client_secret_file,
        &mut t.totp_secret_file,
        &mut t.pin_file,
        &mut t.agent_socket,
        &mut t.api_secret_file,
        &mut t.openssl_path,
    ]
    .into_iter()
    .flatten()
    {
        *p = base.join(&*p);
    }
    // A program named with a folder is relative to the file too; a bare name would be looked up in the
    // application's PATH, which the configuration does not control, so validation refuses it.
    if let Some(program) = t.prompt_command.as_mut().and_then(|c| c.first_mut()) {
        if program.contains('/') {
            let joined: PathBuf = base.join(&*program).components().collect();
            *program = joined.display().to_string();
        }
    }
}
