//! Clients for remote signing services, blocking, over verified TLS: the Cloud Signature Consortium API
//! (v1.0.4 and v2.0, [`CscClient`]), the GlobalSign Digital Signing Service API
//! ([`globalsign::GlobalsignClient`]) and CryptoPro DSS ([`cryptopro::CryptoproClient`]).
//!
//! One [`CscClient`] per service: it owns a connection pool, so requests reuse TLS sessions. It knows HTTP
//! and JSON and nothing of PKCS#11.
//!
//! - Where: `{base_url}/csc/v1|v2/` or an explicit `api_base`, the wire format chosen by `api_version`.
//! - Who: one [`ServiceAuth`] per client (none, bearer token, API key, `auth/login`, OAuth 2.0), turned
//!   by [`CscClient::sign_in`] into the [`Access`] every method takes; mutual TLS combines with any.
//! - When to give up: `request_timeout` is the deadline of one exchange, whole body included;
//!   [`RetryPolicy`] repeats what is safe to repeat, honouring `Retry-After`;
//!   [`Error::maybe_processed`] tells a caller whether the service may have acted on a failed request.

mod access;
mod client;
pub mod cryptopro;
mod endpoint;
mod error;
mod failure;
pub mod globalsign;
mod oauth;
mod retry;
mod secret;
mod tls;
mod transport;
mod types;
mod wire;

pub use access::{Access, AccessRef, ServiceAuth, SignIn, DEFAULT_API_KEY_HEADER};
pub use client::{CscClient, ListedCredential};
pub use error::{CscErrorCode, Error, GlobalsignProblem, Reason, Result, TransportKind};
pub use oauth::loopback::{Loopback, NoRedirect};
pub use oauth::{ClientAuthMethod, OAuth2Client, OAuth2Grant, PendingAuthorization};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use types::*;

/// Dotted OIDs the CSC API uses for hash and signature algorithms.
pub mod oid {
    pub const SHA1: &str = "1.3.14.3.2.26";
    pub const SHA224: &str = "2.16.840.1.101.3.4.2.4";
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const SHA1_WITH_RSA: &str = "1.2.840.113549.1.1.5";
    pub const SHA224_WITH_RSA: &str = "1.2.840.113549.1.1.14";
    pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
    pub const SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
    pub const SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const ECDSA_WITH_SHA1: &str = "1.2.840.10045.4.1";
    pub const ECDSA_WITH_SHA224: &str = "1.2.840.10045.4.3.1";
    pub const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
    pub const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";
    pub const ECDSA_WITH_SHA512: &str = "1.2.840.10045.4.3.4";
    pub const P256: &str = "1.2.840.10045.3.1.7";
    pub const P384: &str = "1.3.132.0.34";
    pub const P521: &str = "1.3.132.0.35";
    // GOST R 34.10-2012 and GOST R 34.11-2012 (Streebog), RFC 9215 §3 and RFC 7836 appendix.
    pub const STREEBOG_256: &str = "1.2.643.7.1.1.2.2";
    pub const STREEBOG_512: &str = "1.2.643.7.1.1.2.3";
    pub const GOST_R3410_2012_256: &str = "1.2.643.7.1.1.1.1";
    pub const GOST_R3410_2012_512: &str = "1.2.643.7.1.1.1.2";
    pub const SIGN_WITH_STREEBOG_256: &str = "1.2.643.7.1.1.3.2";
    pub const SIGN_WITH_STREEBOG_512: &str = "1.2.643.7.1.1.3.3";
}
