//! The approval page, `/approve` (see decision_page for the routes and their protection): the service's
//! side of it. A signed-in user sees the requests waiting for them and approves or declines each.

use super::decision_page::{DecideError, Decisions, Notices};
use super::html::{self, Notice};
use crate::approval::Decision;
use crate::error::CscError;
use crate::service::Service;
use crate::sessions::{PageLoginError, Session};
use maud::Markup;
use zeroize::Zeroizing;

impl Decisions for Service {
    const PATH: &'static str = "/approve";
    const SESSION_COOKIE: &'static str = super::web::SESSION_COOKIE;
    const LOGIN_COOKIE: &'static str = "__Host-csc-login";

    fn page_login(
        &self,
        user: &str,
        password: &[u8],
        code: &str,
    ) -> Result<Zeroizing<String>, PageLoginError> {
        Service::page_login(self, user, password, code)
    }

    fn page_session(&self, token: &str) -> Option<Session> {
        Service::page_session(self, token)
    }

    fn page_logout(&self, token: &str) {
        Service::page_logout(self, token)
    }

    fn list_page(&self, session: &Session, notice: Option<Notice<'static>>) -> Option<Markup> {
        let requests = self.pending_requests(session).ok()?;
        let now = crate::clock::unix_now();
        Some(html::requests(
            &session.user,
            session.csrf(),
            &requests,
            now,
            notice,
        ))
    }

    fn decide(&self, session: &Session, request: &str, approve: bool) -> Result<(), DecideError> {
        let decision = if approve {
            Decision::Approve
        } else {
            Decision::Decline
        };
        Service::decide(self, session, request, decision).map_err(|e| {
            if e == CscError::approval_expired() {
                DecideError::Expired
            } else if e.status >= 500 {
                DecideError::Internal
            } else {
                DecideError::Gone
            }
        })
    }

    const NOTICES: Notices = Notices {
        approved: "Approved. The application can now sign.",
        declined: "Declined. The application was told you refused.",
        expired: "Too late: that request expired before your answer.",
        gone: "That request is no longer waiting for an answer.",
    };

    fn login_page(csrf: &str, error: Option<&str>) -> Markup {
        html::login(csrf, error)
    }

    fn message_page(title: &str, text: &str) -> Markup {
        html::message(title, text)
    }
}
