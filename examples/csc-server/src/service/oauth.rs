//! The OAuth 2.0 authorization server's operations, HTTP-free: starting an authorization request
//! (`oauth2/authorize`), the user's sign-in and decision on the page, and the token endpoint's grants
//! (authorization code with PKCE S256, refresh token with rotation, client credentials, password), and
//! revocation (RFC 7009). The credential scope's code yields a SAD bound like any other (SCAL 2: to
//! the hashes the page showed). `api::oauth2` is the web side; the rules are `oauth2`'s.

use super::{Credential, Service};
use crate::algorithms::HashAlg;
use crate::audit::Event;
use crate::error::CscError;
use crate::lockouts::{self, Counter};
use crate::model::OtpKind;
use crate::oauth2::{self, Client, Code, CredentialGrant, Request, Scope, CODE_LIFETIME};
use crate::passwords;
use crate::sad;
use crate::sessions::PageLoginError;
use crate::tokens::{self, Kind, Lookup};
use rusqlite::{params, OptionalExtension};
use zeroize::Zeroizing;

/// An RFC 6749 §5.2 error of the token and revocation endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }

    fn invalid_client() -> OAuthError {
        OAuthError::new(401, "invalid_client", "Client authentication failed")
    }

    fn invalid_grant(description: &str) -> OAuthError {
        OAuthError::new(400, "invalid_grant", description)
    }

    pub fn invalid_request(description: &str) -> OAuthError {
        OAuthError::new(400, "invalid_request", description)
    }

    fn server(e: impl std::fmt::Display) -> OAuthError {
        log::error!("oauth2: {e}");
        OAuthError::new(500, "server_error", "The service failed")
    }
}

impl From<rusqlite::Error> for OAuthError {
    fn from(e: rusqlite::Error) -> Self {
        OAuthError::server(e)
    }
}

/// Why `oauth2/authorize` cannot go on (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or its redirect URI is unknown: the user is told, and nothing is redirected.
    NoRedirect(String),
    /// Sent back to the client: `redirect_uri?error=...&state=...`.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl AuthorizeError {
    fn redirect(r: &Request, error: &'static str, description: impl Into<String>) -> Self {
        AuthorizeError::Redirect {
            redirect_uri: r.redirect_uri.clone(),
            state: r.state.clone(),
            error,
            description: description.into(),
        }
    }
}

/// What the client asks at `oauth2/authorize`, as read from the query.
pub struct AuthorizeStart<'a> {
    pub response_type: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    /// The scope asked for, or why its parameters cannot be used.
    pub scope: Result<Scope, String>,
}

/// How a client proved who it is at the token or revocation endpoint.
pub struct ClientAuth {
    pub client_id: Option<String>,
    pub secret: Option<Zeroizing<String>>,
}

/// What the token endpoint is asked for.
pub enum Grant {
    AuthorizationCode {
        code: Zeroizing<String>,
        redirect_uri: Option<String>,
        code_verifier: Option<Zeroizing<String>>,
    },
    RefreshToken(Zeroizing<String>),
    ClientCredentials {
        scope: Option<String>,
    },
    Password {
        username: String,
        password: Zeroizing<String>,
        scope: Option<String>,
    },
}

impl Grant {
    fn name(&self) -> &'static str {
        match self {
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::RefreshToken(_) => "refresh_token",
            Grant::ClientCredentials { .. } => "client_credentials",
            Grant::Password { .. } => "password",
        }
    }
}

/// The token endpoint's answer (RFC 6749 §5.1).
pub struct Issued {
    pub access_token: Zeroizing<String>,
    /// "Bearer", or "SAD" for a credential token (CSC v2 §8.3.3).
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: Option<Zeroizing<String>>,
    pub scope: &'static str,
}

impl Service {
    /// The registered client `id`.
    pub fn oauth2_client(&self, id: &str) -> Result<Option<Client>, rusqlite::Error> {
        let conn = self.db.lock();
        conn.query_row(
            "SELECT id, name, secret_hash, account, grant_types, redirect_uri
             FROM oauth2_clients WHERE id = ?1",
            [id],
            |r| {
                Ok(Client {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    secret_hash: r.get(2)?,
                    account: r.get(3)?,
                    grant_types: r
                        .get::<_, String>(4)?
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                    redirect_uri: r.get(5)?,
                })
            },
        )
        .optional()
    }

