//! Secrets at rest: the TLS server key, every TOTP secret and pending SMS code in the database is sealed
//! with AES-256-GCM under the 32-byte master key in `STATE/master.key` (the signing keys are in the HSM,
//! not here). The associated data names what a blob is and whose it is ("totp-secret:alice-p256"), so
//! a blob copied into another row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use zeroize::Zeroizing;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const AAD_PREFIX: &str = "csc-server sealed v1 ";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("master key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("master key {0} must hold exactly 32 bytes")]
    BadLength(String),
    #[error("master key {0} is accessible by group or others; chmod 600 it")]
    TooOpen(String),
    #[error(
        "sealed value for {0} does not open (wrong master key, or the data was altered or moved)"
    )]
    Open(String),
}

pub struct Vault {
    cipher: Aes256Gcm,
}

impl Vault {
    /// Writes a fresh random master key to `path` (which must not exist), readable by the owner only.
    pub fn create(path: &Path) -> Result<Vault, VaultError> {
        let key = crate::random::bytes::<32>();
        let io = |source| VaultError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        f.write_all(key.as_ref()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(Vault::from_key(&key))
    }

    pub fn load(path: &Path) -> Result<Vault, VaultError> {
        let shown = path.display().to_string();
        let bytes = crate::files::read_private(path).map_err(|e| match e {
            crate::files::PrivateFileError::TooOpen => VaultError::TooOpen(shown.clone()),
            crate::files::PrivateFileError::Io(source) => VaultError::Io {
                path: shown.clone(),
                source,
            },
        })?;
        let key: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::BadLength(shown.clone()))?;
        Ok(Vault::from_key(key))
    }

    pub fn from_key(key: &[u8; 32]) -> Vault {
        Vault {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)),
        }
    }

    /// `FORMAT_V1 || nonce || ciphertext+tag`, bound to `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = crate::random::bytes::<NONCE_LEN>();
        let aad = format!("{AAD_PREFIX}{purpose}");
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            // Only fails for inputs beyond GCM's 64 GiB limit.
            .expect("AES-GCM encryption of a small value");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let err = || VaultError::Open(purpose.to_owned());
        let (&format, rest) = sealed.split_first().ok_or_else(err)?;
        if format != FORMAT_V1 || rest.len() < NONCE_LEN + 16 {
            return Err(err());
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| err())?;
        let aad = format!("{AAD_PREFIX}{purpose}");
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| err())
    }
}

/// Names of sealed values (the associated data).
pub mod purpose {
    pub fn totp_secret(id: &str) -> String {
        format!("totp-secret:{id}")
    }
    pub fn sms_code(id: &str) -> String {
        format!("sms-code:{id}")
    }
    /// The TOTP secret of a user account (the approval page login).
    pub fn account_totp(user: &str) -> String {
        format!("account-totp:{user}")
    }
    pub const TLS_KEY: &str = "tls-key";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let v = Vault::from_key(&[7u8; 32]);
        let secret = b"private key bytes that must not leak";
        let sealed = v.seal("totp-secret:a", secret);
        assert!(!sealed.windows(secret.len()).any(|w| w == secret));
        assert_eq!(v.open("totp-secret:a", &sealed).unwrap().as_slice(), secret);
        // Two seals of the same value differ (fresh nonce).
        assert_ne!(sealed, v.seal("totp-secret:a", secret));
        // Bound to its purpose.
        assert!(v.open("totp-secret:b", &sealed).is_err());
        // Another key does not open it.
        assert!(Vault::from_key(&[8u8; 32])
            .open("totp-secret:a", &sealed)
            .is_err());
        // Any flipped bit is detected.
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(
                v.open("totp-secret:a", &t).is_err(),
                "bit flip at {i} undetected"
            );
        }
        assert!(v.open("totp-secret:a", &sealed[..10]).is_err());
    }

    #[test]
    fn master_key_file_is_private_and_reloads() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let v = Vault::create(&p).unwrap();
        let meta = fs::metadata(&p).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let sealed = v.seal("x", b"hello");
        assert_eq!(
            Vault::load(&p)
                .unwrap()
                .open("x", &sealed)
                .unwrap()
                .as_slice(),
            b"hello"
        );
        // Refuses to overwrite, and refuses a key others can read.
        assert!(Vault::create(&p).is_err());
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Vault::load(&p), Err(VaultError::TooOpen(_))));
    }
}
