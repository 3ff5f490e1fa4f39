//! What every server-rendered page of the reference services shares (the approval page and the OAuth 2.0
//! sign-in here, the CryptoPro DSS emulator's confirmation page): service work behind a panic guard,
//! `__Host-` cookies, the headers of every HTML answer (CSP, no framing, no caching), redirects after a
//! POST, and the cross-site check of form posts.

use super::html;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use zeroize::Zeroizing;

/// The page session of csc-server (approval page and OAuth 2.0 sign-in alike: one login of the person).
pub const SESSION_COOKIE: &str = "__Host-csc-session";
/// Seconds a sign-in form stays usable.
pub const LOGIN_FORM_LIFETIME: i64 = 600;

/// Runs service work (SQLite, the HSM, Argon2) where it is called: the listener gives every connection
/// a thread of its own for that (see `crate::listener`), so there is no hand-off to a pool and back.
/// `None` if it panicked, which the caller answers with an internal error; the connection goes on.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            log::error!("request task panicked");
            None
        }
    }
}

pub fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<Zeroizing<String>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| Zeroizing::new(v.to_owned()))
}

/// An HTML answer with the headers every page carries.
pub fn page(status: StatusCode, markup: Markup, cookies: &[HeaderValue]) -> Response {
    page_with_policy(status, markup, cookies, html::content_security_policy())
}

/// `page` with its own Content-Security-Policy (a form whose answer redirects elsewhere needs that
/// place in `form-action`).
pub fn page_with_policy(
    status: StatusCode,
    markup: Markup,
    cookies: &[HeaderValue],
    policy: &str,
) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(policy) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not "no-referrer": with it, browsers send `Origin: null` on the page's own form posts.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        h.append(header::SET_COOKIE, c.clone());
    }
    resp
}

pub fn internal_error() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        html::message(
            "Something went wrong",
            "The service failed; please try again.",
        ),
        &[],
    )
}

/// 303 to `location`, never cached (after a POST, so that reloading does not post again). A location
/// that cannot be a header (a client's redirect URI is not ours) is the service's failure.
pub fn see_other(location: &str, cookies: &[HeaderValue]) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return internal_error();
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        h.append(header::SET_COOKIE, c.clone());
    }
    resp
}

/// A POST from another site is refused: browsers name the sending site in Origin and Sec-Fetch-Site.
/// Non-browser clients send neither and rely on the CSRF tokens alone.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        if site != "same-origin" {
            return true;
        }
    }
    if let Some(origin) = value("origin") {
        let host = value("host").unwrap_or("");
        if !origin.eq_ignore_ascii_case(&format!("https://{host}")) {
            return true;
        }
    }
    false
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    const LOGIN_COOKIE: &str = "__Host-csc-login";

    /// Request headers of `pairs` (a name may come more than once).
    pub(in crate::api) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
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
