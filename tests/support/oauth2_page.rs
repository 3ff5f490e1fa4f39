//! The reference service's OAuth 2.0 pages as a person's browser without script uses them: open the
//! authorization address an application shows, sign in (password and account code), allow or deny, and
//! follow the redirect back to the application's loopback listener (RFC 8252 §7.3), as a browser does.

use crate::page::{input_value, FormClient};
use crate::service::Service;
use crate::totp::account_code;
use std::io::{Read, Write};

/// What the browser did: where the service sent it back to, and what the loopback listener answered.
pub struct Redirected {
    /// The redirect with `code` (or `error`) and `state`.
    pub location: String,
    pub loopback_answer: String,
}

impl Redirected {
    /// The authorization code in the redirect, if any.
    pub fn code(&self) -> Option<String> {
        let query = self.location.split_once('?')?.1;
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("code="))
            .map(str::to_owned)
    }
}

fn location(a: &crate::page::Answer) -> String {
    a.headers
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("no Location in HTTP {}: {}", a.status, a.body))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Opens `url` (an `oauth2/authorize` address at `svc`), signs in as `user`, answers `allow` or deny,
/// and brings the redirect to the loopback listener it names.
pub fn authorize_in_browser(svc: &Service, url: &str, user: &str, allow: bool) -> Redirected {
    let path = url
        .strip_prefix(&svc.url)
        .unwrap_or_else(|| panic!("{url} is not at the service {}", svc.url));
    let mut c = FormClient::new(svc);
    let form = c.get(path);
    assert_eq!(form.status, 200, "authorization page: {}", form.body);
    let csrf = input_value(&form.body, 0, "csrf").to_owned();
    let request = input_value(&form.body, 0, "request").to_owned();
    let demo = svc.demo.token_of(user);
    let signed_in = c.post(
        "/oauth2/authorize/login",
        &[
            ("csrf", &csrf),
            ("request", &request),
            ("username", user),
            ("password", &demo.password),
            ("code", &account_code(demo)),
        ],
        &[],
    );
    assert_eq!(signed_in.status, 303, "sign-in: {}", signed_in.body);
    let consent = c.get(&location(&signed_in));
    assert_eq!(consent.status, 200, "consent page: {}", consent.body);
    let csrf = input_value(&consent.body, 0, "csrf").to_owned();
    let decided = c.post(
        "/oauth2/authorize/decide",
        &[
            ("csrf", &csrf),
            ("request", &request),
            ("decision", if allow { "allow" } else { "deny" }),
        ],
        &[],
    );
    assert_eq!(decided.status, 303, "decision: {}", decided.body);
    let back = location(&decided);
    let loopback_answer = follow_to_loopback(&back);
    Redirected {
        location: back,
        loopback_answer,
    }
}

/// A plain-HTTP GET of `http://127.0.0.1:PORT/PATH?QUERY`, as the browser follows the redirect.
fn follow_to_loopback(url: &str) -> String {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("the redirect {url} is not to a loopback listener"));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    assert!(host.starts_with("127.0.0.1:"), "redirect to {host}");
    let mut s = std::net::TcpStream::connect(host)
        .unwrap_or_else(|e| panic!("connect to the loopback listener of {url}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
