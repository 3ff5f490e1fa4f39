//! The service seam: what the module needs from a remote signing service, whatever protocol it speaks —
//! the account's sign-in, the credentials, authorization (with its asynchronous check and the sending of
//! an online one-time password) and signing hashes.
//!
//! Owns the trait and the vocabulary that crosses it: protocol-neutral types (remote-client's service
//! model, never a wire type), re-exported here so that nothing above this module names a protocol
//! client. Implementations: [`csc`] (the Cloud Signature Consortium API through remote-client),
//! [`globalsign`] (the GlobalSign Digital Signing Service, whose credentials are short-lived),
//! [`cryptopro`] (CryptoPro DSS, through remote-client's `CryptoproClient`) and, in unit tests, `fake`
//! (scripted answers and faults). Nothing here knows PKCS#11.

pub mod cryptopro;
pub mod csc;
#[cfg(test)]
pub mod fake;
pub mod globalsign;

pub use remote_client::{
    AuthMode, Authorization, AuthorizeRequest, CredentialInfo, Error, OtpType,
    PendingAuthorization, Reason, Sad, Scal, Secret, SignHashRequest,
};

use crate::config::{Protocol, TokenConfig};
use remote_client::{ClientConfig, ClientIdentity};
use std::sync::Arc;
use std::time::Duration;

/// The service a token's configuration names, in the protocol it speaks (no request is made). Errors
/// are the configuration's, in plain words.
pub fn connect(config: &TokenConfig) -> Result<Arc<dyn Service>, String> {
    Ok(match config.protocol {
        Protocol::Csc => Arc::new(csc::CscService::new(config)?),
        Protocol::GlobalsignDss => Arc::new(globalsign::GlobalsignService::new(config)?),
        Protocol::CryptoproDss => Arc::new(cryptopro::CryptoproService::new(config)?),
    })
}

/// Where the service is: `url`, the first line of `url_file` (read when the client is built, so the
/// module loads before the service has written it), or `api_base`.
pub fn base_url(t: &TokenConfig) -> Result<String, String> {
    if let Some(u) = t.url.as_ref().or(t.api_base.as_ref()) {
        return Ok(u.clone());
    }
    let path = t.url_file.as_ref().ok_or("no url, url_file or api_base")?;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("url_file {}: {e}", path.display()))?;
    let url = text.lines().next().unwrap_or("").trim().to_owned();
    if url.is_empty() {
        return Err(format!("url_file {} is empty", path.display()));
    }
    Ok(url)
}

/// How to reach the service, whatever its protocol: address, TLS trust and client certificate,
/// timeouts.
pub fn transport_config(t: &TokenConfig) -> Result<ClientConfig, String> {
    let mut cc = ClientConfig::new(base_url(t)?);
    cc.ca_file = t.ca_file.clone();
    cc.client_identity = match (&t.client_cert, &t.client_key) {
        (Some(c), Some(k)) => Some(ClientIdentity {
            cert_file: c.clone(),
            key_file: k.clone(),
        }),
        _ => None,
    };
    cc.connect_timeout = Duration::from_millis(t.connect_timeout_ms);
    cc.request_timeout = Duration::from_millis(t.request_timeout_ms);
    cc.allow_loopback_http = t.allow_loopback_http;
    Ok(cc)
}

/// How a service's short-lived credentials are replaced: each one expires with its certificate
/// (notAfter), and the token asks for the next one `before_expiry` ahead of that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    pub before_expiry: Duration,
}

/// Every credential of an account, each with its own outcome.
pub type Listed = Vec<(String, Result<CredentialInfo, Error>)>;

/// What a sign-in to the account gives: what every later call carries (a bearer token, an API key, or
/// nothing), and how long the service said it lasts.
#[derive(Clone)]
pub struct Access {
    pub carried: remote_client::Access,
    pub lifetime: Option<Duration>,
}

