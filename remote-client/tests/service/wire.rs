//! The client against a scripted service: exact v1/v2 request bodies and headers, version detection,
//! asynchronous authorization, error mapping, timeouts, TLS trust and mutual TLS, connection reuse.

use crate::fake::{Fake, Pki, Req, Resp};
use crate::loopback;
use crate::transport_kind;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use remote_client::*;
use serde_json::json;
use std::time::Duration;

const PIN: &str = "pin-7391";
const OTP: &str = "otp-554433";
const PASSWORD: &str = "pw-Correct-Horse";
const ACCESS: &str = "at-0123456789";
const REFRESH: &str = "rt-9876543210";
const SAD: &str = "sad-abcdef123456";

fn client(url: &str, version: ApiVersion) -> CscClient {
    let cfg = loopback(url, version);
    CscClient::new(&cfg).unwrap()
}

fn basic(user: &str, pw: &str) -> String {
    format!("Basic {}", B64.encode(format!("{user}:{pw}")))
}

fn strip_prefix(path: &str) -> &str {
    path.split_once("/csc/").map(|(_, p)| p).unwrap_or(path)
}

/// A well-behaved service for both versions; anything it does not know is a CSC error.
fn service(req: &Req) -> Resp {
    let path = strip_prefix(&req.path);
    let (version, method) = path.split_once('/').unwrap();
    let bearer_ok =
        req.headers.get("authorization").map(String::as_str) == Some(&format!("Bearer {ACCESS}"));
    let needs_token = !matches!(method, "info" | "auth/login");
    if needs_token && !bearer_ok {
        return Resp::json(
            401,
            json!({"error":"invalid_token","error_description":"bad token"}),
        );
    }
    let b = &req.body;
    match method {
        "info" => Resp::json(
            200,
            json!({"specs": if version == "v1" {"1.0.4.0"} else {"2.0.0.2"}, "name":"Fake",
                   "authType":["basic"],"methods":["auth/login"],
                   "signAlgorithms":{"algos":["1.2.840.10045.4.3.2"]}}),
        ),
        "auth/login" => {
            let basic_ok = req.headers.get("authorization") == Some(&basic("alice", PASSWORD));
            let refresh_ok = b["refresh_token"] == REFRESH;
            if basic_ok || refresh_ok {
                Resp::json(
                    200,
                    json!({"access_token":ACCESS,"refresh_token":REFRESH,"expires_in":3600}),
                )
            } else {
                Resp::json(
                    401,
                    json!({"error":"access_denied","error_description":"Invalid username or password"}),
                )
            }
        }
        "auth/revoke" => Resp::empty(204),
        "credentials/list" => match b["pageToken"].as_str() {
            None => Resp::json(
                200,
                json!({"credentialIDs":["c1","c2"],"nextPageToken":"p2"}),
            ),
            Some("p2") => Resp::json(200, json!({"credentialIDs":["c3"]})),
            Some(_) => Resp::json(400, json!({"error":"invalid_request"})),
        },
        "credentials/info" => Resp::json(
            200,
            json!({"key":{"status":"enabled","algo":["1.2.840.10045.4.3.2"],"len":256,
                          "curve":"1.2.840.10045.3.1.7"},
                   "cert":{"certificates":[B64.encode(b"leaf"), B64.encode(b"ca")]},
                   "auth":{"mode":"explicit","expression":"PIN AND OTP",
                           "objects":[{"id":"PIN","format":"N"},{"id":"OTP","generator":"totp","length":6}]},
                   "authMode":"explicit","PIN":{"presence":"true"},
                   "OTP":{"presence":"true","type":"online","length":8},
                   "multisign":5,"SCAL":"1"}),
        ),
        "credentials/sendOTP" | "credentials/getChallenge" => Resp::empty(204),
        "credentials/authorize" | "credentials/extendTransaction" => {
            Resp::json(200, json!({"SAD":SAD,"expiresIn":120}))
        }
        "signatures/signHash" => {
            let hashes = if version == "v1" {
                &b["hash"]
            } else {
                &b["hashes"]
            };
            let sigs: Vec<String> = hashes
                .as_array()
                .unwrap()
                .iter()
                .map(|h| B64.encode(format!("sig:{}", h.as_str().unwrap())))
                .collect();
            Resp::json(200, json!({ "signatures": sigs }))
        }
        _ => Resp::json(
            404,
            json!({"error":"invalid_request","error_description":"no such method"}),
        ),
    }
}

