//! The module configuration (`cloudtoken.toml`, documented key by key in examples/cloudtoken.example.toml):
//! where it is found, what it may contain, and the file-permission rules that protect it.
//!
//! A configuration that exists but is not acceptable (unreadable, bad syntax, unknown key, unsafe
//! permissions, a missing secret file) makes C_Initialize fail with CKR_GENERAL_ERROR after one error log
//! line naming the file and the reason: the configuration decides which server receives the user's PIN, so
//! it is never half-applied. p11-kit skips a module whose C_Initialize fails (unless marked critical), and
//! pkcs11-tool/NSS report the failure, so the user learns of it. No configuration at all is not an error:
//! the module then offers no slots and says so at warn level.

use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const CONFIG_ENV: &str = "CLOUDTOKEN_CONFIG";
/// The C_Initialize pReserved string form: `cloudtoken_conf=PATH`.
pub const RESERVED_PREFIX: &str = "cloudtoken_conf=";

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub label: String,
    pub slot_id: Option<u64>,
    pub url: Option<String>,
    pub url_file: Option<PathBuf>,
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
    pub account: String,
    pub refresh_token_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
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
    /// The `cloudtoken agent` socket that keeps batch authorizations across processes (see agent.rs);
    /// CLOUDTOKEN_AGENT_SOCK overrides it.
    pub agent_socket: Option<PathBuf>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    token: Vec<TokenConfig>,
}

impl TokenConfig {
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

    /// How to reach the service, as remote-client takes it (the module and the `cloudtoken` tool).
    pub fn client_config(&self) -> Result<remote_client::ClientConfig, String> {
        let mut cc = remote_client::ClientConfig::new(self.base_url()?);
        cc.api_version = match self.api {
            Api::V1 => remote_client::ApiVersion::V1,
            Api::V2 => remote_client::ApiVersion::V2,
            Api::Auto => remote_client::ApiVersion::Auto,
        };
        cc.ca_file = self.ca_file.clone();
        cc.client_identity = match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => Some(remote_client::ClientIdentity {
                cert_file: c.clone(),
                key_file: k.clone(),
            }),
            _ => None,
        };
        cc.connect_timeout = std::time::Duration::from_millis(self.connect_timeout_ms);
        cc.request_timeout = std::time::Duration::from_millis(self.request_timeout_ms);
        cc.allow_loopback_http = self.allow_loopback_http;
        Ok(cc)
    }

    /// The service base URL: `url`, or the first line of `url_file` (read when the client is built, so
    /// the module loads before the service has written it).
    pub fn base_url(&self) -> Result<String, String> {
        if let Some(u) = &self.url {
            return Ok(u.clone());
        }
        let path = self.url_file.as_ref().ok_or("no url or url_file")?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("url_file {}: {e}", path.display()))?;
        let url = text.lines().next().unwrap_or("").trim().to_owned();
        if url.is_empty() {
            return Err(format!("url_file {} is empty", path.display()));
        }
        Ok(url)
    }
}

/// Where the configuration comes from, in the documented order. `reserved` is the path from
/// C_Initialize's pReserved. An explicit path (pReserved, CLOUDTOKEN_CONFIG) must exist; the default
/// locations are optional.
pub fn locate(reserved: Option<PathBuf>) -> Option<(PathBuf, bool)> {
    if let Some(p) = reserved {
        return Some((p, true));
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    let candidates = user_file().into_iter().chain(std::iter::once(PathBuf::from(
        "/etc/cloudtoken/cloudtoken.toml",
    )));
    for c in candidates {
        if c.exists() {
            return Some((c, false));
        }
    }
    None
}

/// The user's own configuration file, `$XDG_CONFIG_HOME/cloudtoken/cloudtoken.toml` (or under
/// `~/.config`), whether or not it exists.
pub fn user_file() -> Option<PathBuf> {
    user_config_dir().map(|d| d.join("cloudtoken").join("cloudtoken.toml"))
}

/// The user's configuration folder: `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn user_config_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
}

