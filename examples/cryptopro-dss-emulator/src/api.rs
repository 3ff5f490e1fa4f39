//! HTTP: the routes of the identity service (`/STS/oauth/token`, `/STS/confirmation`) and of the signature
//! service (`/SignServer/rest/api/...`), over the emulator; the confirmation page (page.rs); JSON errors
//! for everything else. The work (SQLite, Argon2, the GOST engine) runs on the connection's own thread (csc-server's listener).

use crate::confirm::{Caller, ConfirmBody};
use crate::error::{DssError, DssResult};
use crate::model::{SIGNSERVER, STS};
use crate::service::Emulator;
use crate::sts::TokenForm;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use csc_server::api::web::guarded;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Requests larger than this are refused (a package of 100 Streebog-512 hashes is 12 KiB).
const BODY_LIMIT: usize = 256 * 1024;

pub fn router(emulator: Arc<Emulator>) -> Router {
    let api = |path: &str| format!("/{SIGNSERVER}/rest/api/{path}");
    let routes = Router::new()
        .route(&format!("/{STS}/oauth/token"), post(token))
        .route(&format!("/{STS}/confirmation"), post(confirmation))
        .route(&api("certificates"), get(certificates))
        .route(&api("transactions"), post(transactions))
        .route(&api("documents"), post(documents))
        .route(&api("documents/packagesignature"), post(package));
    csc_server::api::decision_page::routes(routes)
        .fallback(unknown)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(emulator)
}

async fn unknown(method: Method, uri: Uri) -> Response {
    log::info!("{method} {} -> 404", uri.path());
    DssError::not_found("Unknown endpoint").into_response()
}

/// An `Authorization: Bearer` token.
fn bearer(headers: &HeaderMap) -> DssResult<Zeroizing<String>> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Zeroizing::new(t.trim().to_owned()))
        .filter(|t| !t.is_empty())
        .ok_or_else(DssError::invalid_token)
}

/// An `Authorization: Basic` user and password.
fn basic(headers: &HeaderMap) -> Option<(String, Zeroizing<String>)> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).ok()?);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), Zeroizing::new(password.to_owned())))
}

fn json_body<T: DeserializeOwned>(body: &Bytes) -> DssResult<T> {
    serde_json::from_slice(body)
        .map_err(|_| DssError::invalid_request("The body is not the JSON expected"))
}

/// Runs `f` (on the connection's thread) and answers its JSON, or its error; logs the outcome (never a secret).
async fn answer(
    what: &'static str,
    f: impl FnOnce() -> DssResult<Value> + Send + 'static,
) -> Response {
    match guarded(f) {
        Some(Ok(v)) => {
            log::info!("{what} -> 200");
            (StatusCode::OK, Json(v)).into_response()
        }
        Some(Err(e)) => {
            log::info!("{what} -> {} {}", e.status, e.error);
            e.into_response()
        }
        None => DssError::internal(what).into_response(),
    }
}

async fn token(
    State(e): State<Arc<Emulator>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    // A public client may authenticate with HTTP Basic and an empty secret (RFC 6749 §2.3.1).
    let basic_client = basic(&headers).map(|(id, _)| id);
    let mut resp = answer("POST /STS/oauth/token", move || {
        let t = e.token(&form, basic_client.as_deref())?;
        Ok(serde_json::json!({
            "access_token": t.access_token.as_str(),
            "token_type": "Bearer",
            "expires_in": t.expires_in,
            "refresh_token": t.refresh_token.as_str(),
        }))
    })
    .await;
    // RFC 6749 §5.1: token responses are never cached.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn confirmation(
    State(e): State<Arc<Emulator>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client = client_of(&headers, peer);
    answer("POST /STS/confirmation", move || {
        let body: ConfirmBody = json_body(&body)?;
        let caller = match basic(&headers) {
            Some((user, password)) => Caller::Password { user, password },
            None => Caller::Access(bearer(&headers)?),
        };
        e.confirmation(caller, &body, Some(&client))
    })
    .await
}

/// Who asked, for the user to judge on the confirmation page: address and software.
fn client_of(headers: &HeaderMap, peer: SocketAddr) -> String {
    let agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown software")
        .chars()
        .take(100)
        .collect();
    format!("{} ({agent})", peer.ip())
}

async fn certificates(State(e): State<Arc<Emulator>>, headers: HeaderMap) -> Response {
    answer("GET certificates", move || {
        e.certificates(&bearer(&headers)?)
    })
    .await
}

async fn transactions(State(e): State<Arc<Emulator>>, headers: HeaderMap, body: Bytes) -> Response {
    answer("POST transactions", move || {
        e.create_transaction(&bearer(&headers)?, &json_body(&body)?)
    })
    .await
}

async fn documents(State(e): State<Arc<Emulator>>, headers: HeaderMap, body: Bytes) -> Response {
    answer("POST documents", move || {
        e.documents(&bearer(&headers)?, &json_body(&body)?, false)
    })
    .await
}

async fn package(State(e): State<Arc<Emulator>>, headers: HeaderMap, body: Bytes) -> Response {
    answer("POST documents/packagesignature", move || {
        e.documents(&bearer(&headers)?, &json_body(&body)?, true)
    })
    .await
}
