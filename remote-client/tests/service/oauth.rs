//! OAuth 2.0 against a scripted authorization server: client credentials, password, refresh with
//! rotation, authorization code with PKCE S256 (the browser played by the test), the credential scope
//! for a SAD, revocation; endpoints from `info.oauth2` or configured; errors that name no secret.

use crate::fake::{Fake, Req, Resp};
use crate::loopback;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine;
use remote_client::*;
use serde_json::json;
use sha2::Digest;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENT: &str = "cloudtoken-test";
const CLIENT_SECRET: &str = "cs-7f6e5d4c3b2a";
const PASSWORD: &str = "pw-Correct-Horse";
const RT1: &str = "rt-first-111111";
const RT2: &str = "rt-rotated-222222";
const CODE: &str = "code-service-3333";
const CRED_CODE: &str = "code-credential-4444";
const CRED_TOKEN: &str = "credtok-5555555";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The challenges the test's "browser" saw, per code it then issues.
type Challenges = Arc<Mutex<HashMap<String, String>>>;
/// Answers the token endpoint gives before it works properly (fault injection).
type Injected = Arc<Mutex<VecDeque<Resp>>>;

fn token(access: &str, refresh: Option<&str>) -> Resp {
    let mut body = json!({"access_token": access, "token_type": "Bearer", "expires_in": 300});
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    Resp::json(200, body)
}

/// An RFC 6749 §5.2 error that, carelessly, echoes the whole request body (the secrets in it).
fn oauth_error(status: u16, error: &str, r: &Req) -> Resp {
    Resp::json(
        status,
        json!({"error": error, "error_description": format!("refused: {}", r.raw)}),
    )
}

fn client_authenticated(r: &Req, form: &HashMap<String, String>) -> bool {
    let basic = format!("Basic {}", B64.encode(format!("{CLIENT}:{CLIENT_SECRET}")));
    r.headers.get("authorization") == Some(&basic)
        || (form.get("client_id").map(String::as_str) == Some(CLIENT)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET))
}

/// A CSC v2 service whose `info.oauth2` is `{its URL}/as`, with a token endpoint that checks the client,
/// the grant and (for codes) the PKCE verifier against the challenge the browser saw.
fn service(challenges: Challenges) -> Fake {
    service_with(challenges, Injected::default())
}

fn service_with(challenges: Challenges, injected: Injected) -> Fake {
    service_on(challenges, injected, None)
}