    /// `oauth2/authorize`: checks the request and keeps it for the user's sign-in; returns its name.
    pub fn oauth2_begin(&self, a: AuthorizeStart<'_>) -> Result<(String, Request), AuthorizeError> {
        let client = match a.client_id {
            Some(id) => self
                .oauth2_client(id)
                .map_err(|e| AuthorizeError::NoRedirect(format!("The service failed ({e})")))?,
            None => None,
        }
        .ok_or_else(|| AuthorizeError::NoRedirect("The application is not known here.".into()))?;
        let redirect = match (a.redirect_uri, &client.redirect_uri) {
            (Some(p), Some(r)) if oauth2::redirect_matches(r, p) => p.to_owned(),
            _ => {
                return Err(AuthorizeError::NoRedirect(
                    "The application's return address is not registered for it.".into(),
                ))
            }
        };
        let mut request = Request {
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            redirect_uri: redirect,
            state: a.state.map(str::to_owned),
            code_challenge: a.code_challenge.unwrap_or_default().to_owned(),
            scope: Scope::Service,
            user: None,
            expires_at: self.now() + oauth2::REQUEST_LIFETIME,
        };
        if a.response_type != Some("code") {
            return Err(AuthorizeError::redirect(
                &request,
                "unsupported_response_type",
                "Only response_type=code is supported",
            ));
        }
        if !client.allows("authorization_code") {
            return Err(AuthorizeError::redirect(
                &request,
                "unauthorized_client",
                "The client may not use the authorization code grant",
            ));
        }
        if a.code_challenge_method != Some("S256") || request.code_challenge.len() != 43 {
            return Err(AuthorizeError::redirect(
                &request,
                "invalid_request",
                "PKCE is required: code_challenge with code_challenge_method=S256",
            ));
        }
        request.scope = a
            .scope
            .map_err(|d| AuthorizeError::redirect(&request, "invalid_request", d))?;
        let id = self.oauth2.add(request.clone(), self.now());
        Ok((id, request))
    }

    /// The request `id` as the page shows it, while it waits.
    pub fn oauth2_request(&self, id: &str) -> Option<Request> {
        self.oauth2.get(id, self.now())
    }

    /// The user signs in for request `id` (password and account code, like the approval page, with the
    /// same lockouts). A credential-scope request must then fit the user's credential; when it does not,
    /// the request ends with the error to send back. Returns the session token.
    pub fn oauth2_login(
        &self,
        id: &str,
        user: &str,
        password: &[u8],
        code: &str,
    ) -> Result<Result<Zeroizing<String>, AuthorizeError>, PageLoginError> {
        let Some(request) = self.oauth2.get(id, self.now()) else {
            return Err(PageLoginError::Rejected);
        };
        let session = self.page_login(user, password, code)?;
        if let Scope::Credential(grant) = &request.scope {
            if let Err(description) = self.credential_grant_fits(user, grant) {
                self.oauth2.take(id, self.now());
                return Ok(Err(AuthorizeError::redirect(
                    &request,
                    "invalid_request",
                    description,
                )));
            }
        }
        self.oauth2.bind(id, user);
        Ok(Ok(session))
    }