fn full_flow(c: &CscClient) -> Vec<Vec<u8>> {
    let tokens = c.login("alice", &Secret::new(PASSWORD), true).unwrap();
    assert_eq!(tokens.access_token.expose(), ACCESS);
    let refreshed = c.refresh(tokens.refresh_token.as_ref().unwrap()).unwrap();
    let at = refreshed.access_token;
    assert_eq!(c.list_credentials(&at).unwrap(), ["c1", "c2", "c3"]);
    let info = c.credential_info(&at, "c1").unwrap();
    assert_eq!(info.certificates, [b"leaf".to_vec(), b"ca".to_vec()]);
    assert_eq!(info.multisign, 5);
    c.send_otp_with_description(&at, "c1", Some("Sign invoice 42"))
        .unwrap();
    let grant = c
        .authorize(
            &at,
            &AuthorizeRequest {
                credential_id: "c1".into(),
                num_signatures: 2,
                hashes: vec![vec![1; 32], vec![2; 32]],
                hash_algorithm_oid: Some(oid::SHA256.into()),
                pin: Some(Secret::new(PIN)),
                otp: Some(Secret::new(OTP)),
                description: Some("two documents".into()),
                client_data: None,
            },
        )
        .unwrap();
    let sad = match grant {
        Authorization::Granted(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(sad.value.expose(), SAD);
    assert_eq!(sad.expires_in, Duration::from_secs(120));
    let sad = c
        .extend_transaction(&at, "c1", &[vec![3; 32]], Some(oid::SHA256), &sad.value)
        .unwrap();
    let sigs = c
        .sign_hash(
            &at,
            &SignHashRequest {
                credential_id: "c1".into(),
                sad: sad.value,
                hashes: vec![vec![1; 32], vec![2; 32]],
                hash_algorithm_oid: oid::SHA256.into(),
                sign_algorithm_oid: oid::RSASSA_PSS.into(),
                sign_algorithm_params: Some(vec![0x30, 0x00]),
            },
        )
        .unwrap();
    c.revoke(&at, &at, "access_token").unwrap();
    sigs
}

fn body_of(fake: &Fake, method: &str) -> serde_json::Value {
    fake.requests()
        .into_iter()
        .find(|r| strip_prefix(&r.path).ends_with(method))
        .unwrap_or_else(|| panic!("no {method} request"))
        .body
}

#[test]
fn v2_wire_format_and_one_connection() {
    let fake = Fake::http(service);
    let c = client(&format!("{}/tenant", fake.http_url()), ApiVersion::V2);
    let sigs = full_flow(&c);
    let h1 = B64.encode([1u8; 32]);
    let h2 = B64.encode([2u8; 32]);
    assert_eq!(sigs[0], format!("sig:{h1}").into_bytes());
    assert_eq!(sigs[1], format!("sig:{h2}").into_bytes());

    assert!(fake
        .paths()
        .iter()
        .all(|p| p.starts_with("/tenant/csc/v2/")));
    let reqs = fake.requests();
    assert!(reqs.iter().all(|r| r.method == "POST"));
    assert_eq!(reqs[0].headers["authorization"], basic("alice", PASSWORD));
    assert_eq!(reqs[0].headers["content-type"], "application/json");
    assert_eq!(reqs[0].body, json!({"rememberMe": true}));
    assert!(!reqs[1].headers.contains_key("authorization"));
    assert_eq!(
        reqs[1].body,
        json!({"refresh_token": REFRESH, "rememberMe": false})
    );
    assert_eq!(
        body_of(&fake, "credentials/info"),
        json!({"credentialID":"c1","certificates":"chain","certInfo":true,"authInfo":true})
    );
    assert_eq!(
        body_of(&fake, "credentials/getChallenge"),
        json!({"credentialID":"c1","description":"Sign invoice 42"})
    );
    assert_eq!(
        body_of(&fake, "credentials/authorize"),
        json!({"credentialID":"c1","numSignatures":2,"hashes":[h1, h2],
               "hashAlgorithmOID":oid::SHA256,
               "authData":[{"id":"PIN","value":PIN},{"id":"OTP","value":OTP}],
               "description":"two documents"})
    );
    assert_eq!(
        body_of(&fake, "credentials/extendTransaction"),
        json!({"credentialID":"c1","hashes":[B64.encode([3u8; 32])],
               "hashAlgorithmOID":oid::SHA256,"SAD":SAD})
    );
    assert_eq!(
        body_of(&fake, "signatures/signHash"),
        json!({"credentialID":"c1","SAD":SAD,"hashes":[h1, h2],"hashAlgorithmOID":oid::SHA256,
               "signAlgo":oid::RSASSA_PSS,"signAlgoParams":"MAA=","operationMode":"S"})
    );
    assert_eq!(
        body_of(&fake, "auth/revoke"),
        json!({"token":ACCESS,"token_type_hint":"access_token"})
    );
    // v2 prefers `auth` over the v1 fields the fake also sends.
    let at = Secret::new(ACCESS);
    let info = c.credential_info(&at, "c1").unwrap();
    assert_eq!(info.auth.otp.unwrap().otp_type, OtpType::Offline);
    // Every request went over the one kept-alive connection.
    assert_eq!(fake.connections(), 1, "{:?}", fake.paths());
}

#[test]
fn v1_wire_format() {
    let fake = Fake::http(service);
    let c = client(&fake.http_url(), ApiVersion::V1);
    full_flow(&c);
    assert!(fake.paths().iter().all(|p| p.starts_with("/csc/v1/")));
    let h1 = B64.encode([1u8; 32]);
    let h2 = B64.encode([2u8; 32]);
    assert_eq!(
        body_of(&fake, "credentials/sendOTP"),
        json!({"credentialID":"c1","description":"Sign invoice 42"})
    );
    assert_eq!(
        body_of(&fake, "credentials/authorize"),
        json!({"credentialID":"c1","numSignatures":2,"hash":[h1, h2],"PIN":PIN,"OTP":OTP,
               "description":"two documents"})
    );
    assert_eq!(
        body_of(&fake, "credentials/extendTransaction"),
        json!({"credentialID":"c1","hash":[B64.encode([3u8; 32])],"SAD":SAD})
    );
    assert_eq!(
        body_of(&fake, "signatures/signHash"),
        json!({"credentialID":"c1","SAD":SAD,"hash":[h1, h2],"hashAlgo":oid::SHA256,
               "signAlgo":oid::RSASSA_PSS,"signAlgoParams":"MAA="})
    );
    let info = c.credential_info(&Secret::new(ACCESS), "c1").unwrap();
    let otp = info.auth.otp.unwrap();
    assert_eq!(otp.otp_type, OtpType::Online);
    assert_eq!(otp.factor.length, Some(8));
    let e = c
        .authorize_check(&Secret::new(ACCESS), &Secret::new("h"))
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

/// `service` behind an API base that does not say the version: `/documentmanager/csc/v0/{method}`
/// answered as `version` would be.
fn at_api_base(version: &'static str) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    move |r: &Req| {
        let mut r = r.clone();
        r.path = r
            .path
            .replace("/documentmanager/csc/v0/", &format!("/csc/{version}/"));
        service(&r)
    }
}

fn api_base_client(fake: &Fake, version: ApiVersion) -> CscClient {
    let mut cfg = ClientConfig::new("https://unused.invalid");
    cfg.api_base = Some(format!("{}/documentmanager/csc/v0", fake.http_url()));
    cfg.api_version = version;
    cfg.allow_loopback_http = true;
    cfg.request_timeout = Duration::from_secs(5);
    CscClient::new(&cfg).unwrap()
}

#[test]
fn explicit_api_base_with_either_wire_format() {
    let fake = Fake::http(at_api_base("v1"));
    let c = api_base_client(&fake, ApiVersion::V1);
    full_flow(&c);
    assert!(fake
        .paths()
        .iter()
        .all(|p| p.starts_with("/documentmanager/csc/v0/")));
    assert_eq!(
        body_of(&fake, "credentials/extendTransaction"),
        json!({"credentialID":"c1","hash":[B64.encode([3u8; 32])],"SAD":SAD})
    );

    // Auto: one `info` at the base, its specs decide.
    let c = api_base_client(&fake, ApiVersion::Auto);
    assert_eq!(c.api_version().unwrap(), ApiVersion::V1);
    let fake = Fake::http(at_api_base("v2"));
    let c = api_base_client(&fake, ApiVersion::Auto);
    assert_eq!(c.api_version().unwrap(), ApiVersion::V2);
    assert_eq!(fake.paths(), ["/documentmanager/csc/v0/info"]);
    full_flow(&c);
    assert_eq!(
        body_of(&fake, "credentials/extendTransaction"),
        json!({"credentialID":"c1","hashes":[B64.encode([3u8; 32])],
               "hashAlgorithmOID":oid::SHA256,"SAD":SAD})
    );
}

#[test]
fn auto_detection() {
    // A v2 service.
    let fake = Fake::http(service);
    let c = client(&fake.http_url(), ApiVersion::Auto);
    assert_eq!(c.api_version().unwrap(), ApiVersion::V2);
    assert_eq!(c.api_version().unwrap(), ApiVersion::V2);
    assert_eq!(c.info().unwrap().specs, "2.0.0.2");
    assert_eq!(fake.paths(), ["/csc/v2/info", "/csc/v2/info"]);

    // A v1-only service: v2 is a 404 without a CSC body.
    let fake = Fake::http(|r: &Req| {
        if r.path.contains("/v2/") {
            Resp::raw(404, "<html>not found</html>")
        } else {
            service(r)
        }
    });
    let c = client(&fake.http_url(), ApiVersion::Auto);
    let t = c.login("alice", &Secret::new(PASSWORD), false).unwrap();
    assert_eq!(t.access_token.expose(), ACCESS);
    assert_eq!(c.api_version().unwrap(), ApiVersion::V1);
    assert_eq!(
        fake.paths(),
        ["/csc/v2/info", "/csc/v1/info", "/csc/v1/auth/login"]
    );

    // A v1 service that answers on the v2 path too.
    let fake =
        Fake::http(|_: &Req| Resp::json(200, json!({"specs":"1.0.4.0","name":"old","methods":[]})));
    let c = client(&fake.http_url(), ApiVersion::Auto);
    assert_eq!(c.api_version().unwrap(), ApiVersion::V1);

    // Nothing answers: a transport error, not cached.
    let c = client(&format!("http://{}", closed_port()), ApiVersion::Auto);
    let e = c.api_version().unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportKind::Unreachable),
        "{e:?}"
    );
}

