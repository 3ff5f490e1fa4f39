//! A page on the service's HTTPS listener where a signed-in person decides on what waits for them: the
//! approval page here (`/approve`), the CryptoPro DSS emulator's confirmation page (`/confirm`).
//! `GET PATH` (sign-in form, or the person's waiting requests), `POST PATH/login`, `POST PATH/decide`
//! (`csrf`, `request`, `decision=approve|decline`, answered by 303 to `PATH?done=approved|declined|
//! expired|gone`), `POST PATH/logout`. The service behind it implements [`Decisions`]; its markup and
//! texts are its own.
//!
//! Protection: the session lives server-side and its random name travels in a `__Host-` cookie
//! (Secure, HttpOnly, SameSite=Strict, Path=/); every form carries a CSRF token (the session's, or for
//! the sign-in form a double-submit token in a cookie of its own); a POST whose Origin or
//! Sec-Fetch-Site names another site is refused; pages cannot be framed and run no script (web.rs). The
//! sign-in steps are those of every sign-in form (sign_in.rs).

use super::html::Notice;
use super::sign_in::{self, FormRefusal};
use super::web::{cookie, cross_site, guarded, page, see_other, set_cookie};
use crate::sessions::{PageLoginError, Session};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Why a decision did not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideError {
    /// It was still waiting, but too late.
    Expired,
    /// Not (or no longer) waiting for this person.
    Gone,
    Internal,
}

/// What a decision page needs from the service behind it.
pub trait Decisions: Send + Sync + 'static {
    /// Where the page lives, e.g. "/approve".
    const PATH: &'static str;
    /// The cookie of the session, and the double-submit cookie of the sign-in form (`__Host-` names).
    const SESSION_COOKIE: &'static str;
    const LOGIN_COOKIE: &'static str;

    /// Signs a person in (password and account code); the new session's token.
    fn page_login(
        &self,
        user: &str,
        password: &[u8],
        code: &str,
    ) -> Result<Zeroizing<String>, PageLoginError>;
    fn page_session(&self, token: &str) -> Option<Session>;
    fn page_logout(&self, token: &str);
    /// The signed-in person's page with what waits for them (`None`: the service failed).
    fn list_page(&self, session: &Session, notice: Option<Notice<'static>>) -> Option<Markup>;
    fn decide(&self, session: &Session, request: &str, approve: bool) -> Result<(), DecideError>;
    /// What the page says after each outcome of a decision.
    const NOTICES: Notices;
    fn login_page(csrf: &str, error: Option<&str>) -> Markup;
    fn message_page(title: &str, text: &str) -> Markup;
}

/// The texts of the page's notice after a decision (`done=` of the 303): the first two are good news,
/// the last two errors.
pub struct Notices {
    pub approved: &'static str,
    pub declined: &'static str,
    pub expired: &'static str,
    pub gone: &'static str,
}

impl Notices {
    /// The notice of `done`; nothing for anything else.
    fn of(&self, done: &str) -> Option<Notice<'static>> {
        let (text, error) = match done {
            "approved" => (self.approved, false),
            "declined" => (self.declined, false),
            "expired" => (self.expired, true),
            "gone" => (self.gone, true),
            _ => return None,
        };
        Some(Notice { text, error })
    }
}

pub fn routes<S: Decisions>(router: Router<Arc<S>>) -> Router<Arc<S>> {
    router
        .route(S::PATH, get(show::<S>))
        .route(&format!("{}/login", S::PATH), post(login::<S>))
        .route(&format!("{}/decide", S::PATH), post(decide::<S>))
        .route(&format!("{}/logout", S::PATH), post(logout::<S>))
}

/// 303 to the page (after a POST, so that reloading does not post again).
fn back_to_page<S: Decisions>(done: Option<&str>, cookies: &[HeaderValue]) -> Response {
    match done {
        Some(d) => see_other(&format!("{}?done={d}", S::PATH), cookies),
        None => see_other(S::PATH, cookies),
    }
}

fn internal_error<S: Decisions>() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        S::message_page(
            "Something went wrong",
            "The service failed; please try again.",
        ),
        &[],
    )
}

fn forbidden<S: Decisions>() -> Response {
    page(
        StatusCode::FORBIDDEN,
        S::message_page(
            "Request refused",
            "This form was not sent from this page, or it has expired. Open the page and try again.",
        ),
        &[],
    )
}

/// The sign-in form, with a fresh double-submit token; a stale session cookie is dropped.
fn login_form<S: Decisions>(status: StatusCode, error: Option<&str>) -> Response {
    let (csrf, form_cookie) = sign_in::form_token(S::LOGIN_COOKIE);
    page(
        status,
        S::login_page(&csrf, error),
        &[form_cookie, set_cookie(S::SESSION_COOKIE, "", 0)],
    )
}

#[derive(Deserialize)]
struct ShowQuery {
    done: Option<String>,
}