/// `tls`: served over TLS with this configuration.
fn service_on(
    challenges: Challenges,
    injected: Injected,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Fake {
    let base = Arc::new(Mutex::new(String::new()));
    let b = base.clone();
    let handler = move |r: &Req| {
        let form = r.form();
        match r.path.as_str() {
            "/csc/v2/info" => Resp::json(
                200,
                json!({"specs":"2.0.0.2","name":"OAuth fake","authType":["oauth2code","oauth2client"],
                       "oauth2": format!("{}/as", b.lock().unwrap()), "methods":["credentials/list"]}),
            ),
            "/as/oauth2/token" => match injected.lock().unwrap().pop_front() {
                Some(resp) => resp,
                None => token_endpoint(r, &form, &challenges),
            },
            "/as/oauth2/revoke" => {
                if client_authenticated(r, &form) && form.contains_key("token") {
                    Resp::empty(200)
                } else {
                    oauth_error(401, "invalid_client", r)
                }
            }
            "/csc/v2/credentials/list" => {
                let auth = r.headers.get("authorization").cloned().unwrap_or_default();
                if auth.starts_with("Bearer at-") {
                    Resp::json(200, json!({"credentialIDs": ["c1"]}))
                } else {
                    Resp::json(401, json!({"error": "invalid_token"}))
                }
            }
            "/csc/v2/signatures/signHash" => {
                if r.body["SAD"] == CRED_TOKEN {
                    Resp::json(200, json!({"signatures": [B64.encode(b"sig")]}))
                } else {
                    Resp::json(
                        400,
                        json!({"error":"invalid_request","error_description":"SAD expired"}),
                    )
                }
            }
            _ => Resp::json(404, json!({"error": "invalid_request"})),
        }
    };
    let (fake, url) = match tls {
        None => {
            let f = Fake::http(handler);
            let url = f.http_url();
            (f, url)
        }
        Some(tls) => {
            let f = Fake::https(handler, tls);
            let url = f.https_url();
            (f, url)
        }
    };
    *base.lock().unwrap() = url;
    fake
}

fn token_endpoint(r: &Req, form: &HashMap<String, String>, challenges: &Challenges) -> Resp {
    let field = |k: &str| form.get(k).map(String::as_str);
    let public =
        field("grant_type") == Some("authorization_code") && field("client_id") == Some(CLIENT);
    if !client_authenticated(r, form) && !public {
        return oauth_error(401, "invalid_client", r);
    }
    match field("grant_type") {
        Some("client_credentials") if field("scope") == Some("service") => token("at-cc", None),
        Some("password")
            if field("username") == Some("alice") && field("password") == Some(PASSWORD) =>
        {
            token("at-pw", None)
        }
        Some("refresh_token") if field("refresh_token") == Some(RT1) => token("at-rt", Some(RT2)),
        Some("authorization_code") => {
            let Some(challenge) = field("code").and_then(|c| challenges.lock().unwrap().remove(c))
            else {
                return oauth_error(400, "invalid_grant", r);
            };
            let verifier = field("code_verifier").unwrap_or("");
            let computed = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge || field("redirect_uri") != Some(REDIRECT) {
                return oauth_error(400, "invalid_grant", r);
            }
            match field("code") {
                Some(CODE) => token("at-code", Some(RT1)),
                _ => token(CRED_TOKEN, None),
            }
        }
        _ => oauth_error(400, "invalid_grant", r),
    }
}

fn client(fake: &Fake, retry: RetryPolicy) -> CscClient {
    let mut cfg = loopback(&fake.http_url(), ApiVersion::V2);
    cfg.retry = retry;
    CscClient::new(&cfg).unwrap()
}

fn confidential() -> OAuth2Client {
    OAuth2Client::confidential(CLIENT, Secret::new(CLIENT_SECRET))
}

fn query(url: &str) -> HashMap<String, String> {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs().into_owned().collect()
}

/// Plays the user's browser: reads the authorization page's URL, approves, and returns the redirect.
fn approve(pending: &PendingAuthorization, code: &str, challenges: &Challenges) -> String {
    let q = query(pending.url());
    challenges
        .lock()
        .unwrap()
        .insert(code.to_owned(), q["code_challenge"].clone());
    format!("{REDIRECT}?code={code}&state={}", q["state"])
}

fn token_requests(fake: &Fake) -> Vec<Req> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path == "/as/oauth2/token")
        .collect()
}

fn assert_no_secret(text: &str) {
    for s in [
        CLIENT_SECRET,
        PASSWORD,
        RT1,
        RT2,
        CODE,
        CRED_CODE,
        CRED_TOKEN,
    ] {
        assert!(!text.contains(s), "{s} in {text}");
    }
}

