//! The Cloud Signature Consortium API (v1 and v2) as a [`Service`], through remote-client's `CscClient`:
//! how a token's configuration becomes a client, and how the account signs in (the enrolment's refresh
//! token, rotated when the service issues a new one, or a password file).
//!
//! Calls remote-client and the account's secret (service::AccountSecret); nothing above the seam.

use super::{
    Access, AccountSecret, Authorization, AuthorizeRequest, CredentialInfo, Error, Secret, Service,
};
use crate::config::{Api, TokenConfig};
use remote_client::{ApiVersion, ClientConfig, ClientIdentity, CscClient, SignHashRequest, Tokens};
use std::time::Duration;

pub struct CscService {
    address: String,
    client: CscClient,
    secret: AccountSecret,
}

/// The service base URL: `url`, or the first line of `url_file` (read when the client is built, so the
/// module loads before the service has written it).
pub fn base_url(t: &TokenConfig) -> Result<String, String> {
    if let Some(u) = &t.url {
        return Ok(u.clone());
    }
    let path = t.url_file.as_ref().ok_or("no url or url_file")?;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("url_file {}: {e}", path.display()))?;
    let url = text.lines().next().unwrap_or("").trim().to_owned();
    if url.is_empty() {
        return Err(format!("url_file {} is empty", path.display()));
    }
    Ok(url)
}

/// How to reach the service, as remote-client takes it (the module and the `cloudtoken` tool).
pub fn client_config(t: &TokenConfig) -> Result<ClientConfig, String> {
    let mut cc = ClientConfig::new(base_url(t)?);
    cc.api_version = match t.api {
        Api::V1 => ApiVersion::V1,
        Api::V2 => ApiVersion::V2,
        Api::Auto => ApiVersion::Auto,
    };
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

impl CscService {
    /// The client for a token (no request is made). Errors are the configuration's, in plain words.
    pub fn new(t: &TokenConfig) -> Result<CscService, String> {
        let cc = client_config(t)?;
        let client = CscClient::new(&cc).map_err(|e| e.to_string())?;
        Ok(CscService {
            address: cc.base_url.trim_end_matches('/').to_owned(),
            client,
            secret: AccountSecret::of(t)?,
        })
    }
}

fn access(tokens: Tokens) -> Access {
    Access {
        token: tokens.access_token,
        lifetime: tokens.expires_in,
    }
}

impl Service for CscService {
    fn address(&self) -> &str {
        &self.address
    }

    fn sign_in(&self) -> Result<Access, Error> {
        self.secret.sign_in(
            |refresh| {
                let tokens = self.client.refresh(refresh)?;
                let rotated = tokens.refresh_token.clone();
                Ok((access(tokens), rotated))
            },
            |account, password| Ok(access(self.client.login(account, password, false)?)),
        )
    }

    fn sign_out(&self, access: &Access) {
        let _ = self
            .client
            .revoke(&access.token, &access.token, "access_token");
    }

    fn list_credentials(&self, access: &Access) -> Result<Vec<String>, Error> {
        self.client.list_credentials(&access.token)
    }

    fn credential_info(&self, access: &Access, id: &str) -> Result<CredentialInfo, Error> {
        self.client.credential_info(&access.token, id)
    }

    fn send_otp(&self, access: &Access, id: &str, description: &str) -> Result<(), Error> {
        self.client
            .send_otp_with_description(&access.token, id, Some(description))
    }

    fn authorize(
        &self,
        access: &Access,
        request: &AuthorizeRequest,
    ) -> Result<Authorization, Error> {
        self.client.authorize(&access.token, request)
    }

    fn authorize_check(&self, access: &Access, handle: &Secret) -> Result<Authorization, Error> {
        self.client.authorize_check(&access.token, handle)
    }

    fn sign_hashes(
        &self,
        access: &Access,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>, Error> {
        self.client.sign_hash(&access.token, request)
    }
}
