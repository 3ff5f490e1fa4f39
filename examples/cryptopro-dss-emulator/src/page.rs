//! The confirmation page, `/confirm`, standing in for the myDSS app on the user's phone: the emulator's
//! side of csc-server's decision page (api::decision_page: the routes, the `__Host-` session cookie,
//! CSRF tokens, cross-site refusal, no framing, no script). A signed-in user sees the operations waiting
//! for confirmation and confirms or declines each.

use crate::confirm::{self, Decision};
use crate::page_html;
use crate::service::Emulator;
use csc_server::api::decision_page::{DecideError, Decisions, Notices};
use csc_server::api::html::Notice;
use csc_server::sessions::{PageLoginError, Session};
use maud::Markup;
use zeroize::Zeroizing;

impl Decisions for Emulator {
    const PATH: &'static str = "/confirm";
    const SESSION_COOKIE: &'static str = "__Host-dss-session";
    const LOGIN_COOKIE: &'static str = "__Host-dss-login";

    fn page_login(
        &self,
        user: &str,
        password: &[u8],
        code: &str,
    ) -> Result<Zeroizing<String>, PageLoginError> {
        Emulator::page_login(self, user, password, code)
    }

    fn page_session(&self, token: &str) -> Option<Session> {
        Emulator::page_session(self, token)
    }

    fn page_logout(&self, token: &str) {
        self.sessions.end(token)
    }

    fn list_page(&self, session: &Session, notice: Option<Notice<'static>>) -> Option<Markup> {
        let items = self.pending(&session.user).ok()?;
        Some(page_html::pending(
            &session.user,
            session.csrf(),
            &items,
            self.now(),
            notice,
        ))
    }

    fn decide(&self, session: &Session, request: &str, approve: bool) -> Result<(), DecideError> {
        let decision = if approve {
            Decision::Confirm
        } else {
            Decision::Decline
        };
        Emulator::decide(self, &session.user, request, decision, "confirmation page").map_err(|e| {
            match e {
                confirm::DecideError::Expired => DecideError::Expired,
                confirm::DecideError::Gone => DecideError::Gone,
            }
        })
    }

    const NOTICES: Notices = Notices {
        approved: "Confirmed. The application can now sign.",
        declined: "Declined. The application was told you refused.",
        expired: "Too late: that operation expired before your answer.",
        gone: "That operation is no longer waiting for an answer.",
    };

    fn login_page(csrf: &str, error: Option<&str>) -> Markup {
        page_html::login(csrf, error)
    }

    fn message_page(title: &str, text: &str) -> Markup {
        page_html::message(title, text)
    }
}