#[test]
fn client_credentials_and_password_grants() {
    let fake = service(Challenges::default());
    let c = client(&fake, RetryPolicy::default());
    let auth = ServiceAuth::OAuth2 {
        client: confidential(),
        grant: OAuth2Grant::ClientCredentials,
    };
    assert!(auth.renews());
    let s = c.sign_in(&auth).unwrap();
    assert_eq!(s.expires_in, Some(Duration::from_secs(300)));
    assert_eq!(c.list_credentials(&s).unwrap(), ["c1"]);
    let t = &token_requests(&fake)[0];
    assert_eq!(t.method, "POST");
    assert_eq!(t.form()["grant_type"], "client_credentials");
    assert!(!t.form().contains_key("client_secret"), "Basic by default");
    // Found from info.oauth2, asked once.
    assert_eq!(fake.paths()[0], "/csc/v2/info");

    // The secret in the body instead, and a password grant.
    let mut body_client = confidential();
    body_client.client_auth = ClientAuthMethod::Body;
    let s = c
        .sign_in(&ServiceAuth::OAuth2 {
            client: body_client,
            grant: OAuth2Grant::Password {
                username: "alice".into(),
                password: Secret::new(PASSWORD),
            },
        })
        .unwrap();
    assert_eq!(c.list_credentials(&s).unwrap(), ["c1"]);
    let t = token_requests(&fake).pop().unwrap();
    assert_eq!(t.form()["client_secret"], CLIENT_SECRET);
    assert_eq!(t.form()["scope"], "service");
    assert!(!t.headers.contains_key("authorization"));
    assert_eq!(
        fake.paths().iter().filter(|p| p.ends_with("/info")).count(),
        1
    );
    assert_no_secret(&format!("{s:?} {auth:?}"));
}

#[test]
fn a_token_endpoint_on_another_host() {
    // The CSC service knows no OAuth 2.0 server; the token URL is configured (as for SSL.com).
    let csc = Fake::http(|r: &Req| match r.path.as_str() {
        "/csc/v2/credentials/list" => Resp::json(200, json!({"credentialIDs": ["c9"]})),
        _ => Resp::json(200, json!({"specs": "2.0.0.2", "methods": []})),
    });
    let authorization_server = service(Challenges::default());
    let c = client(&csc, RetryPolicy::default());
    let mut oauth = confidential();
    let grant = OAuth2Grant::ClientCredentials;
    let e = c
        .sign_in(&ServiceAuth::OAuth2 {
            client: oauth.clone(),
            grant: grant.clone(),
        })
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    oauth.token_url = Some(format!(
        "{}/as/oauth2/token",
        authorization_server.http_url()
    ));
    let s = c
        .sign_in(&ServiceAuth::OAuth2 {
            client: oauth,
            grant,
        })
        .unwrap();
    assert_eq!(c.list_credentials(&s).unwrap(), ["c9"]);
    assert_eq!(token_requests(&authorization_server).len(), 1);
}

#[test]
fn refresh_tokens_rotate_and_are_never_sent_twice() {
    let fake = service(Challenges::default());
    let c = client(&fake, RetryPolicy::default());
    let refresh = |rt: &str| ServiceAuth::OAuth2 {
        client: confidential(),
        grant: OAuth2Grant::RefreshToken(Secret::new(rt)),
    };
    let s = c.sign_in(&refresh(RT1)).unwrap();
    assert_eq!(s.refresh_token.as_ref().unwrap().expose(), RT2);
    let e = c.sign_in(&refresh("rt-revoked-000")).unwrap_err();
    assert_eq!(e.reason(), Reason::WrongPassword, "{e:?}");
    assert!(matches!(&e, Error::Csc { status: 400, .. }), "{e:?}");
    assert_no_secret(&format!("{e} {e:?}"));

    // A 502 may come after the server rotated: the refresh is not repeated, client credentials are.
    let injected = Injected::default();
    let fake = service_with(Challenges::default(), injected.clone());
    let retry = RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(10),
        ..Default::default()
    };
    let c = client(&fake, retry);
    injected.lock().unwrap().push_back(Resp::raw(502, ""));
    let e = c.sign_in(&refresh(RT1)).unwrap_err();
    assert!(e.maybe_processed(), "{e:?}");
    assert_eq!(token_requests(&fake).len(), 1);
    injected.lock().unwrap().push_back(Resp::raw(502, ""));
    let s = c
        .sign_in(&ServiceAuth::OAuth2 {
            client: confidential(),
            grant: OAuth2Grant::ClientCredentials,
        })
        .unwrap();
    assert!(matches!(s.access, Access::Bearer(_)));
    assert_eq!(token_requests(&fake).len(), 3);
}

