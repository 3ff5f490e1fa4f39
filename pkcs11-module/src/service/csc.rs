//! The Cloud Signature Consortium API (v1 and v2) as a [`Service`], through remote-client's `CscClient`:
//! how a token's configuration becomes a client, and how the account signs in — `service_auth`: the
//! enrolment's refresh token (rotated in place when the service issues a new one) or a password file,
//! nothing, a static bearer token, an API key, or OAuth 2.0 (client credentials, password, or the
//! refresh token of an authorization-code enrolment).
//!
//! Calls remote-client and the secure-file policy (config::files); nothing above the seam. Secret files
//! are read at each sign-in (another process may have rotated a refresh token meanwhile).

use super::{
    Access, Authorization, AuthorizeRequest, CredentialInfo, Error, Listed, PendingAuthorization,
    Sad, Secret, Service,
};
use crate::config::files::write_secret_file;
use crate::config::{Api, ServiceAuthKind, TokenConfig};
use remote_client::{
    ApiVersion, ClientConfig, CscClient, OAuth2Client, OAuth2Grant, ServiceAuth, SignHashRequest,
    SignIn,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct CscService {
    address: String,
    client: CscClient,
    config: TokenConfig,
}

pub use super::base_url;

/// How to reach the service, as remote-client takes it (the module and the `cloudtoken` tool).
pub fn client_config(t: &TokenConfig) -> Result<ClientConfig, String> {
    let mut cc = super::transport_config(t)?;
    cc.api_base = t.api_base.clone();
    cc.api_version = match t.api {
        Api::V1 => ApiVersion::V1,
        Api::V2 => ApiVersion::V2,
        Api::Auto => ApiVersion::Auto,
    };
    cc.authorize_timeout = t.authorize_timeout_ms.map(Duration::from_millis);
    Ok(cc)
}

/// The secret in the file `path` names, as the configuration check read it.
pub fn secret(t: &TokenConfig, path: &Option<PathBuf>) -> Result<Secret, Error> {
    let path = path
        .as_deref()
        .ok_or_else(|| Error::Config("a secret file is not configured".into()))?;
    t.secrets.read(path).map_err(Error::Config)
}

/// The OAuth 2.0 client the token's configuration names.
pub fn oauth2_client(t: &TokenConfig) -> Result<OAuth2Client, Error> {
    let id = t
        .client_id
        .clone()
        .ok_or_else(|| Error::Config("client_id is not configured".into()))?;
    let mut client = match &t.client_secret_file {
        Some(_) => OAuth2Client::confidential(id, secret(t, &t.client_secret_file)?),
        None => OAuth2Client::new(id),
    };
    client.token_url = t.oauth2_token_url.clone();
    client.authorize_url = t.oauth2_authorize_url.clone();
    client.scope = Some(t.oauth2_scope());
    Ok(client)
}

/// The sign-in `service_auth` describes, with its secrets read now, and the refresh-token file a
/// rotated token is written back to.
pub fn service_auth(t: &TokenConfig) -> Result<(ServiceAuth, Option<&Path>), Error> {
    let refresh = t.refresh_token_file.as_deref();
    Ok(match t.service_auth {
        ServiceAuthKind::Login => match refresh {
            Some(_) => (
                ServiceAuth::RefreshToken(secret(t, &t.refresh_token_file)?),
                refresh,
            ),
            None => (
                ServiceAuth::Password {
                    account: t.account.clone(),
                    password: secret(t, &t.password_file)?,
                },
                None,
            ),
        },
        ServiceAuthKind::None => (ServiceAuth::None, None),
        ServiceAuthKind::Bearer => (ServiceAuth::Bearer(secret(t, &t.access_token_file)?), None),
        ServiceAuthKind::ApiKey => (
            ServiceAuth::ApiKey {
                header: t.api_key_header.clone(),
                key: secret(t, &t.api_key_file)?,
            },
            None,
        ),
        ServiceAuthKind::Oauth2Client => (
            ServiceAuth::OAuth2 {
                client: oauth2_client(t)?,
                grant: OAuth2Grant::ClientCredentials,
            },
            None,
        ),
        ServiceAuthKind::Oauth2Password => (
            ServiceAuth::OAuth2 {
                client: oauth2_client(t)?,
                grant: OAuth2Grant::Password {
                    username: t.account.clone(),
                    password: secret(t, &t.password_file)?,
                },
            },
            None,
        ),
        ServiceAuthKind::Oauth2Code => (
            ServiceAuth::OAuth2 {
                client: oauth2_client(t)?,
                grant: OAuth2Grant::RefreshToken(secret(t, &t.refresh_token_file)?),
            },
            refresh,
        ),
    })
}

/// The access a sign-in gave; a refresh token the service rotated is written back to `refresh_file`
/// first (the old one may no longer work).
pub fn keep_rotated(refresh_file: Option<&Path>, auth: &ServiceAuth, signed: SignIn) -> Access {
    if let (
        Some(path),
        Some(new),
        ServiceAuth::RefreshToken(old)
        | ServiceAuth::OAuth2 {
            grant: OAuth2Grant::RefreshToken(old),
            ..
        },
    ) = (refresh_file, &signed.refresh_token, auth)
    {
        if new.expose() != old.expose() {
            if let Err(e) = write_secret_file(path, new) {
                log::error!("cannot store the rotated refresh token: {e}");
            }
        }
    }
    Access {
        carried: signed.access,
        lifetime: signed.expires_in,
    }
}

impl CscService {
    /// The client for a token (no request is made). Errors are the configuration's, in plain words.
    pub fn new(t: &TokenConfig) -> Result<CscService, String> {
        let cc = client_config(t)?;
        let client = CscClient::new(&cc).map_err(|e| e.to_string())?;
        Ok(CscService {
            address: cc
                .api_base
                .as_deref()
                .unwrap_or(&cc.base_url)
                .trim_end_matches('/')
                .to_owned(),
            client,
            config: t.clone(),
        })
    }
}

impl Service for CscService {
    fn address(&self) -> &str {
        &self.address
    }

    fn sign_in(&self) -> Result<Access, Error> {
        let (auth, refresh_file) = service_auth(&self.config)?;
        let signed = self.client.sign_in(&auth)?;
        Ok(keep_rotated(refresh_file, &auth, signed))
    }

    fn renews(&self) -> bool {
        !matches!(
            self.config.service_auth,
            ServiceAuthKind::None | ServiceAuthKind::Bearer | ServiceAuthKind::ApiKey
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        self.client.retry_after()
    }

    fn sign_out(&self, access: &Access) {
        let remote_client::Access::Bearer(token) = &access.carried else {
            return;
        };
        // Each sign-in ends where it began, and only at a method the service lists.
        match self.config.service_auth {
            ServiceAuthKind::Login if self.client.offers("auth/revoke").unwrap_or(false) => {
                let _ = self.client.revoke(token, token, "access_token");
            }
            ServiceAuthKind::Oauth2Client
            | ServiceAuthKind::Oauth2Password
            | ServiceAuthKind::Oauth2Code => {
                if let Ok(client) = oauth2_client(&self.config) {
                    let _ = self.client.oauth2_revoke(&client, token, "access_token");
                }
            }
            _ => {}
        }
    }

    fn list_credentials(&self, access: &Access) -> Result<Vec<String>, Error> {
        self.client.list_credentials(&access.carried)
    }

    fn credential_info(&self, access: &Access, id: &str) -> Result<CredentialInfo, Error> {
        self.client.credential_info(&access.carried, id)
    }

    fn credentials(&self, access: &Access) -> Result<Listed, Error> {
        Ok(self
            .client
            .list_credential_infos(&access.carried)?
            .into_iter()
            .map(|c| (c.id, c.info))
            .collect())
    }

    fn send_otp(&self, access: &Access, id: &str, description: &str) -> Result<(), Error> {
        self.client
            .send_otp_with_description(&access.carried, id, Some(description))
    }

    fn authorize(
        &self,
        access: &Access,
        request: &AuthorizeRequest,
    ) -> Result<Authorization, Error> {
        self.client.authorize(&access.carried, request)
    }

    fn offers(&self, method: &str) -> bool {
        self.client.offers(method).unwrap_or(false)
    }

    fn extend_transaction(
        &self,
        access: &Access,
        credential_id: &str,
        sad: &Secret,
    ) -> Result<Sad, Error> {
        self.client
            .extend_transaction(&access.carried, credential_id, &[], None, sad)
    }

    fn credential_authorization(
        &self,
        redirect_uri: &str,
        request: &AuthorizeRequest,
    ) -> Result<PendingAuthorization, Error> {
        let client = oauth2_client(&self.config).map_err(|_| {
            Error::Config(format!(
                "credential {} is authorized with OAuth 2.0 (authMode oauth2code): configure client_id",
                request.credential_id
            ))
        })?;
        self.client
            .oauth2_credential_authorization(&client, redirect_uri, request)
    }

    fn exchange_credential_code(
        &self,
        pending: &PendingAuthorization,
        redirect: &str,
    ) -> Result<Sad, Error> {
        let client = oauth2_client(&self.config)?;
        self.client
            .oauth2_exchange_credential_code(&client, pending, redirect)
    }

    fn authorize_check(&self, access: &Access, handle: &Secret) -> Result<Authorization, Error> {
        self.client.authorize_check(&access.carried, handle)
    }

    fn sign_hashes(
        &self,
        access: &Access,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>, Error> {
        self.client.sign_hash(&access.carried, request)
    }
}
