//! The HTTP API, at `/v2` as GlobalSign's base URI has it (`https://emea.api.dss.globalsign.com:8443/v2`,
//! API documentation v2.6): the routes, the documented request headers and bodies, and every refusal as
//! an `application/problem+json` body `{description, id, errors}` (the documentation's error shape;
//! README.md lists which statuses are verified and which are this emulator's choice).
//!
//! Every route but `/login` needs `Authorization: Bearer` with a live session, and every connection
//! the account's TLS client certificate (server.rs requires one at the handshake; this layer checks
//! it is the account's).

use crate::service::{validation_policy, Refusal, Service};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use csc_server::listener::PeerCertificates;
use serde_json::{json, Value};
use std::sync::Arc;

const JSON: &str = "application/json;charset=utf-8";
const PROBLEM: &str = "application/problem+json;charset=utf-8";

pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v2/login", post(login))
        .route("/v2/identity", post(identity))
        .route("/v2/identity/{id}/sign/{digest}", get(sign))
        .route("/v2/certificate_path", get(certificate_path))
        .route("/v2/trustchain", get(trustchain))
        .route("/v2/quotas/{kind}", get(quota))
        .route("/v2/counters/{kind}", get(counter))
        .route("/v2/validationpolicy", get(policy))
        .route("/v2/timestamp/{digest}", get(timestamp))
        .fallback(|| async { problem(&Refusal::NotFound) })
        .with_state(service)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

/// A refusal as the documentation's problem body.
fn problem(r: &Refusal) -> Response {
    let (status, description, errors) = match r {
        Refusal::BadRequest(errors) => (
            StatusCode::BAD_REQUEST,
            "Bad Request".to_owned(),
            errors.clone(),
        ),
        Refusal::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized".to_owned(), vec![]),
        Refusal::NotFound => (StatusCode::NOT_FOUND, "Not Found".to_owned(), vec![]),
        Refusal::RateLimited { what, retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too Many Requests: the account's rate limit of {what} is exceeded"),
            vec![(
                "rate_limit".to_owned(),
                format!("{what}: retry after {retry_after} s"),
            )],
        ),
        Refusal::QuotaExhausted { what } => (
            StatusCode::PAYMENT_REQUIRED,
            format!("Quota exhausted: the account has no {what} left"),
            vec![("quota".to_owned(), format!("{what}: 0 left"))],
        ),
        Refusal::NotImplemented(what) => (
            StatusCode::NOT_IMPLEMENTED,
            format!("Not Implemented: the emulator does not reproduce {what}"),
            vec![],
        ),
        Refusal::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error".to_owned(),
            vec![],
        ),
    };
    let mut body = json!({ "description": description, "id": crate::random::hex(8).as_str() });
    if !errors.is_empty() {
        body["errors"] = errors
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let mut resp = json_response(status, body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM));
    if let Refusal::RateLimited { retry_after, .. } = r {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
    }
    resp
}

fn respond(result: Result<Value, Refusal>) -> Response {
    match result {
        Ok(v) => json_response(StatusCode::OK, v),
        Err(r) => problem(&r),
    }
}

/// The serial number of the client certificate of this connection (upper-case hex).
fn client_serial(tls: &PeerCertificates) -> Option<String> {
    crate::pki::serial_hex(tls.0.first()?).ok()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The documented request Content-Type (`^application/json;charset=utf-8$`; case and blanks aside).
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, Refusal> {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
        .replace(' ', "");
    if ct != JSON {
        return Err(Refusal::BadRequest(vec![(
            "Content-Type".into(),
            format!("must be {JSON}"),
        )]));
    }
    serde_json::from_slice(body)
        .map_err(|_| Refusal::BadRequest(vec![("body".into(), "not JSON".into())]))
}

fn guarded<T>(f: impl FnOnce() -> Result<T, Refusal>) -> Result<T, Refusal> {
    csc_server::api::web::guarded(f).unwrap_or(Err(Refusal::Internal))
}

async fn login(
    State(s): State<Arc<Service>>,
    Extension(tls): Extension<PeerCertificates>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = match json_body(&headers, &body) {
        Ok(v) => v,
        Err(r) => return problem(&r),
    };
    let field = |k: &str| {
        parsed
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (key, secret) = (
        field("api_key"),
        zeroize::Zeroizing::new(field("api_secret")),
    );
    let serial = client_serial(&tls);
    match s.login(&key, &secret, serial.as_deref()) {
        Ok((token, _lifetime)) => {
            let mut r = json_response(StatusCode::OK, json!({ "access_token": token.as_str() }));
            // The documentation's 200 carries the token in an Authorization header too.
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", token.as_str())) {
                r.headers_mut().insert(AUTHORIZATION, v);
            }
            r
        }
        Err(r) => problem(&r),
    }
}

/// The session check every route but `/login` makes.
fn authorized(s: &Service, tls: &PeerCertificates, headers: &HeaderMap) -> Result<(), Refusal> {
    s.authenticate(bearer(headers), client_serial(tls).as_deref())
}

async fn identity(
    State(s): State<Arc<Service>>,
    Extension(tls): Extension<PeerCertificates>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorized(&s, &tls, &headers) {
        return problem(&r);
    }
    let parsed = match json_body(&headers, &body) {
        Ok(v) => v,
        Err(r) => return problem(&r),
    };
    respond(
        guarded(move || s.create_identity(&parsed))
            .map(|(id, pem)| json!({ "id": id, "signing_cert": pem, "ocsp_response": "" })),
    )
}

async fn sign(
    State(s): State<Arc<Service>>,
    Extension(tls): Extension<PeerCertificates>,
    headers: HeaderMap,
    Path((id, digest)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorized(&s, &tls, &headers) {
        return problem(&r);
    }
    respond(guarded(move || s.sign(&id, &digest)).map(|sig| json!({ "signature": sig })))
}

macro_rules! read_route {
    ($name:ident, $call:expr) => {
        async fn $name(
            State(s): State<Arc<Service>>,
            Extension(tls): Extension<PeerCertificates>,
            headers: HeaderMap,
        ) -> Response {
            respond(authorized(&s, &tls, &headers).map(|()| $call(&s)))
        }
    };
}

read_route!(certificate_path, |s: &Service| s.certificate_path());
read_route!(trustchain, |s: &Service| s.trustchain());
read_route!(policy, |_: &Service| validation_policy());

macro_rules! kind_route {
    ($name:ident, $call:path) => {
        async fn $name(
            State(s): State<Arc<Service>>,
            Extension(tls): Extension<PeerCertificates>,
            headers: HeaderMap,
            Path(kind): Path<String>,
        ) -> Response {
            respond(authorized(&s, &tls, &headers).and_then(|()| $call(&s, &kind)))
        }
    };
}

kind_route!(quota, Service::quota);
kind_route!(counter, Service::counter);

async fn timestamp(
    State(s): State<Arc<Service>>,
    Extension(tls): Extension<PeerCertificates>,
    headers: HeaderMap,
) -> Response {
    respond(
        authorized(&s, &tls, &headers).and(Err(Refusal::NotImplemented("RFC 3161 time-stamps"))),
    )
}