#[test]
fn authorization_code_with_pkce() {
    let challenges = Challenges::default();
    let fake = service(challenges.clone());
    let c = client(&fake, RetryPolicy::default());
    let public = OAuth2Client::new(CLIENT);
    let pending = c.oauth2_authorization(&public, REDIRECT).unwrap();
    assert!(pending
        .url()
        .starts_with(&format!("{}/as/oauth2/authorize?", fake.http_url())));
    let q = query(pending.url());
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "service");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 16);
    assert_eq!(pending.redirect_uri(), REDIRECT);

    // A redirect that is not ours (another state) is refused before anything is sent.
    let e = c
        .oauth2_exchange_code(
            &public,
            &pending,
            &format!("/callback?code={CODE}&state=forged"),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    let e = c
        .oauth2_exchange_code(&public, &pending, &format!("/callback?code={CODE}"))
        .unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    assert!(token_requests(&fake).is_empty());
    // The user refused.
    let refused = format!(
        "/callback?error=access_denied&error_description=No%20thanks&state={}",
        q["state"]
    );
    let e = c
        .oauth2_exchange_code(&public, &pending, &refused)
        .unwrap_err();
    assert_eq!(e.reason(), Reason::AccessDenied, "{e:?}");
    assert!(e.to_string().contains("No thanks"));
    // A service-scope authorization cannot be exchanged for a SAD.
    let redirect = approve(&pending, CODE, &challenges);
    let e = c
        .oauth2_exchange_credential_code(&public, &pending, &redirect)
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");

    let s = c
        .oauth2_exchange_code(&public, &pending, &redirect)
        .unwrap();
    assert_eq!(s.refresh_token.as_ref().unwrap().expose(), RT1);
    assert_eq!(c.list_credentials(&s).unwrap(), ["c1"]);
    let form = token_requests(&fake)[0].form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], CODE);
    assert_eq!(form["redirect_uri"], REDIRECT);
    assert!(!form.contains_key("client_secret"));
    // A code is single use: the server has forgotten it, and the client says so.
    let e = c
        .oauth2_exchange_code(&public, &pending, &redirect)
        .unwrap_err();
    assert_eq!(e.reason(), Reason::WrongPassword);
    let verifier = form["code_verifier"].clone();
    let text = format!("{pending:?} {s:?} {e} {e:?}");
    assert_no_secret(&text);
    assert!(
        !text.contains(&verifier) && !text.contains(&q["state"]),
        "{text}"
    );
}

