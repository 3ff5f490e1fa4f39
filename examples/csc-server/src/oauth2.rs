//! The OAuth 2.0 authorization server's state and rules, HTTP-free: the registered clients, the
//! redirect URI rule for native apps (RFC 8252 §7.3: any port on a loopback IP literal), PKCE S256
//! (RFC 7636 §4.6), the authorization requests waiting for the user's sign-in and consent, and the
//! single-use authorization codes. Requests and codes live in memory (a restart forgets them, as
//! page sessions); tokens are the `tokens` table's, SADs the `sads` table's.

use crate::db::secret_id;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds between `oauth2/authorize` and the user's decision.
pub const REQUEST_LIFETIME: i64 = 600;
/// Seconds an authorization code can be exchanged (RFC 6749 §4.1.2: short, at most 10 minutes).
pub const CODE_LIFETIME: i64 = 60;

/// A registered client (`oauth2_clients`).
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 of the client secret; `None`: a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// The account a client_credentials client acts for.
    pub account: Option<String>,
    pub grant_types: Vec<String>,
    pub redirect_uri: Option<String>,
}

impl Client {
    pub fn allows(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Whether `presented` is this client's secret (constant time).
    pub fn secret_matches(&self, presented: &str) -> bool {
        self.secret_hash
            .as_deref()
            .is_some_and(|h| bool::from(h.ct_eq(&secret_id(presented))))
    }
}

/// RFC 8252 §7.3: a redirect to a loopback IP literal matches the registered one whatever its port;
/// any other redirect must be exactly the registered one.
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    };
    if loopback(&r) && loopback(&p) {
        return r.host() == p.host()
            && r.path() == p.path()
            && r.query() == p.query()
            && p.fragment().is_none()
            && p.username().is_empty()
            && p.password().is_none();
    }
    registered == presented
}

/// RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge. The verifier must have the
/// shape §4.1 gives it (43 to 128 unreserved characters).
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let shape = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    shape && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// What an authorization request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Sign the client in to the user's account (CSC `scope=service`).
    Service,
    /// Authorize signatures with one credential (CSC `scope=credential`): the code's token is a SAD.
    Credential(CredentialGrant),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialGrant {
    pub credential_id: String,
    pub num_signatures: u32,
    /// The hash values (SCAL 2: exactly those the SAD may sign).
    pub hashes: Vec<Vec<u8>>,
    pub hash_algo: Option<String>,
    pub description: Option<String>,
}

/// An authorization request between `oauth2/authorize` and the user's decision.
#[derive(Debug, Clone)]
pub struct Request {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: Scope,
    /// Set once the user signed in on the page: only that user may decide.
    pub user: Option<String>,
    pub expires_at: i64,
}

/// What an authorization code stands for.
#[derive(Debug, Clone)]
pub struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub user: String,
    pub scope: Scope,
    pub expires_at: i64,
}

#[derive(Default)]
pub struct Pending {
    requests: Mutex<HashMap<String, Request>>,
    /// By SHA-256 of the code.
    codes: Mutex<HashMap<Vec<u8>, Code>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change is a single map operation: a panic elsewhere cannot leave one half-done.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pending {
    /// Keeps a new request; returns its name (what the page's forms carry).
    pub fn add(&self, request: Request, now: i64) -> String {
        let id = crate::random::token().to_string();
        let mut map = locked(&self.requests);
        map.retain(|_, r| r.expires_at > now);
        map.insert(id.clone(), request);
        id
    }

    pub fn get(&self, id: &str, now: i64) -> Option<Request> {
        locked(&self.requests)
            .get(id)
            .filter(|r| r.expires_at > now)
            .cloned()
    }

    /// Records who signed in for request `id`.
    pub fn bind(&self, id: &str, user: &str) {
        if let Some(r) = locked(&self.requests).get_mut(id) {
            r.user = Some(user.to_owned());
        }
    }

    /// Ends request `id` (decided, or refused), returning it while still valid.
    pub fn take(&self, id: &str, now: i64) -> Option<Request> {
        locked(&self.requests)
            .remove(id)
            .filter(|r| r.expires_at > now)
    }

    /// A new single-use code for `code`.
    pub fn issue_code(&self, code: Code, now: i64) -> Zeroizing<String> {
        let value = crate::random::token();
        let mut map = locked(&self.codes);
        map.retain(|_, c| c.expires_at > now);
        map.insert(secret_id(&value), code);
        value
    }

    /// Spends `value`: a code works once, and only until it expires.
    pub fn redeem_code(&self, value: &str, now: i64) -> Option<Code> {
        locked(&self.codes)
            .remove(&secret_id(value))
            .filter(|c| c.expires_at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_match_on_any_port_only() {
        let reg = "http://127.0.0.1/callback";
        assert!(redirect_matches(reg, "http://127.0.0.1:53124/callback"));
        assert!(redirect_matches(reg, "http://127.0.0.1/callback"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:5/other"));
        assert!(!redirect_matches(reg, "http://localhost:5/callback"));
        assert!(!redirect_matches(reg, "https://127.0.0.1:5/callback"));
        assert!(!redirect_matches(reg, "http://127.0.0.2.evil/callback"));
        assert!(!redirect_matches(reg, "http://user@127.0.0.1:5/callback"));
        assert!(redirect_matches(
            "http://[::1]/callback",
            "http://[::1]:8080/callback"
        ));
        let web = "https://app.example/cb";
        assert!(redirect_matches(web, web));
        assert!(!redirect_matches(web, "https://app.example:444/cb"));
        assert!(!redirect_matches(reg, "not a url"));
    }

    #[test]
    fn pkce_s256_appendix_b() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        // The plain method is not accepted: the verifier itself is no challenge.
        assert!(!pkce_s256_matches(verifier, verifier));
        assert!(!pkce_s256_matches(
            "short",
            &URL_SAFE_NO_PAD.encode(Sha256::digest(b"short"))
        ));
    }

    fn code(expires_at: i64) -> Code {
        Code {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/callback".into(),
            code_challenge: "x".into(),
            user: "alice".into(),
            scope: Scope::Service,
            expires_at,
        }
    }

    #[test]
    fn codes_work_once_and_expire() {
        let p = Pending::default();
        let a = p.issue_code(code(1060), 1000);
        let b = p.issue_code(code(1060), 1000);
        assert_ne!(*a, *b);
        assert!(p.redeem_code(&a, 1059).is_some());
        assert!(p.redeem_code(&a, 1059).is_none(), "single use");
        assert!(p.redeem_code(&b, 1060).is_none(), "expired");
        assert!(p.redeem_code("made-up", 1000).is_none());
    }

    #[test]
    fn requests_bind_their_user_and_end() {
        let p = Pending::default();
        let r = Request {
            client_id: "c".into(),
            client_name: "C".into(),
            redirect_uri: "http://127.0.0.1:1/callback".into(),
            state: Some("s".into()),
            code_challenge: "x".into(),
            scope: Scope::Service,
            user: None,
            expires_at: 2000,
        };
        let id = p.add(r, 1000);
        p.bind(&id, "alice");
        assert_eq!(p.get(&id, 1999).unwrap().user.as_deref(), Some("alice"));
        assert!(p.get(&id, 2000).is_none());
        assert!(p.take(&id, 1500).is_some());
        assert!(p.take(&id, 1500).is_none());
    }
}