    /// The checks `credentials/authorize` makes, for a credential scope: the user's own OAuth 2.0
    /// credential, numSignatures within multisign, and under SCAL 2 one hash per signature.
    fn credential_grant_fits(
        &self,
        user: &str,
        g: &CredentialGrant,
    ) -> Result<&Credential, String> {
        let cred = self
            .credentials
            .iter()
            .find(|c| c.id == g.credential_id && c.user == user)
            .ok_or("Invalid parameter credentialID")?;
        if cred.otp != OtpKind::OAuth2 {
            return Err(
                "Invalid parameter credentialID: it is authorized with credentials/authorize"
                    .into(),
            );
        }
        if g.num_signatures < 1 || g.num_signatures > cred.multisign {
            return Err("Invalid parameter numSignatures".into());
        }
        let alg = match g.hash_algo.as_deref() {
            Some(oid) => Some(HashAlg::from_oid(oid).ok_or("Invalid parameter hashAlgorithmOID")?),
            None => None,
        };
        let fits = |h: &Vec<u8>| match alg {
            Some(a) => h.len() == a.len(),
            None => HashAlg::from_len(h.len()).is_some(),
        };
        if !g.hashes.iter().all(fits)
            || (cred.scal == 2 && g.hashes.len() != g.num_signatures as usize)
        {
            return Err("Invalid parameter hashes".into());
        }
        Ok(cred)
    }

    /// The user's answer to request `id`: a code for the client (allow) or its refusal. Returns where
    /// to send the browser. Only the user who signed in for the request may answer it.
    pub fn oauth2_decide(
        &self,
        user: &str,
        id: &str,
        allow: bool,
    ) -> Result<Result<(Request, Zeroizing<String>), AuthorizeError>, CscError> {
        let now = self.now();
        let Some(request) = self
            .oauth2
            .get(id, now)
            .filter(|r| r.user.as_deref() == Some(user))
        else {
            return Err(CscError::invalid_param("request"));
        };
        self.oauth2.take(id, now);
        let (credential, hashes) = match &request.scope {
            Scope::Credential(g) => (Some(g.credential_id.as_str()), g.hashes.as_slice()),
            Scope::Service => (None, &[][..]),
        };
        let detail = format!(
            "client {}; scope {}",
            request.client_id,
            match request.scope {
                Scope::Service => "service".to_owned(),
                Scope::Credential(ref g) =>
                    format!("credential, numSignatures={}", g.num_signatures),
            }
        );
        let ev = Event {
            event: if allow { "oauth2/allow" } else { "oauth2/deny" },
            user: Some(user),
            credential,
            hashes,
            outcome: "",
            detail: Some(&detail),
        };
        self.audited(ev, Ok(()))?;
        if !allow {
            return Ok(Err(AuthorizeError::redirect(
                &request,
                "access_denied",
                "The user refused the request",
            )));
        }
        let code = self.oauth2.issue_code(
            Code {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                user: user.to_owned(),
                scope: request.scope.clone(),
                expires_at: now + CODE_LIFETIME,
            },
            now,
        );
        Ok(Ok((request, code)))
    }

    /// The client the token or revocation endpoint talks to: a confidential client with its secret, or
    /// a public client by its id alone (then only for the grants a browser sign-in gives).
    fn authenticate_client(&self, auth: &ClientAuth) -> Result<(Client, bool), OAuthError> {
        let id = auth
            .client_id
            .as_deref()
            .ok_or_else(OAuthError::invalid_client)?;
        let client = self
            .oauth2_client(id)?
            .ok_or_else(OAuthError::invalid_client)?;
        match (&client.secret_hash, &auth.secret) {
            (Some(_), Some(secret)) if client.secret_matches(secret) => Ok((client, true)),
            (None, None) => Ok((client, false)),
            _ => Err(OAuthError::invalid_client()),
        }
    }

