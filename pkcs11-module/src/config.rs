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

/// Where a one-time password may come from; see auth.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpChannel {
    /// Appended to the PIN given to C_Login(CKU_USER).
    Passcode,
    /// C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit.
    Context,
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
    #[serde(default = "default_channels")]
    pub otp_channels: Vec<OtpChannel>,
    #[serde(default = "default_otp_length")]
    pub otp_length: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Give every private key CKA_ALWAYS_AUTHENTICATE (a context login per signing operation).
    #[serde(default)]
    pub always_authenticate: bool,
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
fn default_channels() -> Vec<OtpChannel> {
    vec![OtpChannel::Passcode, OtpChannel::Context]
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
    pub fn has_channel(&self, c: OtpChannel) -> bool {
        self.otp_channels.contains(&c)
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
    let user_dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        });
    let candidates = user_dir
        .map(|d| d.join("cloudtoken").join("cloudtoken.toml"))
        .into_iter()
        .chain(std::iter::once(PathBuf::from(
            "/etc/cloudtoken/cloudtoken.toml",
        )));
    for c in candidates {
        if c.exists() {
            return Some((c, false));
        }
    }
    None
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
    ]
    .into_iter()
    .flatten()
    {
        *p = base.join(&*p);
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
        if t.otp_channels.is_empty() {
            return Err(e("otp_channels is empty"));
        }
        if !(1..=16).contains(&t.otp_length) {
            return Err(e("otp_length must be 1 to 16"));
        }
        if t.batch_size == 0 {
            return Err(e("batch_size must be at least 1"));
        }
        if t.connect_timeout_ms == 0 || t.request_timeout_ms == 0 {
            return Err(e("timeouts must be positive"));
        }
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
