//! Signing in to the service: one `ServiceAuth` per client, one `Access` for every method call, whatever
//! the kind (none, bearer token, API key, auth/login), alone or over mutual TLS.

use crate::fake::{Fake, Pki, Req, Resp};
use crate::loopback;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use remote_client::*;
use serde_json::json;
use std::time::Duration;

const TOKEN: &str = "at-static-0123456789";
const KEY: &str = "key-0f1e2d3c4b5a";
const PASSWORD: &str = "pw-Correct-Horse";
const REFRESH: &str = "rt-9876543210";
const ROTATED: &str = "rt-rotated-55555";

/// Answers `credentials/list` to a request that carries exactly the expected header, nothing else that
/// could authenticate it; `auth/login` for alice's password or refresh token (rotating the latter).
fn service(expected: Option<(&'static str, String)>) -> impl Fn(&Req) -> Resp + Send + Sync {
    move |r: &Req| {
        if r.path.ends_with("/auth/login") {
            let basic = format!("Basic {}", B64.encode(format!("alice:{PASSWORD}")));
            if r.headers.get("authorization") == Some(&basic) {
                return Resp::json(200, json!({"access_token": TOKEN, "expires_in": 600}));
            }
            if r.body["refresh_token"] == REFRESH {
                return Resp::json(
                    200,
                    json!({"access_token": TOKEN, "refresh_token": ROTATED, "expires_in": 600}),
                );
            }
            return Resp::json(401, json!({"error": "access_denied"}));
        }
        let credentials = ["authorization", "x-api-key", "x-dtm-key"];
        let presented: Vec<(&str, &String)> = credentials
            .iter()
            .filter_map(|h| r.headers.get(*h).map(|v| (*h, v)))
            .collect();
        let wanted: Vec<(&str, &String)> = expected.iter().map(|(h, v)| (*h, v)).collect();
        if presented == wanted {
            Resp::json(200, json!({"credentialIDs": ["c1"]}))
        } else {
            Resp::json(
                401,
                json!({"error": "invalid_token", "error_description": "who are you?"}),
            )
        }
    }
}

fn client(url: &str) -> CscClient {
    let cfg = loopback(url, ApiVersion::V1);
    CscClient::new(&cfg).unwrap()
}

fn bearer() -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {TOKEN}")))
}

#[test]
fn every_static_kind_carries_its_own_header_and_no_other() {
    let cases = [
        (ServiceAuth::None, None),
        (ServiceAuth::Bearer(Secret::new(TOKEN)), bearer()),
        (
            ServiceAuth::api_key(Secret::new(KEY)),
            Some(("x-api-key", KEY.to_owned())),
        ),
        (
            ServiceAuth::ApiKey {
                header: "X-DTM-Key".into(),
                key: Secret::new(KEY),
            },
            Some(("x-dtm-key", KEY.to_owned())),
        ),
    ];
    for (auth, expected) in cases {
        let fake = Fake::http(service(expected.clone()));
        let c = client(&fake.http_url());
        let signed_in = c.sign_in(&auth).unwrap();
        assert!(fake.paths().is_empty(), "{auth:?} made a request");
        assert!(!auth.renews(), "{auth:?}");
        assert_eq!(signed_in.expires_in, None);
        assert_eq!(c.list_credentials(&signed_in.access).unwrap(), ["c1"]);
        assert_eq!(c.list_credentials(&signed_in).unwrap(), ["c1"]);
        // The other kinds are refused by this service: the header is the one that was asked for.
        let wrong = match expected {
            None => Access::Bearer(Secret::new(TOKEN)),
            Some(_) => Access::Anonymous,
        };
        let e = c.list_credentials(&wrong).unwrap_err();
        assert_eq!(e.reason(), Reason::TokenExpired);
        let text = format!("{auth:?} {signed_in:?} {e} {e:?}");
        assert!(!text.contains(TOKEN) && !text.contains(KEY), "{text}");
    }
}

#[test]
fn login_kinds_use_auth_login_and_return_a_rotated_refresh_token() {
    let fake = Fake::http(service(bearer()));
    let c = client(&fake.http_url());
    let auth = ServiceAuth::Password {
        account: "alice".into(),
        password: Secret::new(PASSWORD),
    };
    assert!(auth.renews());
    let s = c.sign_in(&auth).unwrap();
    assert_eq!(s.expires_in, Some(Duration::from_secs(600)));
    assert!(s.refresh_token.is_none());
    assert_eq!(c.list_credentials(&s).unwrap(), ["c1"]);
    assert_eq!(
        fake.requests()[0].body,
        json!({"rememberMe": false}),
        "a password sign-in asks for no refresh token"
    );

    let auth = ServiceAuth::RefreshToken(Secret::new(REFRESH));
    assert!(auth.renews());
    let s = c.sign_in(&auth).unwrap();
    assert_eq!(s.refresh_token.as_ref().unwrap().expose(), ROTATED);
    assert_eq!(c.list_credentials(&s).unwrap(), ["c1"]);

    let e = c
        .sign_in(&ServiceAuth::Password {
            account: "alice".into(),
            password: Secret::new("wrong-password"),
        })
        .unwrap_err();
    assert_eq!(e.reason(), Reason::WrongPassword);
    let text = format!("{auth:?} {s:?}");
    for secret in [TOKEN, REFRESH, ROTATED, PASSWORD] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[test]
fn a_bad_api_key_header_is_a_configuration_error() {
    let fake = Fake::http(service(None));
    let c = client(&fake.http_url());
    let access = c
        .sign_in(&ServiceAuth::ApiKey {
            header: "x api key".into(),
            key: Secret::new(KEY),
        })
        .unwrap();
    let e = c.list_credentials(&access).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(!e.to_string().contains(KEY));
    assert!(fake.paths().is_empty());
}

#[test]
fn mutual_tls_combines_with_any_kind() {
    let server_pki = Pki::new("Server CA");
    let client_pki = Pki::new("Client CA");
    let (_, _, cert_pem, key_pem) = client_pki.leaf(&["client.test"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("c.key"));
    std::fs::write(&ca, &server_pki.ca_pem).unwrap();
    std::fs::write(&cert_file, cert_pem).unwrap();
    std::fs::write(&key_file, key_pem).unwrap();
    for (auth, expected) in [
        (ServiceAuth::None, None),
        (
            ServiceAuth::api_key(Secret::new(KEY)),
            Some(("x-api-key", KEY.to_owned())),
        ),
        (ServiceAuth::RefreshToken(Secret::new(REFRESH)), bearer()),
    ] {
        let fake = Fake::https(
            service(expected),
            server_pki.server_config(Some(&client_pki)),
        );
        let mut cfg = ClientConfig::new(fake.https_url());
        cfg.api_version = ApiVersion::V2;
        cfg.ca_file = Some(ca.clone());
        cfg.client_identity = Some(ClientIdentity {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        });
        let c = CscClient::new(&cfg).unwrap();
        let s = c.sign_in(&auth).unwrap();
        assert_eq!(c.list_credentials(&s).unwrap(), ["c1"], "{auth:?}");
    }
}