async fn show<S: Decisions>(
    State(service): State<Arc<S>>,
    headers: HeaderMap,
    Query(q): Query<ShowQuery>,
) -> Response {
    let Some(token) = cookie(&headers, S::SESSION_COOKIE) else {
        return login_form::<S>(StatusCode::OK, None);
    };
    // Fixed texts only: nothing from the query string reaches the page.
    let notice = q.done.as_deref().and_then(|d| S::NOTICES.of(d));
    let loaded = guarded(move || {
        let session = service.page_session(&token)?;
        Some(service.list_page(&session, notice))
    });
    match loaded {
        None | Some(Some(None)) => internal_error::<S>(),
        Some(None) => login_form::<S>(
            StatusCode::OK,
            Some("Your session ended. Please sign in again."),
        ),
        Some(Some(Some(markup))) => page(StatusCode::OK, markup, &[]),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: Zeroizing<String>,
    username: String,
    password: Zeroizing<String>,
    code: Zeroizing<String>,
}

async fn login<S: Decisions>(
    State(service): State<Arc<S>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    match sign_in::check_form(&headers, S::LOGIN_COOKIE, &form.csrf) {
        Ok(()) => {}
        Err(FormRefusal::CrossSite) => return forbidden::<S>(),
        Err(FormRefusal::StaleToken) => {
            return login_form::<S>(
                StatusCode::FORBIDDEN,
                Some("The sign-in form expired. Please try again."),
            )
        }
    }
    let user = sign_in::form_user(&form.username);
    let shown_user = user.clone();
    let outcome =
        guarded(move || service.page_login(&user, form.password.as_bytes(), form.code.trim()));
    let error = match outcome {
        Some(Ok(session_token)) => {
            log::info!("POST {}/login user={shown_user} -> ok", S::PATH);
            return back_to_page::<S>(
                None,
                &sign_in::session_cookies(S::SESSION_COOKIE, &session_token, S::LOGIN_COOKIE),
            );
        }
        Some(Err(e)) => match sign_in::refusal_text(e) {
            Some(text) => text,
            None => return internal_error::<S>(),
        },
        None => return internal_error::<S>(),
    };
    log::info!("POST {}/login -> 401", S::PATH);
    login_form::<S>(StatusCode::UNAUTHORIZED, Some(error))
}

#[derive(Deserialize)]
struct DecideForm {
    csrf: Zeroizing<String>,
    request: String,
    decision: String,
}

async fn decide<S: Decisions>(
    State(service): State<Arc<S>>,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    if cross_site(&headers) {
        return forbidden::<S>();
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "decline" => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                S::message_page("Unknown answer", "Use one of the two buttons."),
                &[],
            )
        }
    };
    let Some(token) = cookie(&headers, S::SESSION_COOKIE) else {
        return back_to_page::<S>(None, &[]);
    };
    enum Outcome {
        NoSession,
        BadCsrf,
        Done(Result<(), DecideError>),
    }
    let outcome = guarded(move || {
        let Some(session) = service.page_session(&token) else {
            return Outcome::NoSession;
        };
        if !session.csrf_matches(&form.csrf) {
            return Outcome::BadCsrf;
        }
        Outcome::Done(service.decide(&session, &form.request, approve))
    });
    let done = match outcome {
        None | Some(Outcome::Done(Err(DecideError::Internal))) => return internal_error::<S>(),
        Some(Outcome::NoSession) => return back_to_page::<S>(None, &[]),
        Some(Outcome::BadCsrf) => return forbidden::<S>(),
        Some(Outcome::Done(Ok(()))) if approve => "approved",
        Some(Outcome::Done(Ok(()))) => "declined",
        Some(Outcome::Done(Err(DecideError::Expired))) => "expired",
        Some(Outcome::Done(Err(DecideError::Gone))) => "gone",
    };
    log::info!("POST {}/decide -> {done}", S::PATH);
    back_to_page::<S>(Some(done), &[])
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Zeroizing<String>,
}

async fn logout<S: Decisions>(
    State(service): State<Arc<S>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if cross_site(&headers) {
        return forbidden::<S>();
    }
    if let Some(token) = cookie(&headers, S::SESSION_COOKIE) {
        // Signing out is harmless, but a forged one would still be a nuisance: it needs the token.
        if let Some(session) = service.page_session(&token) {
            if !session.csrf_matches(&form.csrf) {
                return forbidden::<S>();
            }
            service.page_logout(&token);
        }
    }
    back_to_page::<S>(None, &[set_cookie(S::SESSION_COOKIE, "", 0)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_outcomes_have_a_notice() {
        let notices = Notices {
            approved: "a",
            declined: "d",
            expired: "e",
            gone: "g",
        };
        let shown = |done| notices.of(done).map(|n| (n.text, n.error));
        assert_eq!(shown("approved"), Some(("a", false)));
        assert_eq!(shown("declined"), Some(("d", false)));
        assert_eq!(shown("expired"), Some(("e", true)));
        assert_eq!(shown("gone"), Some(("g", true)));
        assert_eq!(shown("<script>"), None);
    }
}
