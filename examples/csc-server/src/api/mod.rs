//! HTTP: the CSC v1 and v2 routes over the service. Every method is `POST /csc/vN/<method>` with a JSON
//! body; the work runs on the connection's own thread (listener.rs). Errors are CSC JSON errors,
//! including 404 for unknown methods and 405 for other HTTP methods.

mod approval_page;
pub mod decision_page;
mod handlers;
pub mod html;
mod oauth2;
mod oauth2_html;
mod oauth2_token;
pub mod params;
mod sign_in;
mod views;
pub mod web;

use crate::error::CscError;
use crate::service::Service;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn path(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Info,
    Login,
    Revoke,
    List,
    CredentialInfo,
    Authorize,
    AuthorizeCheck,
    ExtendTransaction,
    SendOtp,
    GetChallenge,
    SignHash,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Info => "info",
            Method::Login => "auth/login",
            Method::Revoke => "auth/revoke",
            Method::List => "credentials/list",
            Method::CredentialInfo => "credentials/info",
            Method::Authorize => "credentials/authorize",
            Method::AuthorizeCheck => "credentials/authorizeCheck",
            Method::ExtendTransaction => "credentials/extendTransaction",
            Method::SendOtp => "credentials/sendOTP",
            Method::GetChallenge => "credentials/getChallenge",
            Method::SignHash => "signatures/signHash",
        }
    }

    fn offered(v: Version) -> Vec<Method> {
        let mut m = vec![
            Method::Info,
            Method::Login,
            Method::Revoke,
            Method::List,
            Method::CredentialInfo,
            Method::Authorize,
            Method::ExtendTransaction,
            Method::SendOtp,
            Method::SignHash,
        ];
        if v == Version::V2 {
            m.push(Method::GetChallenge);
            m.push(Method::AuthorizeCheck);
        }
        m
    }
}

/// A successful answer.
pub enum Reply {
    Json(Value),
    /// 202: an authorization waits for the user's approval.
    Accepted(Value),
    NoContent,
}

/// What the request log says about a request (never a secret).
#[derive(Default)]
pub struct LogContext {
    pub user: Option<String>,
    pub credential: Option<String>,
}

pub fn router(service: Arc<Service>) -> Router {
    let mut router = Router::new();
    if service.accepted().oauth2 {
        router = oauth2::routes(router);
    }
    for v in [Version::V1, Version::V2] {
        for m in Method::offered(v) {
            let path = format!("/csc/{}/{}", v.path(), m.name());
            router = router.route(
                &path,
                post(
                    move |State(s): State<Arc<Service>>,
                          ConnectInfo(peer): ConnectInfo<SocketAddr>,
                          headers: HeaderMap,
                          body: Bytes| {
                        dispatch(s, v, m, peer, headers, body)
                    },
                ),
            );
        }
    }
    decision_page::routes(router)
        .fallback(|uri: Uri| async move { error_response(&CscError::not_found(uri.path())) })
        .method_not_allowed_fallback(|| async { error_response(&CscError::method_not_allowed()) })
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(service)
}

async fn dispatch(
    service: Arc<Service>,
    v: Version,
    m: Method,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = web::guarded(move || {
        let mut log = LogContext::default();
        let incoming = handlers::Incoming {
            headers: &headers,
            body: &body,
            peer,
        };
        let result = handlers::handle(&service, v, m, &incoming, &mut log);
        (result, log)
    });
    let (result, log) = match outcome {
        Some(x) => x,
        None => (
            Err(CscError::internal("request task", "it panicked")),
            LogContext::default(),
        ),
    };
    let shown = match &result {
        Ok(Reply::Accepted(_)) => "pending".to_owned(),
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("{} {}", e.status, e.outcome()),
    };
    log::info!(
        "POST /csc/{}/{} user={} credential={} -> {}",
        v.path(),
        m.name(),
        log.user.as_deref().unwrap_or("-"),
        log.credential.as_deref().unwrap_or("-"),
        shown
    );
    match result {
        Ok(Reply::Json(body)) => (StatusCode::OK, Json(body)).into_response(),
        Ok(Reply::Accepted(body)) => (StatusCode::ACCEPTED, Json(body)).into_response(),
        Ok(Reply::NoContent) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

fn error_response(e: &CscError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = Json(serde_json::json!({ "error": e.code, "error_description": e.description }));
    let mut resp = (status, body).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if e.code == "access_denied" {
            "Basic realm=\"csc\""
        } else {
            "Bearer realm=\"csc\""
        };
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    resp
}
