//! The reference service's approval page as a browser without script uses it: HTTPS form posts with a
//! cookie jar and no redirects followed (`FormClient`), and a user signed in with password and account
//! code who approves or declines what the module asked for (`Page`).

use crate::service::Service;
use crate::tls::https_client;
use crate::totp::account_code;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A minimal browser without script: HTTPS to the service, a cookie jar, no redirects followed.
pub struct FormClient {
    http: reqwest::blocking::Client,
    base: String,
    cookies: HashMap<String, String>,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The `Set-Cookie` header that sets `name`.
    pub fn set_cookie(&self, name: &str) -> &str {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no Set-Cookie {name}"))
    }
}

impl FormClient {
    pub fn new(svc: &Service) -> FormClient {
        FormClient {
            http: https_client(&svc.ca_file(), Duration::from_secs(30)),
            base: svc.url.clone(),
            cookies: HashMap::new(),
        }
    }

    fn send(&mut self, rb: reqwest::blocking::RequestBuilder) -> Answer {
        let rb = if self.cookies.is_empty() {
            rb
        } else {
            let jar = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            rb.header(reqwest::header::COOKIE, jar)
        };
        let resp = rb.send().expect("HTTPS request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for sc in headers.get_all(reqwest::header::SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let (pair, attrs) = sc.split_once(';').unwrap_or((sc, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status,
            headers,
            body: resp.text().unwrap_or_default(),
        }
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let rb = self.http.get(format!("{}{path}", self.base));
        self.send(rb)
    }

    /// A form post with `extra` request headers (Origin, Sec-Fetch-Site, ...).
    pub fn post(&mut self, path: &str, form: &[(&str, &str)], extra: &[(&str, &str)]) -> Answer {
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(urlencode(form));
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        self.send(rb)
    }
}

/// A user signed in on the approval page.
pub struct Page {
    pub client: FormClient,
}

impl Page {
    /// Signs in as `user` with the account password and the account's authenticator code.
    pub fn sign_in(svc: &Service, user: &str) -> Page {
        let mut client = FormClient::new(svc);
        let form = client.get("/approve");
        assert_eq!(form.status, 200);
        let csrf = input_value(&form.body, 0, "csrf").to_owned();
        let token = svc.demo.token_of(user);
        let signed_in = client.post(
            "/approve/login",
            &[
                ("csrf", &csrf),
                ("username", user),
                ("password", &token.password),
                ("code", &account_code(token)),
            ],
            &[],
        );
        assert_eq!(signed_in.status, 303, "sign-in: {}", signed_in.body);
        Page { client }
    }

    pub fn get(&mut self, path: &str) -> Answer {
        self.client.get(path)
    }

    /// Answers the first waiting request whose card contains `marker` (`None`: the oldest one), if
    /// there is one; returns its card.
    pub fn decide_now(&mut self, marker: Option<&str>, decision: &str) -> Option<String> {
        let list = self.get("/approve");
        assert_eq!(list.status, 200);
        let at = match marker {
            Some(m) => list.body.find(m)?,
            None => list.body.find("name=\"request\"")?,
        };
        let card_start = list.body[..at].rfind("<article").unwrap_or(0);
        let card = &list.body[card_start..];
        let request = input_value(card, 0, "request").to_owned();
        let csrf = input_value(card, 0, "csrf").to_owned();
        let answered = self.client.post(
            "/approve/decide",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("decision", decision),
            ],
            &[],
        );
        assert_eq!(answered.status, 303, "{}", answered.body);
        Some(card[..card.find("</article>").unwrap_or(card.len())].to_owned())
    }

    /// Waits until a request whose card contains `marker` is listed, then answers it.
    pub fn decide(&mut self, marker: &str, decision: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(card) = self.decide_now(Some(marker), decision) {
                return card;
            }
            assert!(Instant::now() < deadline, "no request with {marker} listed");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `application/x-www-form-urlencoded` of the pairs.
pub fn urlencode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first `name="NAME" value="..."` input after `from` in `html`.
pub fn input_value<'a>(html: &'a str, from: usize, name: &str) -> &'a str {
    let key = format!("name=\"{name}\" value=\"");
    let start = html[from..]
        .find(&key)
        .unwrap_or_else(|| panic!("no input {name} in:\n{html}"))
        + from
        + key.len();
    let end = html[start..].find('"').unwrap() + start;
    &html[start..end]
}
