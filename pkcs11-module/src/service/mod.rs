//! The service seam: what the module needs from a remote signing service, whatever protocol it speaks —
//! the account's sign-in, the credentials, authorization (with its asynchronous check and the sending of
//! an online one-time password) and signing hashes.
//!
//! Owns the trait and the vocabulary that crosses it: protocol-neutral types (remote-client's service
//! model, never a wire type), re-exported here so that nothing above this module names a protocol
//! client. Implementations: [`csc`] (the Cloud Signature Consortium API through remote-client),
//! [`cryptopro`] (CryptoPro DSS) and, in unit tests, `fake` (scripted answers and faults). What they share
//! of the account's sign-in is [`AccountSecret`]. Nothing here knows PKCS#11.

pub mod cryptopro;
pub mod csc;
#[cfg(test)]
pub mod fake;

pub use remote_client::{
    AuthMode, Authorization, AuthorizeRequest, CredentialInfo, Error, OtpType, Reason, Sad, Scal,
    Secret, SignHashRequest,
};

use crate::config::files::{read_secret_file, write_secret_file};
use crate::config::{Protocol, TokenConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The service a token's configuration names, in the protocol it speaks (no request is made). Errors
/// are the configuration's, in plain words.
pub fn connect(config: &TokenConfig) -> Result<Arc<dyn Service>, String> {
    Ok(match config.protocol {
        Protocol::Csc => Arc::new(csc::CscService::new(config)?),
        Protocol::CryptoproDss => Arc::new(cryptopro::CryptoproService::new(config)?),
    })
}

/// How the account signs in without the user, from the token's configuration.
pub enum AccountSecret {
    /// A refresh token issued at enrolment (rotated in place when the service issues a new one).
    RefreshToken(PathBuf),
    /// The account name and its password in a file.
    Password { account: String, file: PathBuf },
}

impl AccountSecret {
    pub fn of(t: &TokenConfig) -> Result<AccountSecret, String> {
        match (&t.refresh_token_file, &t.password_file) {
            (Some(f), _) => Ok(AccountSecret::RefreshToken(f.clone())),
            (None, Some(f)) => Ok(AccountSecret::Password {
                account: t.account.clone(),
                file: f.clone(),
            }),
            (None, None) => Err("no account secret configured".into()),
        }
    }

    /// Reads the secret and signs in with it: `refresh` gets the refresh token and answers the access
    /// and the refresh token the service issued with it (stored when it differs: the service rotated it,
    /// and the old one may no longer work); `password` gets the account and its password.
    pub fn sign_in(
        &self,
        refresh: impl FnOnce(&Secret) -> Result<(Access, Option<Secret>), Error>,
        password: impl FnOnce(&str, &Secret) -> Result<Access, Error>,
    ) -> Result<Access, Error> {
        match self {
            AccountSecret::RefreshToken(path) => {
                let old = read_secret_file(path).map_err(Error::Config)?;
                let (access, new) = refresh(&old)?;
                if let Some(new) = new.filter(|n| n.expose() != old.expose()) {
                    if let Err(e) = write_secret_file(path, &new) {
                        log::error!("cannot store the rotated refresh token: {e}");
                    }
                }
                Ok(access)
            }
            AccountSecret::Password { account, file } => {
                let secret = read_secret_file(file).map_err(Error::Config)?;
                password(account, &secret)
            }
        }
    }
}

/// What a sign-in to the account gives: the token every later call carries, and how long the service
/// said it lasts.
#[derive(Clone)]
pub struct Access {
    pub token: Secret,
    pub lifetime: Option<Duration>,
}

/// One remote signing service, as one token's account sees it. Every method is one request (or, for
/// `credentials`, the few requests one answer needs); retries, renewal of the access and the mapping of
/// errors are the caller's (token/account.rs), so that they are decided in one place for every protocol.
pub trait Service: Send + Sync {
    /// A name for the service in log lines and as the agent's key: its base address.
    fn address(&self) -> &str;

    /// Signs in to the account without the user (enrolment refresh token, password file, ...).
    fn sign_in(&self) -> Result<Access, Error>;

    /// Ends a sign-in at the service (best effort; used when an access is dropped on purpose).
    fn sign_out(&self, _access: &Access) {}

    /// The IDs of the account's credentials.
    fn list_credentials(&self, access: &Access) -> Result<Vec<String>, Error>;

    /// One credential: its key, certificates and what authorizing it needs.
    fn credential_info(&self, access: &Access, id: &str) -> Result<CredentialInfo, Error>;

    /// Has the service send an online one-time password (SMS) for `id`, described by `description`.
    fn send_otp(&self, access: &Access, id: &str, description: &str) -> Result<(), Error>;

    /// Asks for a SAD; the service may answer that the user approves out of band.
    fn authorize(
        &self,
        access: &Access,
        request: &AuthorizeRequest,
    ) -> Result<Authorization, Error>;

    /// Polls an authorization the user approves out of band.
    fn authorize_check(&self, access: &Access, handle: &Secret) -> Result<Authorization, Error>;

    /// Signs hashes with a SAD; one signature per hash, in the order given.
    fn sign_hashes(
        &self,
        access: &Access,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>, Error>;
}
