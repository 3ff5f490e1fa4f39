//! OAuth 2.0 with the service's authorization server, through the `oauth2` crate over this crate's
//! transport ([`http`]): the grants that sign the client in (client credentials RFC 6749 §4.4, password
//! §4.3, refresh token §6 with rotation, authorization code §4.1 with PKCE S256, RFC 7636), revocation
//! (RFC 7009), and the credential-scope authorization that yields a SAD ([`credential`]).
//!
//! Endpoints not given are found from `info.oauth2` (CSC v1.0.4 §8.3, v2.0 §8.3: `{oauth2}/oauth2/token`,
//! `/oauth2/authorize`, `/oauth2/revoke`). Client secrets, codes, PKCE verifiers and tokens stay in
//! [`Secret`]s and are scrubbed from every error.

mod credential;
mod http;
pub mod loopback;

use crate::access::{Access, SignIn};
use crate::client::CscClient;
use crate::error::{Error, Result};
use crate::failure;
use crate::retry::{self, Effect};
use crate::secret::Secret;
use crate::transport::Transport;
use http::Exchange;
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    ResourceOwnerPassword, ResourceOwnerUsername, RevocationUrl, Scope, StandardRevocableToken,
    TokenResponse, TokenUrl,
};
use reqwest::Url;
use std::fmt;

/// The scope of a service sign-in (CSC v1.0.4 §8.3.2, v2.0 §8.3.2).
const SERVICE_SCOPE: &str = "service";
const TOKEN: &str = "oauth2/token";
const AUTHORIZE: &str = "oauth2/authorize";
const REVOKE: &str = "oauth2/revoke";

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// HTTP Basic with the client id and secret, which every server must accept.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Body,
}

/// A client registered at the service's OAuth 2.0 server.
#[derive(Debug, Clone)]
pub struct OAuth2Client {
    pub client_id: String,
    /// `None`: a public client (authorization code with PKCE only).
    pub client_secret: Option<Secret>,
    pub client_auth: ClientAuthMethod,
    /// `None`: `{info.oauth2}/oauth2/token`.
    pub token_url: Option<String>,
    /// `None`: `{info.oauth2}/oauth2/authorize`.
    pub authorize_url: Option<String>,
    /// `None`: `{info.oauth2}/oauth2/revoke`.
    pub revoke_url: Option<String>,
    /// The scope of a service sign-in. `None`: "service".
    pub scope: Option<String>,
    /// The RFC 8707 resource indicator sent with every token request, for servers that issue tokens per
    /// resource (CryptoPro DSS: `urn:cryptopro:dss:signserver:<name>`). `None`: not sent.
    pub resource: Option<String>,
}

impl OAuth2Client {
    /// A public client whose endpoints are found from `info.oauth2`.
    pub fn new(client_id: impl Into<String>) -> Self {
        OAuth2Client {
            client_id: client_id.into(),
            client_secret: None,
            client_auth: ClientAuthMethod::Basic,
            token_url: None,
            authorize_url: None,
            revoke_url: None,
            scope: None,
            resource: None,
        }
    }

    /// A confidential client.
    pub fn confidential(client_id: impl Into<String>, client_secret: Secret) -> Self {
        OAuth2Client {
            client_secret: Some(client_secret),
            ..OAuth2Client::new(client_id)
        }
    }

    fn scope(&self) -> Scope {
        Scope::new(self.scope.as_deref().unwrap_or(SERVICE_SCOPE).to_owned())
    }
}

/// How a client signs in at the token endpoint without a person at a browser.
#[derive(Debug, Clone)]
pub enum OAuth2Grant {
    /// Client credentials (RFC 6749 §4.4): the client acts for itself (seals).
    ClientCredentials,
    /// Resource-owner password credentials (RFC 6749 §4.3).
    Password { username: String, password: Secret },
    /// A refresh token (RFC 6749 §6), from an authorization-code enrolment; a rotated one comes back in
    /// [`SignIn::refresh_token`].
    RefreshToken(Secret),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Scope `service`: signs the client in.
    Service,
    /// Scope `credential`: authorizes signatures with one credential.
    Credential,
}