impl Access {
    pub fn bearer(token: Secret, lifetime: Option<Duration>) -> Access {
        Access {
            carried: remote_client::Access::Bearer(token),
            lifetime,
        }
    }
}

/// One remote signing service, as one token's account sees it. Every method is one request (or, for
/// `credentials`, the few requests one answer needs); retries, renewal of the access and the mapping of
/// errors are the caller's (token/account.rs), so that they are decided in one place for every protocol.
pub trait Service: Send + Sync {
    /// A name for the service in log lines and as the agent's key: its base address.
    fn address(&self) -> &str;

    /// Signs in to the account without the user (enrolment refresh token, password file, ...).
    fn sign_in(&self) -> Result<Access, Error>;

    /// Whether signing in again can give a new access (false for a static token or API key, where a
    /// refused access is final).
    fn renews(&self) -> bool {
        true
    }

    /// How long the service asked to wait before the next request (`Retry-After`), if it did.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// Ends a sign-in at the service (best effort; used when an access is dropped on purpose).
    fn sign_out(&self, _access: &Access) {}

    /// The IDs of the account's credentials.
    fn list_credentials(&self, access: &Access) -> Result<Vec<String>, Error>;

    /// `Some` when the service's credentials are short-lived (GlobalSign DSS identities): the token
    /// then obtains them with [`Service::issue_credentials`] and replaces them before they expire.
    /// `None` (CSC): the credentials are listed once.
    fn renewal(&self) -> Option<Renewal> {
        None
    }

    /// Short-lived credentials to use from now on, with more than `Renewal::before_expiry` left: made for
    /// this request, or made recently enough by another process. Not a read: it may create credentials.
    fn issue_credentials(&self, access: &Access) -> Result<Vec<String>, Error> {
        self.list_credentials(access)
    }

    /// One credential: its key, certificates and what authorizing it needs.
    fn credential_info(&self, access: &Access, id: &str) -> Result<CredentialInfo, Error>;

    /// Every credential of the account, each with its own outcome (one that cannot be read does not
    /// hide the others). By default a list and one info request per credential; a protocol that can
    /// answer in one round trip (CSC v2 `credentialInfos`) does so.
    fn credentials(&self, access: &Access) -> Result<Listed, Error> {
        Ok(self
            .list_credentials(access)?
            .into_iter()
            .map(|id| {
                let info = self.credential_info(access, &id);
                (id, info)
            })
            .collect())
    }

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

    /// Whether the service lists `method` in `info.methods` (false when it cannot be told).
    fn offers(&self, _method: &str) -> bool {
        false
    }

    /// `credentials/extendTransaction`: a new SAD for what is left of `sad`'s batch (SCAL 1, no hashes).
    fn extend_transaction(
        &self,
        _access: &Access,
        _credential_id: &str,
        _sad: &Secret,
    ) -> Result<Sad, Error> {
        Err(Error::Config(
            "this service does not extend transactions".into(),
        ))
    }

    /// Starts an authorization the user gives in a browser (CSC `authMode` `oauth2code`: OAuth 2.0
    /// `scope=credential`): the page to show, whose answer comes back to `redirect_uri`.
    fn credential_authorization(
        &self,
        _redirect_uri: &str,
        _request: &AuthorizeRequest,
    ) -> Result<PendingAuthorization, Error> {
        Err(Error::Config(
            "this service has no browser authorization of credentials".into(),
        ))
    }

    /// Ends it: the browser's redirect (path and query) exchanged for the SAD (the credential token).
    fn exchange_credential_code(
        &self,
        _pending: &PendingAuthorization,
        _redirect: &str,
    ) -> Result<Sad, Error> {
        Err(Error::Config(
            "this service has no browser authorization of credentials".into(),
        ))
    }

    /// Signs hashes with a SAD; one signature per hash, in the order given.
    fn sign_hashes(
        &self,
        access: &Access,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>, Error>;
}