    /// `oauth2/token`.
    pub fn oauth2_token(&self, auth: &ClientAuth, grant: Grant) -> Result<Issued, OAuthError> {
        let name = grant.name();
        let client_id = auth.client_id.clone();
        let (user, result) = match self.authenticate_client(auth) {
            Ok((client, confidential)) => self.oauth2_grant(&client, confidential, grant),
            Err(e) => (None, Err(e)),
        };
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{} {}", e.status, e.error),
        };
        let detail = format!(
            "{name}; client {}",
            client_id
                .as_deref()
                .unwrap_or("-")
                .chars()
                .take(64)
                .collect::<String>()
        );
        let ev = Event {
            event: "oauth2/token",
            user: user.as_deref(),
            credential: None,
            hashes: &[],
            outcome: &outcome,
            detail: Some(&detail),
        };
        let now = self.now();
        self.db
            .write(|conn| crate::audit::append(conn, now, &ev))
            .map_err(|e| OAuthError::server(CscError::from(e).description))?;
        result
    }

    fn oauth2_grant(
        &self,
        client: &Client,
        confidential: bool,
        grant: Grant,
    ) -> (Option<String>, Result<Issued, OAuthError>) {
        if !client.allows(grant.name()) {
            return (
                None,
                Err(OAuthError::new(
                    400,
                    "unauthorized_client",
                    "The client may not use this grant",
                )),
            );
        }
        let service_scope = |scope: &Option<String>| match scope.as_deref() {
            None | Some("service") => Ok(()),
            Some(_) => Err(OAuthError::new(
                400,
                "invalid_scope",
                "Only scope service is granted here",
            )),
        };
        match grant {
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => self.grant_code(
                client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_ref().map(|v| v.as_str()),
            ),
            Grant::RefreshToken(token) => self.grant_refresh(client, &token),
            Grant::ClientCredentials { scope } => {
                let result = service_scope(&scope).and_then(|()| {
                    let account =
                        client
                            .account
                            .clone()
                            .filter(|_| confidential)
                            .ok_or_else(|| {
                                OAuthError::new(
                                    400,
                                    "unauthorized_client",
                                    "The client acts for no account",
                                )
                            })?;
                    Ok((
                        account.clone(),
                        self.issue_service_tokens(client, &account, false)?,
                    ))
                });
                split(result)
            }
            Grant::Password {
                username,
                password,
                scope,
            } => {
                let result = service_scope(&scope).and_then(|()| {
                    self.oauth2_password(&username, password.as_bytes())?;
                    Ok((
                        username.clone(),
                        self.issue_service_tokens(client, &username, true)?,
                    ))
                });
                split(result)
            }
        }
    }

    /// The resource owner's password, checked like `auth/login`'s (same lockout).
    fn oauth2_password(&self, user: &str, password: &[u8]) -> Result<(), OAuthError> {
        let refused = || OAuthError::invalid_grant("Invalid username or password");
        let Some(_guard) = self.user_lock(user) else {
            passwords::verify_dummy(password);
            return Err(refused());
        };
        let hash = self.password_hash(user).map_err(|e| {
            if e == CscError::login_locked() {
                OAuthError::invalid_grant("The account is locked after too many failed logins")
            } else {
                OAuthError::server(e.description)
            }
        })?;
        if !passwords::verify(password, &hash) {
            self.count_password_failure(user)
                .map_err(|e| OAuthError::server(e.description))?;
            return Err(refused());
        }
        lockouts::success(&self.db.lock(), Counter::Password, user)?;
        Ok(())
    }

    /// An access token for `user` through `client`, with a refresh token when `refresh`.
    fn issue_service_tokens(
        &self,
        client: &Client,
        user: &str,
        refresh: bool,
    ) -> Result<Issued, OAuthError> {
        let now = self.now();
        let conn = self.db.lock();
        tokens::purge(&conn, now)?;
        let refresh_token = if refresh && client.allows("refresh_token") {
            Some(tokens::issue_for(
                &conn,
                Some(&client.id),
                user,
                Kind::Refresh,
                now,
                None,
                None,
            )?)
        } else {
            None
        };
        let lifetime = self.settings.access_token_lifetime;
        let access_token = tokens::issue_for(
            &conn,
            Some(&client.id),
            user,
            Kind::Access,
            now,
            Some(lifetime),
            refresh_token.as_deref().map(|s| s.as_str()),
        )?;
        Ok(Issued {
            access_token,
            token_type: "Bearer",
            expires_in: lifetime,
            refresh_token,
            scope: "service",
        })
    }

    fn grant_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> (Option<String>, Result<Issued, OAuthError>) {
        let now = self.now();
        let Some(c) = self.oauth2.redeem_code(code, now) else {
            return (
                None,
                Err(OAuthError::invalid_grant(
                    "Invalid or expired authorization code",
                )),
            );
        };
        let user = Some(c.user.clone());
        if c.client_id != client.id || redirect_uri != Some(c.redirect_uri.as_str()) {
            return (
                user,
                Err(OAuthError::invalid_grant(
                    "The code was issued to another client or redirect URI",
                )),
            );
        }
        if !verifier.is_some_and(|v| oauth2::pkce_s256_matches(v, &c.code_challenge)) {
            return (
                user,
                Err(OAuthError::invalid_grant(
                    "The PKCE code_verifier does not match",
                )),
            );
        }
        let result = match &c.scope {
            Scope::Service => self.issue_service_tokens(client, &c.user, true),
            Scope::Credential(g) => self.issue_credential_token(&c.user, g),
        };
        (user, result)
    }

    /// The credential token of a credential-scope code: a SAD for exactly what the page showed.
    fn issue_credential_token(
        &self,
        user: &str,
        g: &CredentialGrant,
    ) -> Result<Issued, OAuthError> {
        let cred = self
            .credential_grant_fits(user, g)
            .map_err(|d| OAuthError::invalid_grant(&d))?;
        let grant = sad::Grant {
            user,
            credential: &cred.id,
            num_signatures: g.num_signatures,
            bound_hashes: (cred.scal == 2).then_some(g.hashes.as_slice()),
            hash_algo: g.hash_algo.as_deref(),
            lifetime: self.sad_lifetime(&cred.id),
        };
        let issued = sad::issue(&mut self.db.lock(), &grant, self.now())?;
        Ok(Issued {
            access_token: issued.sad,
            token_type: "SAD",
            expires_in: issued.expires_in,
            refresh_token: None,
            scope: "credential",
        })
    }

    /// A new access token and a new refresh token; the one presented ends (rotation, RFC 6749 §6 and
    /// OAuth 2.0 Security BCP §4.14.2).
    fn grant_refresh(
        &self,
        client: &Client,
        token: &str,
    ) -> (Option<String>, Result<Issued, OAuthError>) {
        let now = self.now();
        let found = tokens::lookup(&self.db.lock(), token, Kind::Refresh, now);
        let user = match found {
            Ok(Lookup::Valid {
                user,
                client: Some(c),
            }) if c == client.id => user,
            Ok(_) => {
                return (
                    None,
                    Err(OAuthError::invalid_grant(
                        "Invalid or revoked refresh token",
                    )),
                )
            }
            Err(e) => return (None, Err(e.into())),
        };
        if let Err(e) = tokens::retire(&self.db.lock(), token) {
            return (Some(user), Err(e.into()));
        }
        let issued = self.issue_service_tokens(client, &user, true);
        (Some(user), issued)
    }

    /// `oauth2/revoke` (RFC 7009): the client's own token, with what it gave; an unknown token is no
    /// error (§2.2).
    pub fn oauth2_revoke(&self, auth: &ClientAuth, token: &str) -> Result<(), OAuthError> {
        let (client, _) = self.authenticate_client(auth)?;
        let revoked = tokens::revoke_of_client(&self.db.lock(), &client.id, token)?;
        let detail = format!("client {}", client.id);
        let ev = Event {
            event: "oauth2/revoke",
            user: None,
            credential: None,
            hashes: &[],
            outcome: if revoked { "ok" } else { "unknown token" },
            detail: Some(&detail),
        };
        let now = self.now();
        self.db
            .write(|conn| crate::audit::append(conn, now, &ev))
            .map_err(|e| OAuthError::server(CscError::from(e).description))?;
        Ok(())
    }
}

fn split(r: Result<(String, Issued), OAuthError>) -> (Option<String>, Result<Issued, OAuthError>) {
    match r {
        Ok((user, issued)) => (Some(user), Ok(issued)),
        Err(e) => (None, Err(e)),
    }
}

/// Registers a client (`init`): its secret's hash, never the secret.
pub fn register_client(conn: &rusqlite::Connection, client: &Client) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO oauth2_clients (id, name, secret_hash, account, grant_types, redirect_uri)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            client.id,
            client.name,
            client.secret_hash,
            client.account,
            client.grant_types.join(" "),
            client.redirect_uri
        ],
    )?;
    Ok(())
}