/// An authorization request on its way through the user's browser: open [`url`](Self::url), receive
/// the redirect on `redirect_uri`, and hand it to the matching exchange method, which checks `state`
/// and sends the code with the PKCE verifier.
pub struct PendingAuthorization {
    url: String,
    redirect_uri: String,
    state: Secret,
    verifier: Secret,
    purpose: Purpose,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("redirect_uri", &self.redirect_uri)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl PendingAuthorization {
    /// The page to open in the user's browser.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The code in the redirect (its whole URL, its path and query, or the query alone), once `state`
    /// is checked (RFC 6749 §10.12); an `error` redirect (§4.1.2.1, e.g. the user refused) becomes the
    /// error it names.
    fn code_from_redirect(&self, redirect: &str) -> Result<Secret> {
        let query = redirect.split_once('?').map_or(redirect, |(_, q)| q);
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        let (mut code, mut state, mut error, mut description) = (None, None, None, None);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let v = Secret::new(v.into_owned());
            match &*k {
                "code" => code = Some(v),
                "state" => state = Some(v),
                "error" => error = Some(v),
                "error_description" => description = Some(v),
                _ => {}
            }
        }
        if state.as_ref() != Some(&self.state) {
            return Err(failure::protocol(
                AUTHORIZE,
                "the redirect's state does not match the request",
            ));
        }
        if let Some(error) = error {
            let secrets = code.iter().map(Secret::expose).collect::<Vec<_>>();
            return Err(Error::Csc {
                method: AUTHORIZE.to_owned(),
                // The answer came as a redirect, not as a status of its own.
                status: 302,
                code: crate::CscErrorCode::parse(error.expose().trim()),
                description: failure::scrub(
                    description.as_ref().map_or("", |d| d.expose().trim()),
                    &secrets,
                ),
            });
        }
        code.filter(|c| !c.is_empty())
            .ok_or_else(|| failure::protocol(AUTHORIZE, "the redirect has no code"))
    }
}

type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What one attempt at the token endpoint gives.
type TokenAnswer = std::result::Result<
    BasicTokenResponse,
    oauth2::RequestTokenError<http::HttpFailure, oauth2::basic::BasicErrorResponse>,
>;

impl CscClient {
    /// An OAuth 2.0 endpoint: the one configured, else `{info.oauth2}/{path}`; checked like the
    /// service's URL (https, or http to loopback when allowed).
    fn oauth2_url(&self, configured: Option<&str>, path: &str) -> Result<Url> {
        let text = match configured {
            Some(url) => url.to_owned(),
            None => {
                let base = self.service_info()?.oauth2.ok_or_else(|| {
                    Error::Config(format!(
                        "the service's info names no OAuth 2.0 server (oauth2): configure the URL of {path}"
                    ))
                })?;
                format!("{}/{path}", base.trim_end_matches('/'))
            }
        };
        self.transport().check_url(&text)
    }

