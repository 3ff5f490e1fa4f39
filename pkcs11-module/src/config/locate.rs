//! Where the configuration is found, in the documented order: C_Initialize's pReserved
//! (`cloudtoken_conf=PATH`), `$CLOUDTOKEN_CONFIG`, the user's file, `/etc/cloudtoken/cloudtoken.toml`.

use std::path::PathBuf;

pub const CONFIG_ENV: &str = "CLOUDTOKEN_CONFIG";
/// The C_Initialize pReserved string form: `cloudtoken_conf=PATH`.
pub const RESERVED_PREFIX: &str = "cloudtoken_conf=";
/// The system-wide file, used when the user has none.
const SYSTEM_FILE: &str = "/etc/cloudtoken/cloudtoken.toml";

/// The configuration file to load and whether it was named explicitly. `reserved` is the path from
/// C_Initialize's pReserved. An explicit path (pReserved, CLOUDTOKEN_CONFIG) must exist; the default
/// locations are optional.
pub fn locate(reserved: Option<PathBuf>) -> Option<(PathBuf, bool)> {
    if let Some(p) = reserved {
        return Some((p, true));
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    let candidates = user_file()
        .into_iter()
        .chain(std::iter::once(PathBuf::from(SYSTEM_FILE)));
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
