//! The OAuth 2.0 authorization server on the service's HTTPS listener (CSC v1.0.4 / v2.0 §8):
//! `GET /oauth2/authorize` (the sign-in page), `POST /oauth2/authorize/login`,
//! `GET /oauth2/authorize/consent`, `POST /oauth2/authorize/decide` (answered by a 303 to the client's
//! redirect URI with `code` or `error`, and `state`); `POST /oauth2/token` and `POST /oauth2/revoke` are
//! oauth2_token.rs's.
//!
//! Requests are read with axum's query and form extractors; the credential scope's parameters are
//! those of CSC v1 (`hash`), v2 (`hashes`, `hashAlgorithmOID`) or RFC 9396 `authorization_details`.
//! The pages are protected like the approval page (`web`); the sign-in steps are those of every
//! sign-in form (`sign_in`).

use super::oauth2_html;
use super::oauth2_token;
use super::params::decode_base64;
use super::sign_in;
use super::web::{
    cookie, cross_site, guarded, internal_error, page, page_with_policy, see_other, SESSION_COOKIE,
};
use crate::oauth2::{CredentialGrant, Request, Scope};
use crate::service::oauth::{AuthorizeError, AuthorizeStart};
use crate::service::Service;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;
use zeroize::Zeroizing;

const FORM_COOKIE: &str = "__Host-csc-oauth";

pub fn routes(router: Router<Arc<Service>>) -> Router<Arc<Service>> {
    router
        .route("/oauth2/authorize", get(authorize))
        .route("/oauth2/authorize/login", post(login))
        .route("/oauth2/authorize/consent", get(consent))
        .route("/oauth2/authorize/decide", post(decide))
        .merge(oauth2_token::routes())
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, super::html::message(title, text), &[])
}

/// The client's redirect URI with `pairs` (and `state`) added to its query (RFC 6749 §4.1.2).
fn back_to_client(redirect_uri: &str, state: Option<&str>, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return internal_error();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    see_other(url.as_str(), &[])
}

fn refused(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::NoRedirect(text) => {
            log::info!("GET /oauth2/authorize -> refused without redirect");
            message(StatusCode::BAD_REQUEST, "Request refused", &text)
        }
        AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            log::info!("oauth2/authorize -> {error}");
            back_to_client(
                &redirect_uri,
                state.as_deref(),
                &[("error", error), ("error_description", &description)],
            )
        }
    }
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "numSignatures")]
    num_signatures: Option<String>,
    /// v1: comma-separated base64url.
    hash: Option<String>,
    /// v2: comma-separated base64url.
    hashes: Option<String>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    description: Option<String>,
    authorization_details: Option<String>,
}

/// RFC 9396 authorization details of CSC v2 type `credential`.
#[derive(Deserialize)]
struct Details {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "documentDigests", default)]
    document_digests: Vec<DocumentDigest>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
}

#[derive(Deserialize)]
struct DocumentDigest {
    hash: String,
}

fn hash_list(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let list: Option<Vec<_>> = text
        .split(',')
        .filter(|h| !h.trim().is_empty())
        .map(|h| decode_base64(h.trim()))
        .collect();
    match list {
        Some(l) if l.len() <= super::params::MAX_HASHES => Ok(l),
        _ => Err("Invalid parameter hashes".into()),
    }
}

