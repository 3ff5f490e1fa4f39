//! The approval page on the service's HTTPS listener: `GET /approve` (sign-in form, or the signed-in
//! user's waiting requests), `POST /approve/login`, `POST /approve/decide`, `POST /approve/logout`.
//!
//! Protection: the session lives server-side and its random name travels in a `__Host-` cookie
//! (Secure, HttpOnly, SameSite=Strict, Path=/); every form carries a CSRF token (the session's, or for
//! the sign-in form a double-submit token in a cookie of its own); a POST whose Origin or
//! Sec-Fetch-Site names another site is refused; pages cannot be framed and run no script.

use super::html::{self, Notice};
use super::web::{
    blocking, cookie, cross_site, internal_error, page, set_cookie, LOGIN_FORM_LIFETIME,
    SESSION_COOKIE,
};
use crate::approval::Decision;
use crate::random;
use crate::service::approvals::PageLoginError;
use crate::service::Service;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const LOGIN_COOKIE: &str = "__Host-csc-login";

pub fn routes(router: Router<Arc<Service>>) -> Router<Arc<Service>> {
    router
        .route("/approve", get(show))
        .route("/approve/login", post(login))
        .route("/approve/decide", post(decide))
        .route("/approve/logout", post(logout))
}

/// 303 to the page (after a POST, so that reloading does not post again).
fn back_to_page(done: Option<&str>, cookies: &[HeaderValue]) -> Response {
    let location = match done {
        Some(d) => format!("/approve?done={d}"),
        None => "/approve".to_owned(),
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(l) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, l);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        h.append(header::SET_COOKIE, c.clone());
    }
    resp
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        html::message(
            "Request refused",
            "This form was not sent from the approval page, or it has expired. Open the approval page \
             and try again.",
        ),
        &[],
    )
}

/// The sign-in form, with a fresh double-submit token; a stale session cookie is dropped.
fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let csrf = random::token();
    page(
        status,
        html::login(&csrf, error),
        &[
            set_cookie(LOGIN_COOKIE, &csrf, LOGIN_FORM_LIFETIME),
            set_cookie(SESSION_COOKIE, "", 0),
        ],
    )
}

#[derive(Deserialize)]
struct ShowQuery {
    done: Option<String>,
}

async fn show(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Query(q): Query<ShowQuery>,
) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return login_page(StatusCode::OK, None);
    };
    let loaded = blocking(move || {
        let session = service.page_session(&token)?;
        let requests = service.pending_requests(&session);
        Some((session, requests, crate::clock::unix_now()))
    })
    .await;
    let (session, requests, now) = match loaded {
        None => return internal_error(),
        Some(None) => {
            return login_page(
                StatusCode::OK,
                Some("Your session ended. Please sign in again."),
            )
        }
        Some(Some((s, Ok(r), now))) => (s, r, now),
        Some(Some((_, Err(_), _))) => return internal_error(),
    };
    // Fixed texts only: nothing from the query string reaches the page.
    let notice = match q.done.as_deref() {
        Some("approved") => Some(Notice {
            text: "Approved. The application can now sign.",
            error: false,
        }),
        Some("declined") => Some(Notice {
            text: "Declined. The application was told you refused.",
            error: false,
        }),
        Some("expired") => Some(Notice {
            text: "Too late: that request expired before your answer.",
            error: true,
        }),
        Some("gone") => Some(Notice {
            text: "That request is no longer waiting for an answer.",
            error: true,
        }),
        _ => None,
    };
    page(
        StatusCode::OK,
        html::requests(&session.user, session.csrf(), &requests, now, notice),
        &[],
    )
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: Zeroizing<String>,
    username: String,
    password: Zeroizing<String>,
    code: Zeroizing<String>,
}

async fn login(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if cross_site(&headers) {
        return forbidden();
    }
    let form_token_ok = cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|c| !c.is_empty() && bool::from(c.as_bytes().ct_eq(form.csrf.as_bytes())));
    if !form_token_ok {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired. Please try again."),
        );
    }
    let user: String = form.username.chars().take(64).collect();
    let shown_user = user.clone();
    let outcome =
        blocking(move || service.page_login(&user, form.password.as_bytes(), form.code.trim()))
            .await;
    let (status, error) = match outcome {
        Some(Ok(session_token)) => {
            log::info!("POST /approve/login user={shown_user} -> ok");
            return back_to_page(
                None,
                &[
                    set_cookie(SESSION_COOKIE, &session_token, crate::sessions::LIFETIME),
                    set_cookie(LOGIN_COOKIE, "", 0),
                ],
            );
        }
        Some(Err(PageLoginError::Rejected)) => (
            StatusCode::UNAUTHORIZED,
            "Wrong user name, password or code.",
        ),
        Some(Err(PageLoginError::Locked)) => (
            StatusCode::UNAUTHORIZED,
            "Locked after too many failed attempts. Ask your administrator.",
        ),
        Some(Err(PageLoginError::Internal)) | None => return internal_error(),
    };
    log::info!("POST /approve/login -> {}", status.as_u16());
    login_page(status, Some(error))
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
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "decline" => Decision::Decline,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                html::message("Unknown answer", "Use the Approve or Decline button."),
                &[],
            )
        }
    };
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return back_to_page(None, &[]);
    };
    enum Outcome {
        NoSession,
        BadCsrf,
        Done(Result<(), crate::error::CscError>),
    }
    let outcome = blocking(move || {
        let Some(session) = service.page_session(&token) else {
            return Outcome::NoSession;
        };
        if !session.csrf_matches(&form.csrf) {
            return Outcome::BadCsrf;
        }
        Outcome::Done(service.decide(&session, &form.request, decision))
    })
    .await;
    let result = match outcome {
        None => return internal_error(),
        Some(Outcome::NoSession) => return back_to_page(None, &[]),
        Some(Outcome::BadCsrf) => return forbidden(),
        Some(Outcome::Done(r)) => r,
    };
    let done = match result {
        Ok(()) => match decision {
            Decision::Approve => "approved",
            Decision::Decline => "declined",
        },
        Err(e) if e == crate::error::CscError::approval_expired() => "expired",
        Err(e) if e.status >= 500 => return internal_error(),
        Err(_) => "gone",
    };
    log::info!("POST /approve/decide -> {done}");
    back_to_page(Some(done), &[])
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Zeroizing<String>,
}

async fn logout(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if cross_site(&headers) {
        return forbidden();
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        // Signing out is harmless, but a forged one would still be a nuisance: it needs the token.
        if let Some(session) = service.page_session(&token) {
            if !session.csrf_matches(&form.csrf) {
                return forbidden();
            }
            service.page_logout(&token);
        }
    }
    back_to_page(None, &[set_cookie(SESSION_COOKIE, "", 0)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[
            ("cookie", "a=1; __Host-csc-session=abc"),
            ("cookie", "x__Host-csc-login=no; __Host-csc-login=yes"),
        ]);
        assert_eq!(
            cookie(&h, SESSION_COOKIE).as_deref().map(|s| s.as_str()),
            Some("abc")
        );
        assert_eq!(
            cookie(&h, LOGIN_COOKIE).as_deref().map(|s| s.as_str()),
            Some("yes")
        );
        assert!(cookie(&h, "missing").is_none());
        let c = set_cookie(SESSION_COOKIE, "tok", 600);
        let c = c.to_str().unwrap();
        for attr in [
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(c.contains(attr), "{c}");
        }
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:8443"),
            ("origin", "https://127.0.0.1:8443"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8443"),
            ("origin", "https://evil.example"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8443"),
            ("origin", "null")
        ])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
    }
}