#[test]
fn credential_scope_yields_a_sad_for_sign_hash() {
    let challenges = Challenges::default();
    let fake = service(challenges.clone());
    let c = client(&fake, RetryPolicy::default());
    let oauth = confidential();
    let hash = vec![0xfb; 32];
    let request = AuthorizeRequest {
        credential_id: "c1".into(),
        num_signatures: 1,
        hashes: vec![hash.clone()],
        hash_algorithm_oid: Some(oid::SHA256.into()),
        description: Some("Contract".into()),
        ..Default::default()
    };
    let pending = c
        .oauth2_credential_authorization(&oauth, REDIRECT, &request)
        .unwrap();
    let q = query(pending.url());
    assert_eq!(q["scope"], "credential");
    assert_eq!(q["credentialID"], "c1");
    assert_eq!(q["numSignatures"], "1");
    assert_eq!(q["hashes"], URL_SAFE_NO_PAD.encode(&hash));
    assert_eq!(q["hashAlgorithmOID"], oid::SHA256);
    let details: serde_json::Value = serde_json::from_str(&q["authorization_details"]).unwrap();
    assert_eq!(details[0]["type"], "credential");
    assert_eq!(details[0]["documentDigests"][0]["hash"], B64.encode(&hash));
    assert_eq!(q["code_challenge_method"], "S256");

    let redirect = approve(&pending, CRED_CODE, &challenges);
    let e = c
        .oauth2_exchange_code(&oauth, &pending, &redirect)
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let sad = c
        .oauth2_exchange_credential_code(&oauth, &pending, &redirect)
        .unwrap();
    assert_eq!(sad.value.expose(), CRED_TOKEN);
    assert_eq!(sad.expires_in, Duration::from_secs(300));
    let at = c
        .sign_in(&ServiceAuth::OAuth2 {
            client: oauth.clone(),
            grant: OAuth2Grant::ClientCredentials,
        })
        .unwrap();
    let sigs = c
        .sign_hash(
            &at,
            &SignHashRequest {
                credential_id: "c1".into(),
                sad: sad.value.clone(),
                hashes: vec![hash],
                hash_algorithm_oid: oid::SHA256.into(),
                sign_algorithm_oid: oid::ECDSA_WITH_SHA256.into(),
                sign_algorithm_params: None,
            },
        )
        .unwrap();
    assert_eq!(sigs, [b"sig"]);
    assert_no_secret(&format!("{pending:?} {sad:?}"));

    // v1 wire format: `hash`, no OID, no authorization details.
    let cfg = loopback(&fake.http_url(), ApiVersion::V1);
    let v1 = CscClient::new(&cfg).unwrap();
    let mut v1_oauth = oauth;
    v1_oauth.authorize_url = Some(format!("{}/as/oauth2/authorize", fake.http_url()));
    let q = query(
        v1.oauth2_credential_authorization(&v1_oauth, REDIRECT, &request)
            .unwrap()
            .url(),
    );
    assert_eq!(q["hash"], URL_SAFE_NO_PAD.encode([0xfb; 32]));
    assert!(!q.contains_key("hashAlgorithmOID") && !q.contains_key("authorization_details"));
}

#[test]
fn wrong_client_secret_revocation_and_busy_servers() {
    let fake = service(Challenges::default());
    let c = client(&fake, RetryPolicy::default());
    let wrong = OAuth2Client::confidential(CLIENT, Secret::new("cs-wrong-000000"));
    let e = c
        .sign_in(&ServiceAuth::OAuth2 {
            client: wrong,
            grant: OAuth2Grant::ClientCredentials,
        })
        .unwrap_err();
    assert!(
        matches!(&e, Error::Csc { status: 401, method, .. } if method == "oauth2/token"),
        "{e:?}"
    );
    assert_eq!(e.reason(), Reason::WrongPassword);
    assert_no_secret(&format!("{e} {e:?}"));
    assert!(!format!("{e}").contains("cs-wrong"));

    // RFC 7009 revocation: oauth2 insists on https, so this part runs over TLS.
    let pki = crate::fake::Pki::new("OAuth CA");
    let fake = service_on(
        Challenges::default(),
        Injected::default(),
        Some(pki.server_config(None)),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let mut cfg = ClientConfig::new(fake.https_url());
    cfg.api_version = ApiVersion::V2;
    cfg.ca_file = Some(ca);
    let c = CscClient::new(&cfg).unwrap();
    c.oauth2_revoke(&confidential(), &Secret::new(RT2), "refresh_token")
        .unwrap();
    let revoke = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/as/oauth2/revoke")
        .unwrap();
    assert_eq!(revoke.form()["token"], RT2);
    assert_eq!(revoke.form()["token_type_hint"], "refresh_token");
    assert!(c
        .oauth2_revoke(&confidential(), &Secret::new(RT2), "id_token")
        .is_err());

    // A busy token endpoint: Retry-After honoured for a grant that may be repeated.
    let injected = Injected::default();
    let fake = service_with(Challenges::default(), injected.clone());
    injected.lock().unwrap().push_back(
        Resp::json(503, json!({"error": "temporarily_unavailable"})).header("Retry-After", "1"),
    );
    let retry = RetryPolicy {
        attempts: 2,
        ..Default::default()
    };
    let c = client(&fake, retry);
    let started = std::time::Instant::now();
    c.sign_in(&ServiceAuth::OAuth2 {
        client: confidential(),
        grant: OAuth2Grant::ClientCredentials,
    })
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(token_requests(&fake).len(), 2);
}