/// Finds and loads the configuration. `Ok(Config::default())` (no tokens) when there is none.
pub fn load(reserved: Option<PathBuf>) -> Result<Config, ConfigError> {
    match locate(reserved) {
        None => Ok(Config::default()),
        Some((path, _explicit)) => load_file(&path),
    }
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| err(path, e))?;
    if !meta.is_file() {
        return Err(err(path, "not a regular file"));
    }
    check_owner(path, &meta)?;
    if meta.mode() & 0o022 != 0 {
        return Err(err(
            path,
            "refused: writable by group or others (it decides where the PIN goes; chmod go-w)",
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e))?;
    let parsed: FileFormat = toml::from_str(&text).map_err(|e| err(path, e.message()))?;
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut tokens = parsed.token;
    let mut log = parsed.log;
    log.file = log.file.map(|f| base.join(f));
    for t in &mut tokens {
        resolve_paths(t, &base);
    }
    validate(path, &tokens)?;
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
        &mut t.totp_secret_file,
        &mut t.pin_file,
        &mut t.agent_socket,
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

fn validate(path: &Path, tokens: &[TokenConfig]) -> Result<(), ConfigError> {
    let mut slot_ids = HashSet::new();
    let mut labels = HashSet::new();
    for (i, t) in tokens.iter().enumerate() {
        let which = format!("token {} ({:?})", i + 1, t.label);
        let e = |m: &str| err(path, format!("{which}: {m}"));
        if t.label.is_empty() || t.label.len() > 32 {
            return Err(e("label must be 1 to 32 bytes of UTF-8"));
        }
        if !labels.insert(t.label.clone()) {
            return Err(e("label used twice"));
        }
        let slot = t.slot_id.unwrap_or(i as u64);
        if !slot_ids.insert(slot) {
            return Err(e(&format!("slot_id {slot} used twice")));
        }
        match (&t.url, &t.url_file) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(e("give exactly one of url and url_file")),
        }
        if t.account.is_empty() {
            return Err(e("account is empty"));
        }
        if t.client_cert.is_some() != t.client_key.is_some() {
            return Err(e("client_cert and client_key go together"));
        }
        let secret = match (&t.refresh_token_file, &t.password_file) {
            (Some(f), None) | (None, Some(f)) => f,
            _ => {
                return Err(e(
                    "give exactly one of refresh_token_file and password_file",
                ))
            }
        };
        check_secret_file(secret).map_err(|m| e(&m))?;
        validate_channels(t).map_err(|m| e(&m))?;
        if !(1..=16).contains(&t.otp_length) {
            return Err(e("otp_length must be 1 to 16"));
        }
        if t.batch_size == 0 {
            return Err(e("batch_size must be at least 1"));
        }
        if t.connect_timeout_ms == 0
            || t.request_timeout_ms == 0
            || t.prompt_timeout_ms == 0
            || t.approval_timeout_ms == 0
        {
            return Err(e("timeouts must be positive"));
        }
    }
    Ok(())
}

/// The second-factor settings of one token: channels, prompt, unattended secrets, and the mode's need
/// for a PIN source.
fn validate_channels(t: &TokenConfig) -> Result<(), String> {
    if let Some(listed) = &t.otp_channels {
        if listed.is_empty() {
            return Err("otp_channels is empty".into());
        }
        if listed.contains(&OtpChannel::Prompt) && t.prompt_command.is_none() {
            return Err("otp_channels lists \"prompt\" but prompt_command is not set".into());
        }
        if listed.contains(&OtpChannel::TotpFile) && t.totp_secret_file.is_none() {
            return Err("otp_channels lists \"totp-file\" but totp_secret_file is not set".into());
        }
    }
    if let Some(command) = &t.prompt_command {
        let program = command.first().ok_or("prompt_command is empty")?;
        check_program(Path::new(program))?;
    }
    if !(1..=10).contains(&t.prompt_attempts) {
        return Err("prompt_attempts must be 1 to 10".into());
    }
    if !(1..=3600).contains(&t.totp_period) {
        return Err("totp_period must be 1 to 3600 seconds".into());
    }
    if t.totp_credential.is_some() && t.totp_secret_file.is_none() {
        return Err("totp_credential needs totp_secret_file".into());
    }
    for f in [&t.totp_secret_file, &t.pin_file].into_iter().flatten() {
        check_secret_file(f)?;
    }
    if t.mode != TokenMode::Pin && t.prompt_command.is_none() && t.pin_file.is_none() {
        let mode = match t.mode {
            TokenMode::ProtectedPath => "protected-path",
            _ => "login-free",
        };
        return Err(format!(
            "mode \"{mode}\" collects the PIN itself: set prompt_command or pin_file"
        ));
    }
    Ok(())
}

/// The prompt program sees the user's PIN and codes: it must be an absolute path to a file of ours or
/// root's that group and others cannot change.
pub fn check_program(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!(
            "prompt_command {:?}: give the program's path, not a name looked up in PATH",
            path.display()
        ));
    }
    let meta =
        std::fs::metadata(path).map_err(|e| format!("prompt_command {}: {e}", path.display()))?;
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(format!(
            "prompt_command {}: not an executable file",
            path.display()
        ));
    }
    check_owner(path, &meta).map_err(|e| e.to_string())?;
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "prompt_command {}: refused: writable by group or others (it sees your PIN; chmod go-w)",
            path.display()
        ));
    }
    Ok(())
}

fn check_owner(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(err(
            path,
            format!("refused: owned by uid {}, not by you or root", meta.uid()),
        ));
    }
    Ok(())
}