/// The scope the query asks for, with the credential scope's parameters.
fn scope(q: &AuthorizeQuery) -> Result<Scope, String> {
    match q.scope.as_deref() {
        None | Some("service") => return Ok(Scope::Service),
        Some("credential") => {}
        Some(_) => return Err("Unknown scope".into()),
    }
    let details: Option<Details> = match &q.authorization_details {
        None => None,
        Some(json) => serde_json::from_str::<Vec<Details>>(json)
            .ok()
            .and_then(|d| d.into_iter().find(|d| d.kind == "credential"))
            .map(Some)
            .ok_or("Invalid parameter authorization_details")?,
    };
    let credential_id = q
        .credential_id
        .clone()
        .or_else(|| details.as_ref().and_then(|d| d.credential_id.clone()))
        .ok_or("Missing parameter credentialID")?;
    let hashes = match (&details, q.hashes.as_deref().or(q.hash.as_deref())) {
        (Some(d), _) if !d.document_digests.is_empty() => d
            .document_digests
            .iter()
            .map(|h| decode_base64(&h.hash))
            .collect::<Option<Vec<_>>>()
            .ok_or("Invalid parameter authorization_details")?,
        (_, Some(list)) => hash_list(list)?,
        _ => Vec::new(),
    };
    let num_signatures = match q.num_signatures.as_deref() {
        Some(n) => n
            .parse::<u32>()
            .map_err(|_| "Invalid parameter numSignatures")?,
        None if !hashes.is_empty() => u32::try_from(hashes.len()).unwrap_or(u32::MAX),
        None => return Err("Missing parameter numSignatures".into()),
    };
    let description = q
        .description
        .as_deref()
        .map(|d| d.chars().take(crate::service::MAX_DESCRIPTION).collect());
    Ok(Scope::Credential(CredentialGrant {
        credential_id,
        num_signatures,
        hashes,
        hash_algo: q
            .hash_algorithm_oid
            .clone()
            .or_else(|| details.and_then(|d| d.hash_algorithm_oid)),
        description,
    }))
}

fn login_page(status: StatusCode, id: &str, r: &Request, error: Option<&str>) -> Response {
    let (csrf, form_cookie) = sign_in::form_token(FORM_COOKIE);
    page(
        status,
        oauth2_html::login(&csrf, id, r, error),
        &[form_cookie],
    )
}

async fn authorize(
    State(service): State<Arc<Service>>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let begun = guarded(move || {
        let scope = scope(&q);
        let start = AuthorizeStart {
            response_type: q.response_type.as_deref(),
            client_id: q.client_id.as_deref(),
            redirect_uri: q.redirect_uri.as_deref(),
            state: q.state.as_deref(),
            code_challenge: q.code_challenge.as_deref(),
            code_challenge_method: q.code_challenge_method.as_deref(),
            scope,
        };
        service.oauth2_begin(start)
    });
    match begun {
        None => internal_error(),
        Some(Err(e)) => refused(e),
        Some(Ok((id, request))) => {
            log::info!(
                "GET /oauth2/authorize client={} -> sign-in page",
                request.client_id
            );
            login_page(StatusCode::OK, &id, &request, None)
        }
    }
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: Zeroizing<String>,
    request: String,
    username: String,
    password: Zeroizing<String>,
    code: Zeroizing<String>,
}

fn forbidden() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was not sent from the sign-in page, or it has expired. Start again from the application.",
    )
}

fn gone() -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This request is no longer waiting for an answer. Start again from the application.",
    )
}

async fn login(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if sign_in::check_form(&headers, FORM_COOKIE, &form.csrf).is_err() {
        return forbidden();
    }
    let id = form.request.clone();
    let user = sign_in::form_user(&form.username);
    let s = service.clone();
    let (who, rid) = (user.clone(), id.clone());
    let outcome =
        guarded(move || s.oauth2_login(&rid, &who, form.password.as_bytes(), form.code.trim()));
    let error = match outcome {
        None => return internal_error(),
        Some(Ok(Ok(session))) => {
            log::info!("POST /oauth2/authorize/login user={user} -> ok");
            let location = format!(
                "/oauth2/authorize/consent?request={}",
                url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            );
            return see_other(
                &location,
                &sign_in::session_cookies(SESSION_COOKIE, &session, FORM_COOKIE),
            );
        }
        Some(Ok(Err(e))) => return refused(e),
        Some(Err(e)) => match sign_in::refusal_text(e) {
            Some(text) => text,
            None => return internal_error(),
        },
    };
    log::info!("POST /oauth2/authorize/login -> 401");
    match service.oauth2_request(&id) {
        Some(r) => login_page(StatusCode::UNAUTHORIZED, &id, &r, Some(error)),
        None => gone(),
    }
}