#[test]
fn asynchronous_authorization() {
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p = polls.clone();
    let fake = Fake::http(move |r: &Req| match strip_prefix(&r.path) {
        "v2/credentials/authorize" => Resp::json(202, json!({"handle":"hdl-000111"})),
        "v2/credentials/authorizeCheck" => {
            assert_eq!(r.body, json!({"handle":"hdl-000111"}));
            if p.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                Resp::empty(202)
            } else {
                Resp::json(200, json!({"SAD":SAD,"expiresIn":60}))
            }
        }
        _ => Resp::json(404, json!({"error":"invalid_request"})),
    });
    let c = client(&fake.http_url(), ApiVersion::V2);
    let at = Secret::new(ACCESS);
    let req = AuthorizeRequest {
        credential_id: "c1".into(),
        num_signatures: 1,
        ..Default::default()
    };
    let handle = match c.authorize(&at, &req).unwrap() {
        Authorization::Pending { handle } => handle,
        other => panic!("{other:?}"),
    };
    assert_eq!(handle.expose(), "hdl-000111");
    assert!(matches!(
        c.authorize_check(&at, &handle).unwrap(),
        Authorization::Pending { .. }
    ));
    match c.authorize_check(&at, &handle).unwrap() {
        Authorization::Granted(s) => assert_eq!(s.value.expose(), SAD),
        other => panic!("{other:?}"),
    }
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