    /// The token endpoint of `client`, configured or found from `info.oauth2`.
    pub(crate) fn token_endpoint(&self, client: &OAuth2Client) -> Result<TokenEndpoint<'_>> {
        Ok(TokenEndpoint {
            transport: self.transport(),
            url: self.oauth2_url(client.token_url.as_deref(), TOKEN)?,
        })
    }

    fn token_client(&self, client: &OAuth2Client) -> Result<TokenClient> {
        Ok(self.token_endpoint(client)?.client(client))
    }

    /// Signs in at the token endpoint with a grant that needs no browser.
    pub(crate) fn oauth2_sign_in(
        &self,
        client: &OAuth2Client,
        grant: &OAuth2Grant,
    ) -> Result<SignIn> {
        self.token_endpoint(client)?.sign_in(client, grant)
    }

    /// Starts a person's sign-in (authorization code, RFC 6749 §4.1, with PKCE S256, RFC 7636): the page
    /// to open and what the exchange needs. `redirect_uri` is where the browser is sent with the code,
    /// e.g. a loopback listener `http://127.0.0.1:PORT/callback` (RFC 8252 §7.3).
    pub fn oauth2_authorization(
        &self,
        client: &OAuth2Client,
        redirect_uri: &str,
    ) -> Result<PendingAuthorization> {
        self.authorization(
            client,
            redirect_uri,
            Purpose::Service,
            &[client.scope()],
            &[],
        )
    }

    /// Ends a person's sign-in: checks the redirect the browser brought back and exchanges its code
    /// (single use: never sent twice) for tokens, a refresh token among them when the server issues one.
    pub fn oauth2_exchange_code(
        &self,
        client: &OAuth2Client,
        pending: &PendingAuthorization,
        redirect: &str,
    ) -> Result<SignIn> {
        Ok(sign_in(&self.exchange_code(
            client,
            pending,
            Purpose::Service,
            redirect,
        )?))
    }

    /// Revokes an access or refresh token at `{oauth2}/oauth2/revoke` (RFC 7009). `hint` is
    /// "access_token" or "refresh_token".
    pub fn oauth2_revoke(&self, client: &OAuth2Client, token: &Secret, hint: &str) -> Result<()> {
        let revocable = match hint {
            "access_token" => {
                StandardRevocableToken::AccessToken(oauth2::AccessToken::new(token.expose().into()))
            }
            "refresh_token" => {
                StandardRevocableToken::RefreshToken(RefreshToken::new(token.expose().into()))
            }
            other => return Err(Error::Config(format!("unknown token type hint {other:?}"))),
        };
        let url = self.oauth2_url(client.revoke_url.as_deref(), REVOKE)?;
        let c = self
            .token_client(client)?
            .set_revocation_url(RevocationUrl::from_url(url));
        let mut secrets = vec![token.expose()];
        secrets.extend(client.client_secret.as_ref().map(Secret::expose));
        let transport = self.transport();
        retry::run(
            transport.retry_policy(),
            Effect::Read,
            transport.request_timeout(),
            |budget| {
                let exchange = Exchange::new(transport, REVOKE, budget, &secrets);
                c.revoke_token(revocable.clone())
                    .map_err(|e| Error::Config(format!("{REVOKE}: {e}")))?
                    .request(&exchange)
                    .map_err(|e| exchange.failure(e))
            },
        )
    }

    /// The authorization page for `purpose`, with PKCE S256 and a random `state`; `extra` are further
    /// query parameters (the credential scope's, [`credential`]).
    fn authorization(
        &self,
        client: &OAuth2Client,
        redirect_uri: &str,
        purpose: Purpose,
        scopes: &[Scope],
        extra: &[(&str, String)],
    ) -> Result<PendingAuthorization> {
        let url = self.oauth2_url(client.authorize_url.as_deref(), AUTHORIZE)?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|_| Error::Config("the redirect URI is not a valid URL".into()))?;
        let c = BasicClient::new(ClientId::new(client.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(url))
            .set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = c
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().cloned())
            .set_pkce_challenge(challenge);
        for (name, value) in extra {
            request = request.add_extra_param(*name, value.clone());
        }
        let (url, state) = request.url();
        Ok(PendingAuthorization {
            url: url.to_string(),
            redirect_uri: redirect_uri.to_owned(),
            state: Secret::new(state.secret().as_str()),
            verifier: Secret::new(verifier.secret().as_str()),
            purpose,
        })
    }

    fn exchange_code(
        &self,
        client: &OAuth2Client,
        pending: &PendingAuthorization,
        purpose: Purpose,
        redirect: &str,
    ) -> Result<BasicTokenResponse> {
        if pending.purpose != purpose {
            return Err(Error::Config(format!(
                "this authorization was started for the {:?} scope",
                pending.purpose
            )));
        }
        let code = pending.code_from_redirect(redirect)?;
        let redirect_uri = RedirectUrl::new(pending.redirect_uri.clone())
            .map_err(|_| Error::Config("the redirect URI is not a valid URL".into()))?;
        let secrets = [code.expose(), pending.verifier.expose()];
        self.token_endpoint(client)?
            .request(client, Effect::Write, &secrets, |c, http| {
                c.exchange_code(AuthorizationCode::new(code.expose().to_owned()))
                    .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.expose().to_owned()))
                    .set_redirect_uri(std::borrow::Cow::Borrowed(&redirect_uri))
                    .request(http)
            })
    }
}

