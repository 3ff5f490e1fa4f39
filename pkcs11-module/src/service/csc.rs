//! The Cloud Signature Consortium API (v1 and v2) as a [`Service`], through remote-client's `CscClient`:
//! how a token's configuration becomes a client, and how the account signs in (the enrolment's refresh
//! token, rotated when the service issues a new one, or a password file).
//!
//! Calls remote-client and the secure-file policy (config::files); nothing above the seam.

use super::{Access, Authorization, AuthorizeRequest, CredentialInfo, Error, Secret, Service};
use crate::config::files::{read_secret_file, write_secret_file};
use crate::config::{Api, TokenConfig};
use remote_client::{ApiVersion, ClientConfig, CscClient, SignHashRequest, Tokens};
use std::path::PathBuf;

/// How the account signs in, from the token's configuration.
enum SignIn {
    /// The refresh token `cloudtoken enroll` stored (rotated in place).
    RefreshToken(PathBuf),
    /// `auth/login` with the account name and the password in a file.
    Password { account: String, file: PathBuf },
}

pub struct CscService {
    address: String,
    client: CscClient,
    sign_in: SignIn,
}

pub use super::base_url;

/// How to reach the service, as remote-client takes it (the module and the `cloudtoken` tool).
pub fn client_config(t: &TokenConfig) -> Result<ClientConfig, String> {
    let mut cc = super::transport_config(t)?;
    cc.api_version = match t.api {
        Api::V1 => ApiVersion::V1,
        Api::V2 => ApiVersion::V2,
        Api::Auto => ApiVersion::Auto,
    };
    Ok(cc)
}

impl CscService {
    /// The client for a token (no request is made). Errors are the configuration's, in plain words.
    pub fn new(t: &TokenConfig) -> Result<CscService, String> {
        let cc = client_config(t)?;
        let client = CscClient::new(&cc).map_err(|e| e.to_string())?;
        let sign_in = match (&t.refresh_token_file, &t.password_file) {
            (Some(f), _) => SignIn::RefreshToken(f.clone()),
            (None, Some(f)) => SignIn::Password {
                account: t.account.clone(),
                file: f.clone(),
            },
            (None, None) => return Err("no account secret configured".into()),
        };
        Ok(CscService {
            address: cc.base_url.trim_end_matches('/').to_owned(),
            client,
            sign_in,
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
        match &self.sign_in {
            SignIn::RefreshToken(path) => {
                let refresh = read_secret_file(path).map_err(Error::Config)?;
                let tokens = self.client.refresh(&refresh)?;
                if let Some(new) = &tokens.refresh_token {
                    if new.expose() != refresh.expose() {
                        // The service rotated the refresh token: the old one may no longer work.
                        if let Err(e) = write_secret_file(path, new) {
                            log::error!("cannot store the rotated refresh token: {e}");
                        }
                    }
                }
                Ok(access(tokens))
            }
            SignIn::Password { account, file } => {
                let password = read_secret_file(file).map_err(Error::Config)?;
                Ok(access(self.client.login(account, &password, false)?))
            }
        }
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
