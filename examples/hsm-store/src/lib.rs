//! hsm-store: the signing keys of the reference services (csc-server; later the GlobalSign DSS and
//! CryptoPro DSS emulators) in a PKCS#11 token, as CEN/TS 419241 asks of a signing service: every key
//! pair is generated inside the token as a sensitive, non-extractable token object, and every
//! signature is made by the token. No private key ever exists outside it.
//!
//! - [`Module`]: a PKCS#11 library, loaded and initialized once per process; finding and initializing
//!   tokens.
//! - [`softhsm`]: SoftHSM2 with its token folder inside a service's state folder (the default HSM).
//! - [`Store`]: one logged-in token with a pool of sessions, so that concurrent signers sign in
//!   parallel (a PKCS#11 session serves one thread at a time); key generation, lookup and signing.
//! - [`Signing`], [`Hash`], [`KeySpec`]: what a key is and what a signature operation is, in the
//!   terms of the signature schemes (PKCS#1 v1.5 over a DigestInfo, PSS, ECDSA with DER output).
//! - [`ca`] (feature `rcgen`): a CA key of the store as rcgen's signing key.
//!
//! Calls block (the token works synchronously): the reference services run them on each connection's own thread.

#[cfg(feature = "rcgen")]
pub mod ca;
mod encoding;
mod module;
mod pool;
pub mod softhsm;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use module::Module;
pub use store::{Key, PoolStats, Store};

/// Errors never carry a PIN or key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("PKCS#11 module {path}: {message}")]
    Load { path: String, message: String },
    #[error("PKCS#11 {context}: {source}")]
    Pkcs11 {
        context: &'static str,
        source: cryptoki::error::Error,
    },
    #[error("no initialized token labelled {0:?}")]
    NoToken(String),
    #[error("a token labelled {0:?} exists already")]
    TokenExists(String),
    #[error("the module has no free slot for a new token")]
    NoFreeSlot,
    #[error("no key labelled {0:?} in the token")]
    NoKey(String),
    #[error("a key labelled {0:?} exists already in the token")]
    KeyExists(String),
    #[error("the token did not keep key {0:?} sensitive and non-extractable")]
    KeyNotProtected(String),
    #[error("the token returned a malformed {0}")]
    Malformed(&'static str),
    #[error("{0}")]
    Input(&'static str),
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn pkcs11(context: &'static str) -> impl FnOnce(cryptoki::error::Error) -> Error {
        move |source| Error::Pkcs11 { context, source }
    }

    /// The PKCS#11 return value, when the token refused something.
    pub fn rv(&self) -> Option<cryptoki::error::RvError> {
        match self {
            Error::Pkcs11 {
                source: cryptoki::error::Error::Pkcs11(rv, _),
                ..
            } => Some(*rv),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Key pairs the store generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    Rsa { bits: u32 },
    Ec(Curve),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// The hash a signature is over (the caller hashed the data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// Length of the hash value in bytes.
    pub fn size(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// One signature operation over a hash value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// RSASSA-PKCS1-v1_5: the token signs the DigestInfo of the hash (CKM_RSA_PKCS).
    RsaPkcs1(Hash),
    /// RSASSA-PSS with MGF1 over the same hash (CKM_RSA_PKCS_PSS).
    RsaPss { hash: Hash, salt_len: usize },
    /// ECDSA over the hash (CKM_ECDSA); the signature comes back as DER `Ecdsa-Sig-Value`.
    Ecdsa,
}
