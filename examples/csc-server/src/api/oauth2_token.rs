//! The OAuth 2.0 token and revocation endpoints on the service's HTTPS listener (RFC 6749 §3.2, RFC
//! 7009; CSC v1.0.4 / v2.0 §8): `POST /oauth2/token` (grants `authorization_code` with PKCE,
//! `refresh_token`, `client_credentials`, `password`) and `POST /oauth2/revoke`, the client
//! authenticated by HTTP Basic or by the form, errors as RFC 6749 §5.2 JSON. The grants themselves are
//! the service's (`service::oauth`).

use super::web::{guarded, internal_error};
use crate::service::oauth::{ClientAuth, Grant, OAuthError};
use crate::service::Service;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use zeroize::Zeroizing;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/oauth2/revoke", post(revoke))
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(e: &OAuthError, basic: bool) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (
        status,
        Json(serde_json::json!({"error": e.error, "error_description": e.description})),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED && basic {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"csc\""),
        );
    }
    resp
}

/// HTTP Basic client authentication (RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic).
fn basic_client(headers: &HeaderMap) -> Result<Option<ClientAuth>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_request("Malformed Authorization header");
    let text = value.to_str().map_err(|_| bad())?;
    let (scheme, rest) = text.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| bad())?,
    );
    let colon = decoded.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let part = |b: &[u8]| -> Result<Zeroizing<String>, OAuthError> {
        let decoded = percent_encoding::percent_decode(b)
            .decode_utf8()
            .map_err(|_| bad())?;
        Ok(Zeroizing::new(decoded.replace('+', " ")))
    };
    Ok(Some(ClientAuth {
        client_id: Some(part(&decoded[..colon])?.to_string()),
        secret: Some(part(&decoded[colon + 1..])?),
    }))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<Zeroizing<String>>,
    redirect_uri: Option<String>,
    code_verifier: Option<Zeroizing<String>>,
    refresh_token: Option<Zeroizing<String>>,
    username: Option<String>,
    password: Option<Zeroizing<String>>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Zeroizing<String>>,
    token: Option<Zeroizing<String>>,
}

/// The client's authentication: HTTP Basic or the body, never both (RFC 6749 §2.3).
fn client_auth(headers: &HeaderMap, f: &mut TokenForm) -> Result<(ClientAuth, bool), OAuthError> {
    match basic_client(headers)? {
        Some(_) if f.client_secret.is_some() => Err(OAuthError::invalid_request(
            "Use one client authentication method",
        )),
        Some(auth) => Ok((auth, true)),
        None => Ok((
            ClientAuth {
                client_id: f.client_id.take(),
                secret: f.client_secret.take(),
            },
            false,
        )),
    }
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, OAuthError> {
    v.ok_or_else(|| OAuthError::invalid_request(&format!("Missing parameter {name}")))
}

fn grant(f: TokenForm) -> Result<Grant, OAuthError> {
    match f.grant_type.as_deref() {
        Some("authorization_code") => Ok(Grant::AuthorizationCode {
            code: required(f.code, "code")?,
            redirect_uri: f.redirect_uri,
            code_verifier: f.code_verifier,
        }),
        Some("refresh_token") => Ok(Grant::RefreshToken(required(
            f.refresh_token,
            "refresh_token",
        )?)),
        Some("client_credentials") => Ok(Grant::ClientCredentials { scope: f.scope }),
        Some("password") => Ok(Grant::Password {
            username: required(f.username, "username")?,
            password: required(f.password, "password")?,
            scope: f.scope,
        }),
        Some(_) => Err(OAuthError::new(
            400,
            "unsupported_grant_type",
            "Unsupported grant_type",
        )),
        None => Err(OAuthError::invalid_request("Missing parameter grant_type")),
    }
}

/// The form of the token or revocation endpoint, with the client's authentication taken out of it.
fn authenticated_form(
    headers: &HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<(TokenForm, ClientAuth, bool), Box<Response>> {
    let Ok(Form(mut form)) = form else {
        return Err(Box::new(oauth_error(
            &OAuthError::invalid_request("The body must be a form"),
            false,
        )));
    };
    let (auth, basic) =
        client_auth(headers, &mut form).map_err(|e| Box::new(oauth_error(&e, false)))?;
    Ok((form, auth, basic))
}

async fn token(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let (form, auth, basic) = match authenticated_form(&headers, form) {
        Ok(f) => f,
        Err(resp) => return *resp,
    };
    let grant = match grant(form) {
        Ok(g) => g,
        Err(e) => return oauth_error(&e, basic),
    };
    let issued = guarded(move || service.oauth2_token(&auth, grant));
    match issued {
        None => internal_error(),
        Some(Err(e)) => {
            log::info!("POST /oauth2/token -> {} {}", e.status, e.error);
            oauth_error(&e, basic)
        }
        Some(Ok(t)) => {
            log::info!("POST /oauth2/token -> ok ({})", t.scope);
            let mut body = serde_json::json!({
                "access_token": t.access_token.as_str(),
                "token_type": t.token_type,
                "expires_in": t.expires_in,
                "scope": t.scope,
            });
            if let Some(r) = &t.refresh_token {
                body["refresh_token"] = serde_json::json!(r.as_str());
            }
            let mut resp = (StatusCode::OK, Json(body)).into_response();
            let h = resp.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            resp
        }
    }
}

async fn revoke(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let (form, auth, basic) = match authenticated_form(&headers, form) {
        Ok(f) => f,
        Err(resp) => return *resp,
    };
    let token = match required(form.token, "token") {
        Ok(t) => t,
        Err(e) => return oauth_error(&e, basic),
    };
    match guarded(move || service.oauth2_revoke(&auth, &token)) {
        None => internal_error(),
        Some(Err(e)) => oauth_error(&e, basic),
        Some(Ok(())) => {
            log::info!("POST /oauth2/revoke -> ok");
            StatusCode::OK.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_client_authentication_is_form_decoded() {
        let mut h = HeaderMap::new();
        let value = base64::engine::general_purpose::STANDARD.encode("my%20client:s%3Acret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {value}")).unwrap(),
        );
        let auth = basic_client(&h).unwrap().unwrap();
        assert_eq!(auth.client_id.as_deref(), Some("my client"));
        assert_eq!(auth.secret.as_deref().map(|s| s.as_str()), Some("s:cret"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_client(&h).is_err());
        assert!(basic_client(&HeaderMap::new()).unwrap().is_none());
    }
}
