//! The steps of a page sign-in that every sign-in form of the reference services shares (the decision
//! pages' and the OAuth 2.0 authorization's): the form's double-submit CSRF token and its cookie, the
//! check of a posted form, the user name as the form gives it, what a refused sign-in says, and the
//! cookies of the session that begins. The password and account-code check itself is the service's
//! (`page_login`); the pages around the form are each page's own. Calls web (cookies, cross-site check).

use super::web::{cookie, cross_site, set_cookie, LOGIN_FORM_LIFETIME};
use crate::sessions::{self, PageLoginError};
use axum::http::{HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Characters of a user name a form may give: enough for any account, short enough for a log line.
const MAX_USER: usize = 64;

/// Why a posted sign-in form is not even tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRefusal {
    /// Sent from another site.
    CrossSite,
    /// Its CSRF token is not the one of its double-submit cookie (a forged or an expired form).
    StaleToken,
}

/// A fresh sign-in form's CSRF token, and the cookie `form_cookie` that carries its double.
pub fn form_token(form_cookie: &str) -> (Zeroizing<String>, HeaderValue) {
    let csrf = crate::random::token();
    let set = set_cookie(form_cookie, &csrf, LOGIN_FORM_LIFETIME);
    (csrf, set)
}

/// Whether a posted sign-in form came from this site's form: same site, and `csrf` equal to the value of
/// the double-submit cookie `form_cookie`.
pub fn check_form(headers: &HeaderMap, form_cookie: &str, csrf: &str) -> Result<(), FormRefusal> {
    if cross_site(headers) {
        return Err(FormRefusal::CrossSite);
    }
    let token_ok = cookie(headers, form_cookie)
        .is_some_and(|c| !c.is_empty() && bool::from(c.as_bytes().ct_eq(csrf.as_bytes())));
    if token_ok {
        Ok(())
    } else {
        Err(FormRefusal::StaleToken)
    }
}

/// The user name as the form gave it, cut to [`MAX_USER`] characters.
pub fn form_user(name: &str) -> String {
    name.chars().take(MAX_USER).collect()
}

/// What the page says to a refused sign-in (answered 401); `None`: the service failed, not the person.
pub fn refusal_text(e: PageLoginError) -> Option<&'static str> {
    match e {
        PageLoginError::Rejected => Some("Wrong user name, password or code."),
        PageLoginError::Locked => {
            Some("Locked after too many failed attempts. Ask your administrator.")
        }
        PageLoginError::Internal => None,
    }
}

/// The cookies of a session that begins: the session's token in `session_cookie`, the sign-in form's
/// double-submit cookie `form_cookie` dropped.
pub fn session_cookies(session_cookie: &str, token: &str, form_cookie: &str) -> [HeaderValue; 2] {
    [
        set_cookie(session_cookie, token, sessions::LIFETIME),
        set_cookie(form_cookie, "", 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::web::tests::headers;
    use super::*;

    const FORM: &str = "__Host-test-login";

    #[test]
    fn a_form_counts_only_with_its_double_submit_cookie_from_this_site() {
        let (csrf, set) = form_token(FORM);
        assert!(set
            .to_str()
            .unwrap()
            .starts_with(&format!("{FORM}={};", csrf.as_str())));
        let cookie = format!("{FORM}={}", csrf.as_str());
        assert_eq!(
            check_form(&headers(&[("cookie", &cookie)]), FORM, &csrf),
            Ok(())
        );
        assert_eq!(
            check_form(&headers(&[("cookie", &cookie)]), FORM, "other"),
            Err(FormRefusal::StaleToken)
        );
        assert_eq!(
            check_form(&headers(&[]), FORM, &csrf),
            Err(FormRefusal::StaleToken)
        );
        let empty = format!("{FORM}=");
        assert_eq!(
            check_form(&headers(&[("cookie", &empty)]), FORM, ""),
            Err(FormRefusal::StaleToken)
        );
        assert_eq!(
            check_form(
                &headers(&[("cookie", &cookie), ("sec-fetch-site", "cross-site")]),
                FORM,
                &csrf
            ),
            Err(FormRefusal::CrossSite)
        );
    }

    #[test]
    fn user_names_are_cut_and_refusals_named() {
        assert_eq!(form_user(&"é".repeat(100)).chars().count(), MAX_USER);
        assert_eq!(form_user("alice"), "alice");
        assert!(refusal_text(PageLoginError::Rejected).is_some());
        assert!(refusal_text(PageLoginError::Locked)
            .unwrap()
            .contains("Locked"));
        assert_eq!(refusal_text(PageLoginError::Internal), None);
        let [session, form] = session_cookies("__Host-s", "tok", FORM);
        assert!(session.to_str().unwrap().starts_with("__Host-s=tok;"));
        assert!(form.to_str().unwrap().contains("Max-Age=0"));
    }
}