/// A secret file (refresh token, password) must be a regular file of ours that group and others cannot
/// read or write.
pub fn check_secret_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    check_owner(path, &meta).map_err(|e| e.to_string())?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{}: refused: group or others have access (chmod 600)",
            path.display()
        ));
    }
    Ok(())
}

/// Reads a secret file after checking it again (it may have changed since C_Initialize). The first line,
/// without its line end, is the secret.
pub fn read_secret_file(path: &Path) -> Result<remote_client::Secret, String> {
    check_secret_file(path)?;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(remote_client::Secret::new(line))
}

/// Replaces a secret file's content (a rotated refresh token) atomically, keeping mode 0600.
pub fn write_secret_file(path: &Path, value: &remote_client::Secret) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(value.expose().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn minimal(secret: &str) -> String {
        format!(
            "[[token]]\nlabel = \"A\"\nurl = \"https://h\"\naccount = \"a\"\nrefresh_token_file = \"{secret}\"\n"
        )
    }

    #[test]
    fn loads_defaults_and_resolves_relative_paths() {
        let d = tempfile_dir();
        write(d.path(), "a.refresh", "tok\n", 0o600);
        let p = write(d.path(), "c.toml", &minimal("a.refresh"), 0o600);
        let c = load_file(&p).unwrap();
        assert_eq!(c.tokens.len(), 1);
        let t = &c.tokens[0];
        assert_eq!(
            t.refresh_token_file.as_deref(),
            Some(d.path().join("a.refresh").as_path())
        );
        assert_eq!(t.otp_length, 6);
        assert_eq!(t.batch_size, 30);
        assert_eq!(t.api, Api::Auto);
        assert!(t.has_channel(OtpChannel::Passcode) && t.has_channel(OtpChannel::Context));
        assert!(!t.always_authenticate);
        assert_eq!(
            read_secret_file(t.refresh_token_file.as_ref().unwrap())
                .unwrap()
                .expose(),
            "tok"
        );
    }

    #[test]
    fn refuses_group_writable_config_and_readable_secret() {
        let d = tempfile_dir();
        write(d.path(), "a.refresh", "tok\n", 0o600);
        let p = write(d.path(), "c.toml", &minimal("a.refresh"), 0o664);
        assert!(load_file(&p).unwrap_err().to_string().contains("writable"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_file(&p).is_ok());
        std::fs::set_permissions(
            d.path().join("a.refresh"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        assert!(load_file(&p).unwrap_err().to_string().contains("chmod 600"));
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let d = tempfile_dir();
        write(d.path(), "a.refresh", "tok\n", 0o600);
        let base = minimal("a.refresh");
        for (extra, needle) in [
            ("colour = 1\n", "unknown field"),
            ("otp_length = 0\n", "otp_length"),
            ("batch_size = 0\n", "batch_size"),
            ("url_file = \"u\"\n", "exactly one of url"),
            (
                "password_file = \"a.refresh\"\n",
                "exactly one of refresh_token_file",
            ),
            ("otp_channels = [\"sms\"]\n", "unknown variant"),
        ] {
            let p = write(d.path(), "c.toml", &format!("{base}{extra}"), 0o600);
            let e = load_file(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
        let two = format!("{base}{}", base.replace("\"A\"", "\"B\""))
            .replace("label = \"B\"", "label = \"B\"\nslot_id = 0");
        let p = write(d.path(), "c.toml", &two, 0o600);
        assert!(load_file(&p)
            .unwrap_err()
            .to_string()
            .contains("slot_id 0 used twice"));
    }

    fn executable(dir: &Path, name: &str, mode: u32) -> PathBuf {
        write(dir, name, "#!/bin/sh\necho 1\n", mode)
    }

    #[test]
    fn second_factor_defaults_and_channel_order() {
        let d = tempfile_dir();
        write(d.path(), "a.refresh", "tok\n", 0o600);
        let p = write(d.path(), "c.toml", &minimal("a.refresh"), 0o600);
        let t = load_file(&p).unwrap().tokens.remove(0);
        assert_eq!(t.mode, TokenMode::Pin);
        assert_eq!(
            (
                t.prompt_timeout_ms,
                t.prompt_attempts,
                t.totp_period,
                t.approval_timeout_ms
            ),
            (120_000, 3, 30, 120_000)
        );
        // Channels that are not set up are left out of the default order.
        assert_eq!(t.channels(), [OtpChannel::Passcode, OtpChannel::Context]);

        executable(d.path(), "ask.sh", 0o755);
        write(
            d.path(),
            "totp",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n",
            0o600,
        );
        write(d.path(), "pin", "123456\n", 0o600);
        let text = format!(
            "{}mode = \"login-free\"\nprompt_command = [\"./ask.sh\", \"--desktop\"]\n\
             totp_secret_file = \"totp\"\npin_file = \"pin\"\n",
            minimal("a.refresh")
        );
        let p = write(d.path(), "c.toml", &text, 0o600);
        let t = load_file(&p).unwrap().tokens.remove(0);
        assert_eq!(t.mode, TokenMode::LoginFree);
        assert_eq!(
            t.channels(),
            [
                OtpChannel::Passcode,
                OtpChannel::Context,
                OtpChannel::TotpFile,
                OtpChannel::Prompt
            ]
        );
        let program = d.path().join("ask.sh").display().to_string();
        assert_eq!(
            t.prompt_command.as_deref(),
            Some(&[program, "--desktop".to_owned()][..])
        );
        assert_eq!(t.pin_file.as_deref(), Some(d.path().join("pin").as_path()));

        // An explicit order is kept as given.
        let text = format!("{text}otp_channels = [\"prompt\", \"passcode\"]\n");
        let p = write(d.path(), "c.toml", &text, 0o600);
        let t = load_file(&p).unwrap().tokens.remove(0);
        assert_eq!(t.channels(), [OtpChannel::Prompt, OtpChannel::Passcode]);
    }

    #[test]
    fn refuses_unsafe_or_incomplete_second_factor_settings() {
        let d = tempfile_dir();
        write(d.path(), "a.refresh", "tok\n", 0o600);
        executable(d.path(), "ask.sh", 0o755);
        executable(d.path(), "open.sh", 0o777);
        write(d.path(), "plain", "x\n", 0o644);
        write(d.path(), "loose", "123456\n", 0o644);
        let base = minimal("a.refresh");
        for (extra, needle) in [
            ("otp_channels = [\"prompt\"]\n", "prompt_command is not set"),
            (
                "otp_channels = [\"totp-file\"]\n",
                "totp_secret_file is not set",
            ),
            ("otp_channels = []\n", "otp_channels is empty"),
            ("mode = \"login-free\"\n", "set prompt_command or pin_file"),
            (
                "mode = \"protected-path\"\n",
                "set prompt_command or pin_file",
            ),
            ("mode = \"pinless\"\n", "unknown variant"),
            (
                "prompt_command = [\"zenity\"]\n",
                "not a name looked up in PATH",
            ),
            ("prompt_command = []\n", "prompt_command is empty"),
            (
                "prompt_command = [\"./open.sh\"]\n",
                "writable by group or others",
            ),
            ("prompt_command = [\"./plain\"]\n", "not an executable file"),
            ("prompt_command = [\"./missing.sh\"]\n", "missing.sh"),
            ("pin_file = \"loose\"\n", "chmod 600"),
            ("totp_secret_file = \"missing\"\n", "missing"),
            ("totp_credential = \"c\"\n", "needs totp_secret_file"),
            ("prompt_attempts = 0\n", "prompt_attempts"),
            ("totp_period = 0\n", "totp_period"),
            ("prompt_timeout_ms = 0\n", "timeouts must be positive"),
            ("approval_timeout_ms = 0\n", "timeouts must be positive"),
        ] {
            let p = write(d.path(), "c.toml", &format!("{base}{extra}"), 0o600);
            let e = load_file(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
        let p = write(
            d.path(),
            "c.toml",
            &format!("{base}mode = \"protected-path\"\nprompt_command = [\"./ask.sh\"]\n"),
            0o600,
        );
        assert_eq!(
            load_file(&p).unwrap().tokens[0].mode,
            TokenMode::ProtectedPath
        );
    }

    /// Every key the example documents, commented out or not, is one the module accepts.
    #[test]
    fn example_file_documents_accepted_keys() {
        let example = include_str!("../../examples/cloudtoken.example.toml");
        let uncommented: String = example
            .lines()
            .map(|l| {
                let rest = l.trim_start().strip_prefix("# ").unwrap_or("");
                let key = rest.split('=').next().unwrap_or("").trim();
                let is_setting = rest.contains(" = ")
                    && !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                if is_setting {
                    rest.split("  #").next().unwrap().to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(uncommented.contains("always_authenticate = false"));
        let parsed: FileFormat = toml::from_str(&uncommented).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.token.len(), 1);
        assert!(parsed.token[0].password_file.is_some() && parsed.token[0].client_key.is_some());
        let t = &parsed.token[0];
        assert!(t.prompt_command.is_some() && t.totp_secret_file.is_some() && t.pin_file.is_some());
        assert!(t.otp_channels.as_deref() == Some(&DEFAULT_CHANNELS[..]));
        assert!(parsed.log.file.is_some());
    }

    #[test]
    fn writes_secret_file_atomically_with_mode_600() {
        let d = tempfile_dir();
        let p = write(d.path(), "r", "old\n", 0o600);
        write_secret_file(&p, &remote_client::Secret::new("new")).unwrap();
        assert_eq!(read_secret_file(&p).unwrap().expose(), "new");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    }

    fn tempfile_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }
}
