//! How a client signs in to a service ([`ServiceAuth`]) and what every method call then carries to show
//! who is calling ([`Access`]). The caller holds one `ServiceAuth`, calls [`CscClient::sign_in`] with it,
//! and passes the resulting `Access` to every method: no branching per sign-in method on its side.
//!
//! [`CscClient::sign_in`]: crate::CscClient::sign_in

use crate::oauth::{OAuth2Client, OAuth2Grant};
use crate::secret::Secret;
use crate::transport::Auth;
use std::time::Duration;

/// The header an API key travels in unless the service says otherwise.
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-key";

/// How this client signs in to the service. Secrets stay in [`Secret`]s: never in `Debug` output.
#[derive(Debug, Clone)]
pub enum ServiceAuth {
    /// No sign-in: requests carry no credential (services with `authType` `external` or `implicit`,
    /// test services, or mutual TLS alone).
    None,
    /// A static access token: `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// A static API key in its own header, e.g. [`DEFAULT_API_KEY_HEADER`].
    ApiKey { header: String, key: Secret },
    /// CSC `auth/login` with HTTP Basic.
    Password { account: String, password: Secret },
    /// CSC `auth/login` with a refresh token.
    RefreshToken(Secret),
    /// OAuth 2.0 at the service's token endpoint (a person's first sign-in, with a browser, is
    /// [`CscClient::oauth2_authorization`](crate::CscClient::oauth2_authorization); its refresh token
    /// then signs in here).
    OAuth2 {
        client: OAuth2Client,
        grant: OAuth2Grant,
    },
}

impl ServiceAuth {
    /// `ApiKey` in [`DEFAULT_API_KEY_HEADER`].
    pub fn api_key(key: Secret) -> Self {
        ServiceAuth::ApiKey {
            header: DEFAULT_API_KEY_HEADER.to_owned(),
            key,
        }
    }

    /// True when signing in again yields a fresh access, so that an expired one (401) is worth renewing;
    /// false for static credentials, where a 401 is final.
    pub fn renews(&self) -> bool {
        matches!(
            self,
            ServiceAuth::Password { .. }
                | ServiceAuth::RefreshToken(_)
                | ServiceAuth::OAuth2 { .. }
        )
    }
}

/// What a request carries to show who is calling: the outcome of signing in.
#[derive(Debug, Clone)]
pub enum Access {
    /// Nothing.
    Anonymous,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `<header>: <key>`.
    ApiKey { header: String, key: Secret },
}

impl From<Secret> for Access {
    fn from(token: Secret) -> Self {
        Access::Bearer(token)
    }
}

/// The outcome of [`CscClient::sign_in`](crate::CscClient::sign_in).
#[derive(Debug, Clone)]
pub struct SignIn {
    pub access: Access,
    /// How long `access` lasts, when the service said.
    pub expires_in: Option<Duration>,
    /// A refresh token issued with this sign-in. After a refresh it replaces the one used (the service
    /// rotated it, RFC 6749 §6, and may revoke the old one): store it. `None`: keep the one you have.
    pub refresh_token: Option<Secret>,
}

impl SignIn {
    pub(crate) fn fixed(access: Access) -> Self {
        SignIn {
            access,
            expires_in: None,
            refresh_token: None,
        }
    }
}

/// A borrowed [`Access`], or a bare access token (`&Secret`), as every method takes it.
#[derive(Clone, Copy)]
pub struct AccessRef<'a>(pub(crate) Auth<'a>);

impl<'a> From<&'a Access> for AccessRef<'a> {
    fn from(access: &'a Access) -> Self {
        AccessRef(match access {
            Access::Anonymous => Auth::None,
            Access::Bearer(token) => Auth::Bearer(token),
            Access::ApiKey { header, key } => Auth::Header {
                name: header,
                value: key,
            },
        })
    }
}

/// A bare access token is a bearer token.
impl<'a> From<&'a Secret> for AccessRef<'a> {
    fn from(token: &'a Secret) -> Self {
        AccessRef(Auth::Bearer(token))
    }
}

impl<'a> From<&'a SignIn> for AccessRef<'a> {
    fn from(sign_in: &'a SignIn) -> Self {
        (&sign_in.access).into()
    }
}
