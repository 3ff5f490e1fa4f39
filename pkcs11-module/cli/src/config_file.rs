//! The module configuration as a person's file: finding it, and changing one token's entry while keeping
//! every comment and every other token. A changed file is checked by the module's own loader before it
//! replaces the old one, so the tool cannot leave a configuration the module would refuse.

use crate::words::{Failure, Outcome};
use cloudtoken::config::{self, Config};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

const HEADER: &str = "# cloudtoken module configuration, written by `cloudtoken enroll`.\n\
# Every key is documented in examples/cloudtoken.example.toml; comments you add here are kept.\n";

/// Where `enroll` writes: `--config`, else CLOUDTOKEN_CONFIG, else the user's own file.
pub fn for_writing(given: Option<PathBuf>) -> Outcome<PathBuf> {
    given
        .or_else(|| {
            std::env::var_os(config::CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(config::user_file)
        .ok_or_else(|| {
            Failure::new(
                "There is no home folder to keep the configuration in; give its place with --config.",
            )
        })
}

/// The configuration the module would load: `--config`, else the module's search order.
pub fn load(given: Option<PathBuf>) -> Outcome<Config> {
    let path = match given {
        Some(p) => p,
        None => config::locate(None).map(|(p, _)| p).ok_or_else(|| {
            Failure::new(
                "No cloudtoken configuration was found (CLOUDTOKEN_CONFIG, ~/.config/cloudtoken/cloudtoken.toml, \
                 /etc/cloudtoken/cloudtoken.toml). Enrol a token first: cloudtoken enroll --url URL --account NAME",
            )
        })?,
    };
    if !path.exists() {
        return Err(Failure(format!(
            "The configuration file {} does not exist. Enrol a token first: cloudtoken enroll --url URL \
             --account NAME --config {}",
            path.display(),
            path.display()
        )));
    }
    config::load_file(&path).map_err(|e| {
        Failure(format!(
            "The module would refuse its configuration, so applications will not see any token: {e}"
        ))
    })
}

/// One token's entry as `enroll` writes it. Keys left `None` are not touched in an existing entry,
/// except the sign-in's: those are replaced as a whole, so that no secret of an earlier sign-in stays.
pub struct TokenEntry {
    pub label: String,
    pub url: String,
    /// `url` is the full base of the CSC methods (`api_base`), not the service's address.
    pub url_is_api_base: bool,
    pub api: &'static str,
    pub ca_file: Option<PathBuf>,
    pub allow_loopback_http: bool,
    pub account: String,
    /// `service_auth` and its keys (secret files relative to the configuration's folder), in order.
    pub sign_in: Vec<(&'static str, String)>,
    pub mode: Option<String>,
    pub prompt_command: Option<Vec<String>>,
    pub agent_socket: Option<PathBuf>,
}

/// Every key a sign-in may set (`set_entry` removes them before writing the new sign-in's).
const SIGN_IN_KEYS: &[&str] = &[
    "service_auth",
    "refresh_token_file",
    "password_file",
    "access_token_file",
    "api_key_file",
    "api_key_header",
    "client_id",
    "client_secret_file",
    "oauth2_token_url",
    "oauth2_authorize_url",
    "oauth2_scope",
];

/// A file name for one of the token's secrets, next to the configuration: the label in lower case,
/// anything but letters and digits turned into '-', and `ext`.
pub fn secret_name(label: &str, ext: &str) -> String {
    let mut slug = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    format!("{}.{ext}", if slug.is_empty() { "token" } else { slug })
}

/// The file name of the token's refresh token.
pub fn refresh_token_name(label: &str) -> String {
    secret_name(label, "refresh")
}

/// Creates the configuration's folder (0700) when missing.
pub fn ensure_folder(path: &Path) -> Outcome<PathBuf> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            Failure(format!(
                "The folder {} for the configuration cannot be created: {e}.",
                dir.display()
            ))
        })?;
    Ok(dir)
}

fn set_entry(t: &mut Table, e: &TokenEntry) {
    t["label"] = value(&e.label);
    for k in ["url", "url_file", "api_base"] {
        t.remove(k);
    }
    t[if e.url_is_api_base { "api_base" } else { "url" }] = value(&e.url);
    t["api"] = value(e.api);
    match &e.ca_file {
        Some(ca) => t["ca_file"] = value(ca.display().to_string()),
        None => {
            t.remove("ca_file");
        }
    }
    if e.allow_loopback_http {
        t["allow_loopback_http"] = value(true);
    } else {
        t.remove("allow_loopback_http");
    }
    if e.account.is_empty() {
        t.remove("account");
    } else {
        t["account"] = value(&e.account);
    }
    for k in SIGN_IN_KEYS {
        t.remove(k);
    }
    for (k, v) in &e.sign_in {
        t[*k] = value(v);
    }
    if let Some(mode) = &e.mode {
        t["mode"] = value(mode);
    }
    if let Some(cmd) = &e.prompt_command {
        t["prompt_command"] = value(cmd.iter().collect::<Array>());
    }
    if let Some(sock) = &e.agent_socket {
        t["agent_socket"] = value(sock.display().to_string());
    }
}

/// The file's text with `entry` added, or replacing the token of the same label. True: replaced.
pub fn with_token(existing: Option<&str>, entry: &TokenEntry) -> Result<(String, bool), String> {
    let mut doc: DocumentMut = match existing {
        Some(text) => text
            .parse()
            .map_err(|e: toml_edit::TomlError| e.to_string())?,
        None => DocumentMut::new(),
    };
    let tokens = doc
        .entry("token")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or("`token` is not a list of [[token]] tables")?;
    let found = tokens
        .iter_mut()
        .find(|t| t.get("label").and_then(|l| l.as_str()) == Some(entry.label.as_str()));
    let replaced = match found {
        Some(t) => {
            set_entry(t, entry);
            true
        }
        None => {
            let mut t = Table::new();
            set_entry(&mut t, entry);
            tokens.push(t);
            false
        }
    };
    let mut text = match existing {
        Some(_) => doc.to_string(),
        None => format!("{HEADER}\n{doc}"),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok((text, replaced))
}

/// Replaces the configuration file with `text` (mode 0600) after the module's loader accepted it.
pub fn replace_checked(path: &Path, text: &str) -> Outcome<()> {
    let dir = ensure_folder(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cloudtoken.toml".into());
    let tmp = dir.join(format!(".{name}.{}.new", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Failure(format!(
            "The configuration {} cannot be written: {e}.",
            path.display()
        )));
    }
    if let Err(e) = config::load_file(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Failure(format!(
            "The configuration was not changed: the module would refuse the result ({e})."
        )));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure(format!(
            "The configuration {} cannot be replaced: {e}.",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(label: &str, url: &str) -> TokenEntry {
        TokenEntry {
            label: label.into(),
            url: url.into(),
            url_is_api_base: false,
            api: "auto",
            ca_file: None,
            allow_loopback_http: false,
            account: "alice".into(),
            sign_in: vec![("refresh_token_file", refresh_token_name(label))],
            mode: None,
            prompt_command: None,
            agent_socket: None,
        }
    }

    #[test]
    fn refresh_token_names_are_file_safe() {
        assert_eq!(refresh_token_name("Alice Example"), "alice-example.refresh");
        assert_eq!(refresh_token_name("../etc/x"), "etc-x.refresh");
        assert_eq!(refresh_token_name("éé"), "token.refresh");
    }

    #[test]
    fn adds_then_replaces_keeping_comments_and_other_tokens() {
        let (text, replaced) = with_token(None, &entry("A", "https://a")).unwrap();
        assert!(!replaced);
        assert!(text.starts_with("# cloudtoken module configuration"));
        let edited = format!(
            "{text}# my note\n[[token]]\nlabel = \"B\"\nurl = \"https://b\"\naccount = \"bob\"\npassword_file = \"b.pw\"\n"
        );
        let mut e = entry("B", "https://b2");
        e.mode = Some("login-free".into());
        e.prompt_command = Some(vec!["/usr/bin/prompt".into(), "--x".into()]);
        let (text, replaced) = with_token(Some(&edited), &e).unwrap();
        assert!(replaced);
        assert!(text.contains("# my note"));
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let tokens = doc["token"].as_array().unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0]["url"].as_str(), Some("https://a"));
        let b = &tokens[1];
        assert_eq!(b["url"].as_str(), Some("https://b2"));
        assert_eq!(b["refresh_token_file"].as_str(), Some("b.refresh"));
        assert!(b.get("password_file").is_none());
        assert_eq!(b["mode"].as_str(), Some("login-free"));
        assert_eq!(b["prompt_command"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn refuses_a_file_that_is_not_toml() {
        assert!(with_token(Some("[[token]\n"), &entry("A", "u")).is_err());
        assert!(with_token(Some("token = 3\n"), &entry("A", "u")).is_err());
    }
}