#[derive(Deserialize)]
struct ConsentQuery {
    request: String,
}

/// `scheme://host[:port]` of the redirect URI: where the consent form's answer leads.
fn origin(redirect_uri: &str) -> String {
    url::Url::parse(redirect_uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

async fn consent(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Query(q): Query<ConsentQuery>,
) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return gone();
    };
    let Some(session) = service.page_session(&token) else {
        return gone();
    };
    match service.oauth2_request(&q.request) {
        Some(r) if r.user.as_deref() == Some(session.user.as_str()) => page_with_policy(
            StatusCode::OK,
            oauth2_html::consent(&session.user, session.csrf(), &q.request, &r),
            &[],
            &super::html::policy_with_form_action(&origin(&r.redirect_uri)),
        ),
        _ => gone(),
    }
}

#[derive(Deserialize)]
struct DecideForm {
    csrf: Zeroizing<String>,
    request: String,
    decision: String,
}

async fn decide(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    if cross_site(&headers) {
        return forbidden();
    }
    let allow = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                "Unknown answer",
                "Use the Allow or Deny button.",
            )
        }
    };
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return gone();
    };
    let Some(session) = service.page_session(&token) else {
        return gone();
    };
    if !session.csrf_matches(&form.csrf) {
        return forbidden();
    }
    let user = session.user.clone();
    let decided = guarded(move || service.oauth2_decide(&user, &form.request, allow));
    match decided {
        None => internal_error(),
        Some(Err(e)) if e.status >= 500 => internal_error(),
        Some(Err(_)) => gone(),
        Some(Ok(Err(e))) => refused(e),
        Some(Ok(Ok((request, code)))) => {
            log::info!(
                "POST /oauth2/authorize/decide user={} client={} -> code",
                session.user,
                request.client_id
            );
            back_to_client(
                &request.redirect_uri,
                request.state.as_deref(),
                &[("code", &code)],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn query(pairs: &str) -> AuthorizeQuery {
        serde_json::from_value(serde_json::Value::Object(
            url::form_urlencoded::parse(pairs.as_bytes())
                .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                .collect(),
        ))
        .unwrap()
    }

    #[test]
    fn credential_scope_in_every_dialect() {
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        let v1 = scope(&query(&format!(
            "scope=credential&credentialID=c&numSignatures=1&hash={h}"
        )));
        let v2 = scope(&query(&format!(
            "scope=credential&credentialID=c&numSignatures=1&hashes={h}&hashAlgorithmOID=2.16.840.1.101.3.4.2.1"
        )));
        let std = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let details = url::form_urlencoded::byte_serialize(
            format!(r#"[{{"type":"credential","credentialID":"c","documentDigests":[{{"hash":"{std}","label":"x"}}],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1"}}]"#).as_bytes(),
        )
        .collect::<String>();
        let rar = scope(&query(&format!(
            "scope=credential&authorization_details={details}"
        )));
        for s in [&v1, &v2, &rar] {
            match s {
                Ok(Scope::Credential(g)) => {
                    assert_eq!(g.credential_id, "c");
                    assert_eq!(g.num_signatures, 1);
                    assert_eq!(g.hashes, vec![vec![7u8; 32]]);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(scope(&query("")), Ok(Scope::Service));
        assert!(scope(&query("scope=admin")).is_err());
        assert!(scope(&query("scope=credential&numSignatures=1")).is_err());
        assert!(scope(&query("scope=credential&credentialID=c&numSignatures=x")).is_err());
        assert!(scope(&query(
            "scope=credential&credentialID=c&numSignatures=1&hash=%%%"
        ))
        .is_err());
    }
}