#[test]
fn errors_are_classified_and_carry_no_secret() {
    let fake = Fake::http(|r: &Req| match strip_prefix(&r.path) {
        "v2/credentials/authorize" => Resp::json(
            400,
            json!({"error":"invalid_pin",
                   "error_description": format!("Invalid PIN {PIN} with OTP {OTP}")}),
        ),
        "v2/credentials/extendTransaction" => Resp::raw(200, &format!(r#"{{"SAD":["{SAD}"]}}"#)),
        "v2/signatures/signHash" => {
            Resp::json(200, json!({"signatures":[B64.encode(b"only one")]}))
        }
        "v2/credentials/info" => Resp::raw(200, "<html>oops</html>"),
        "v2/auth/login" => Resp::json(
            401,
            json!({"error":"access_denied","error_description":"Invalid username or password"}),
        ),
        "v2/credentials/list" => Resp::raw(302, "").header("Location", "https://elsewhere.test/"),
        _ => Resp::raw(503, "busy"),
    });
    let c = client(&fake.http_url(), ApiVersion::V2);
    let at = Secret::new(ACCESS);
    let mut texts = Vec::new();

    let e = c
        .authorize(
            &at,
            &AuthorizeRequest {
                credential_id: "c1".into(),
                num_signatures: 1,
                hashes: vec![],
                hash_algorithm_oid: None,
                pin: Some(Secret::new(PIN)),
                otp: Some(Secret::new(OTP)),
                description: None,
                client_data: None,
            },
        )
        .unwrap_err();
    assert_eq!(e.reason(), Reason::PinIncorrect);
    assert!(matches!(
        &e,
        Error::Csc {
            status: 400,
            code: CscErrorCode::InvalidPin,
            ..
        }
    ));
    texts.push(format!("{e} {e:?}"));

    let e = c
        .extend_transaction(&at, "c1", &[], None, &Secret::new(SAD))
        .unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    texts.push(format!("{e} {e:?}"));

    let e = c
        .sign_hash(
            &at,
            &SignHashRequest {
                credential_id: "c1".into(),
                sad: Secret::new(SAD),
                hashes: vec![vec![1; 32], vec![2; 32]],
                hash_algorithm_oid: oid::SHA256.into(),
                sign_algorithm_oid: oid::ECDSA_WITH_SHA256.into(),
                sign_algorithm_params: None,
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("1 signatures for 2 hashes"), "{e}");
    texts.push(format!("{e} {e:?}"));

    let e = c.credential_info(&at, "c1").unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    assert_eq!(e.reason(), Reason::Transport);

    let e = c.login("alice", &Secret::new(PASSWORD), false).unwrap_err();
    assert_eq!(e.reason(), Reason::WrongPassword);
    texts.push(format!("{e} {e:?}"));

    // Redirects are not followed: the PIN must not travel to another host.
    let e = c.list_credentials(&at).unwrap_err();
    assert!(matches!(e, Error::Http { status: 302, .. }), "{e:?}");

    let e = c.info().unwrap_err();
    assert!(matches!(e, Error::Http { status: 503, .. }), "{e:?}");
    assert!(e.is_retryable());

    for t in &texts {
        for s in [PIN, OTP, PASSWORD, ACCESS, SAD] {
            assert!(!t.contains(s), "{s} leaked in {t}");
        }
    }
    assert!(fake.paths().iter().all(|p| !p.contains("elsewhere")));
}

#[test]
fn timeouts_and_unreachable() {
    let fake = Fake::http(|_r: &Req| {
        Resp::json(200, json!({"specs":"2.0.0.2"})).delayed(Duration::from_secs(3))
    });
    let mut cfg = loopback(&fake.http_url(), ApiVersion::V2);
    cfg.request_timeout = Duration::from_millis(300);
    let c = CscClient::new(&cfg).unwrap();
    let started = std::time::Instant::now();
    let e = c.info().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(transport_kind(&e), Some(TransportKind::Timeout), "{e:?}");
    assert_eq!(e.reason(), Reason::Transport);
    assert!(e.is_retryable());

    let c = client(&format!("http://{}", closed_port()), ApiVersion::V2);
    let e = c.info().unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportKind::Unreachable),
        "{e:?}"
    );
}

fn tls_client(
    url: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> (CscClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let mut cfg = ClientConfig::new(url);
    cfg.api_version = ApiVersion::V2;
    cfg.ca_file = Some(ca);
    cfg.request_timeout = Duration::from_secs(5);
    if let Some((cert, key)) = identity {
        let cert_file = dir.path().join("client.pem");
        let key_file = dir.path().join("client.key");
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        cfg.client_identity = Some(ClientIdentity {
            cert_file,
            key_file,
        });
    }
    (CscClient::new(&cfg).unwrap(), dir)
}

#[test]
fn tls_trust_and_mutual_tls() {
    let server_pki = Pki::new("Server CA");
    let other_pki = Pki::new("Other CA");
    let fake = Fake::https(service, server_pki.server_config(None));

    let (c, _d) = tls_client(&fake.https_url(), &server_pki.ca_pem, None);
    assert_eq!(c.info().unwrap().specs, "2.0.0.2");
    c.info().unwrap();
    assert_eq!(fake.connections(), 1, "TLS connection reused");

    let (c, _d) = tls_client(&fake.https_url(), &other_pki.ca_pem, None);
    let e = c.info().unwrap_err();
    assert_eq!(transport_kind(&e), Some(TransportKind::Tls), "{e:?}");
    assert!(!e.is_retryable());

    // The certificate is for 127.0.0.1, not localhost.
    let url = fake.https_url().replace("127.0.0.1", "localhost");
    let (c, _d) = tls_client(&url, &server_pki.ca_pem, None);
    let e = c.info().unwrap_err();
    assert_eq!(transport_kind(&e), Some(TransportKind::Tls), "{e:?}");

    // Mutual TLS: the service only talks to clients with a certificate from client_pki.
    let client_pki = Pki::new("Client CA");
    let mtls = Fake::https(service, server_pki.server_config(Some(&client_pki)));
    let (_, _, cert_pem, key_pem) = client_pki.leaf(&["client.test"]);
    let (c, _d) = tls_client(
        &mtls.https_url(),
        &server_pki.ca_pem,
        Some((&cert_pem, &key_pem)),
    );
    assert_eq!(c.info().unwrap().specs, "2.0.0.2");
    let (c, _d) = tls_client(&mtls.https_url(), &server_pki.ca_pem, None);
    let e = c.info().unwrap_err();
    assert_eq!(transport_kind(&e), Some(TransportKind::Tls), "{e:?}");
    let (_, _, cert_pem, key_pem) = other_pki.leaf(&["client.test"]);
    let (c, _d) = tls_client(
        &mtls.https_url(),
        &server_pki.ca_pem,
        Some((&cert_pem, &key_pem)),
    );
    assert!(c.info().is_err());
}

#[test]
fn https_client_refuses_plain_http_service() {
    let fake = Fake::http(service);
    let pki = Pki::new("CA");
    let url = format!("https://{}", fake.addr);
    let (c, _d) = tls_client(&url, &pki.ca_pem, None);
    let e = c.info().unwrap_err();
    assert_eq!(transport_kind(&e), Some(TransportKind::Tls), "{e:?}");
}
