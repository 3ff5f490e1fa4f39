//! The identity a user's processes share: the newest GlobalSign identity of one token (its ID, signing
//! certificate and OCSP response) in a file of the user's, so that the next process signs with it while
//! it lasts instead of creating one of its own.
//!
//! Where: `$XDG_RUNTIME_DIR/cloudtoken/`, else `$XDG_CACHE_HOME/cloudtoken/` (or `~/.cache/cloudtoken/`),
//! a folder the user owns with mode 0700; the file is 0600, written whole and renamed into place, and
//! read through one checked handle (config/files.rs). It holds no secret — an identity ID is usable only
//! with the account's API secret and client key — but a file someone else could change is refused all
//! the same: whatever it names, every signature is checked against the certificate it holds
//! (mechanism/verify.rs), so a wrong entry can only make signing fail, never sign wrongly.

use crate::config::files::{read_secret_file, write_secret_file};
use base64::Engine;
use remote_client::globalsign::{Identity, SubjectDn};
use remote_client::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
struct Entry {
    id: String,
    certificate: String,
    #[serde(default)]
    ocsp_response: String,
}

pub struct IdentityCache {
    file: PathBuf,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The user's folder for the file, created 0700 when missing; `None` when there is none or it is not
/// the user's alone.
fn folder() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = var("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(PathBuf::from))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    private_folder(&base)
}

/// `base/cloudtoken`, created 0700 when missing, if it is the user's alone.
fn private_folder(base: &Path) -> Option<PathBuf> {
    let dir = base.join("cloudtoken");
    if !dir.exists() {
        let _ = std::fs::create_dir_all(base);
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    }
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.is_dir() && meta.uid() == me && meta.mode() & 0o077 == 0 {
        Some(dir)
    } else {
        log::warn!(
            "{}: not a folder of yours alone (mode 0700): identities are not shared between processes",
            dir.display()
        );
        None
    }
}

/// One file per service, account and subject.
fn file_name(address: &str, api_key: &str, subject: Option<&SubjectDn>) -> String {
    let mut h = Sha256::new();
    h.update(address.as_bytes());
    h.update([0]);
    h.update(api_key.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&subject).unwrap_or_default());
    let name: String = h.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("dss-identity-{name}.json")
}

impl IdentityCache {
    /// The cache of the identity of `subject` at the account `api_key` of the service at `address`;
    /// `None` when the user has no private folder for it.
    pub fn for_identity(
        address: &str,
        api_key: &str,
        subject: Option<&SubjectDn>,
    ) -> Option<IdentityCache> {
        Some(IdentityCache::at(
            &folder()?.join(file_name(address, api_key, subject)),
        ))
    }

    pub fn at(file: &Path) -> IdentityCache {
        IdentityCache {
            file: file.to_path_buf(),
        }
    }

    /// The identity in the file, if it holds a readable one (its remaining life is the caller's to judge).
    pub fn read(&self) -> Option<Identity> {
        if !self.file.exists() {
            return None;
        }
        let line = match read_secret_file(&self.file) {
            Ok(l) => l,
            Err(e) => {
                log::warn!("identity cache: {e}");
                return None;
            }
        };
        let entry: Entry = serde_json::from_str(line.expose()).ok()?;
        Some(Identity {
            id: entry.id,
            certificate: b64().decode(entry.certificate).ok()?,
            ocsp_response: b64().decode(entry.ocsp_response).unwrap_or_default(),
        })
    }

    /// Leaves `identity` for the next processes (best effort: a failure only costs them an identity).
    pub fn write(&self, identity: &Identity) {
        let entry = Entry {
            id: identity.id.clone(),
            certificate: b64().encode(&identity.certificate),
            ocsp_response: b64().encode(&identity.ocsp_response),
        };
        let Ok(line) = serde_json::to_string(&entry) else {
            return;
        };
        if let Err(e) = write_secret_file(&self.file, &Secret::new(line)) {
            log::warn!("identity cache: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_identity_survives_the_round_trip_in_a_private_file() {
        let d = tempfile::tempdir().unwrap();
        let c = IdentityCache::at(&d.path().join("id.json"));
        assert!(c.read().is_none());
        let id = Identity {
            id: "0a1b2c".into(),
            certificate: vec![0x30, 0x03, 1, 2, 3],
            ocsp_response: vec![9],
        };
        c.write(&id);
        let mode = std::fs::metadata(d.path().join("id.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = c.read().unwrap();
        assert_eq!(back.id, "0a1b2c");
        assert_eq!(back.certificate, id.certificate);
        assert_eq!(back.ocsp_response, vec![9]);
    }

    #[test]
    fn a_file_others_can_change_is_not_used() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("id.json");
        let c = IdentityCache::at(&p);
        c.write(&Identity {
            id: "x".into(),
            certificate: vec![1],
            ocsp_response: vec![],
        });
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(c.read().is_none());
        std::fs::write(&p, "not json\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(c.read().is_none());
    }

    #[test]
    fn each_identity_has_a_file_of_its_own_in_a_private_folder() {
        let subject = SubjectDn {
            common_name: Some("A".into()),
            ..SubjectDn::default()
        };
        let a = file_name("https://h/v2", "k", Some(&subject));
        assert_ne!(a, file_name("https://h/v2", "k", None));
        assert_ne!(a, file_name("https://h/v2", "j", Some(&subject)));
        assert_eq!(a, file_name("https://h/v2", "k", Some(&subject)));
        let d = tempfile::tempdir().unwrap();
        let dir = private_folder(d.path()).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_folder(d.path()).is_none());
    }
}