/// A token endpoint reached through a transport: CSC's (from `info.oauth2`) or another service's
/// identity server (cryptopro/).
pub(crate) struct TokenEndpoint<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) url: Url,
}

impl TokenEndpoint<'_> {
    fn client(&self, client: &OAuth2Client) -> TokenClient {
        let mut c = BasicClient::new(ClientId::new(client.client_id.clone()))
            .set_auth_type(match client.client_auth {
                ClientAuthMethod::Basic => AuthType::BasicAuth,
                ClientAuthMethod::Body => AuthType::RequestBody,
            })
            .set_token_uri(TokenUrl::from_url(self.url.clone()));
        if let Some(secret) = &client.client_secret {
            c = c.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        c
    }

    /// One token request, repeated per the retry policy when `effect` allows.
    pub(crate) fn request(
        &self,
        client: &OAuth2Client,
        effect: Effect,
        secrets: &[&str],
        send: impl Fn(&TokenClient, &Exchange<'_>) -> TokenAnswer,
    ) -> Result<BasicTokenResponse> {
        let token_client = self.client(client);
        let mut all: Vec<&str> = secrets.to_vec();
        all.extend(client.client_secret.as_ref().map(Secret::expose));
        let transport = self.transport;
        retry::run(
            transport.retry_policy(),
            effect,
            transport.request_timeout(),
            |budget| {
                let exchange = Exchange::new(transport, TOKEN, budget, &all);
                send(&token_client, &exchange).map_err(|e| exchange.failure(e))
            },
        )
    }

    /// Signs in with a grant that needs no browser.
    pub(crate) fn sign_in(&self, client: &OAuth2Client, grant: &OAuth2Grant) -> Result<SignIn> {
        let resource = client.resource.as_deref();
        let response = match grant {
            // Another token for the same client changes nothing: safe to ask again.
            OAuth2Grant::ClientCredentials => {
                self.request(client, Effect::Read, &[], |c, http| {
                    let mut r = c.exchange_client_credentials().add_scope(client.scope());
                    if let Some(res) = resource {
                        r = r.add_extra_param("resource", res);
                    }
                    r.request(http)
                })?
            }
            OAuth2Grant::Password { username, password } => {
                let user = ResourceOwnerUsername::new(username.clone());
                let pass = ResourceOwnerPassword::new(password.expose().to_owned());
                self.request(client, Effect::Read, &[password.expose()], |c, http| {
                    let mut r = c.exchange_password(&user, &pass).add_scope(client.scope());
                    if let Some(res) = resource {
                        r = r.add_extra_param("resource", res);
                    }
                    r.request(http)
                })?
            }
            // A rotating server revokes the old refresh token when it answers: never sent twice
            // unless it surely never arrived.
            OAuth2Grant::RefreshToken(token) => {
                let refresh = RefreshToken::new(token.expose().to_owned());
                self.request(client, Effect::Write, &[token.expose()], |c, http| {
                    let mut r = c.exchange_refresh_token(&refresh);
                    if let Some(res) = resource {
                        r = r.add_extra_param("resource", res);
                    }
                    r.request(http)
                })?
            }
        };
        Ok(sign_in(&response))
    }
}

fn sign_in(response: &BasicTokenResponse) -> SignIn {
    SignIn {
        access: Access::Bearer(Secret::new(response.access_token().secret().as_str())),
        expires_in: response.expires_in(),
        refresh_token: response
            .refresh_token()
            .map(|t| Secret::new(t.secret().as_str()))
            .filter(|t| !t.is_empty()),
    }
}
