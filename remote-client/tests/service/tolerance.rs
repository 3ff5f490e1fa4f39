//! What real services do differently: `certInfo` refused (certomancer-csc-dummy answers 501), v2's
//! `credentialInfos` in the list, `info.methods`, `credentials/extendTransaction` in both versions.

use crate::fake::{Fake, Req, Resp};
use crate::loopback;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use remote_client::*;
use serde_json::{json, Value};

const ACCESS: &str = "at-0123456789";
const SAD: &str = "sad-abcdef123456";
const NEW_SAD: &str = "sad-extended-7890";

fn info_body(id: &str) -> Value {
    json!({"credentialID": id, "key":{"status":"enabled","algo":[oid::ECDSA_WITH_SHA256],"len":256},
           "cert":{"certificates":[B64.encode(format!("cert of {id}"))]},
           "authMode":"implicit","multisign":10,"SCAL":"2"})
}

fn client(fake: &Fake, version: ApiVersion) -> CscClient {
    CscClient::new(&loopback(&fake.http_url(), version)).unwrap()
}

fn bodies(fake: &Fake, method: &str) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.ends_with(method))
        .map(|r| r.body)
        .collect()
}

#[test]
fn cert_info_refused_is_asked_without_it_once_and_remembered() {
    for (version, refusal) in [
        (ApiVersion::V1, Resp::raw(501, "")),
        (
            ApiVersion::V2,
            Resp::json(
                400,
                json!({"error":"invalid_request","error_description":"certInfo"}),
            ),
        ),
    ] {
        let refusal = std::sync::Mutex::new(Some(refusal));
        let fake = Fake::http(move |r: &Req| {
            if r.body["credentialID"] == "unknown" {
                return Resp::json(
                    400,
                    json!({"error":"invalid_request","error_description":"Invalid parameter credentialID"}),
                );
            }
            if r.body["certInfo"] == true {
                let mut slot = refusal.lock().unwrap();
                // The refusal, then (a service that would have answered) a 200 nobody must ask for.
                return slot.take().unwrap_or_else(|| Resp::raw(500, "asked again"));
            }
            Resp::json(200, info_body("testca/signer-rsa"))
        });
        let c = client(&fake, version);
        let at = Secret::new(ACCESS);
        // An unknown credential is refused both ways and teaches nothing.
        let e = c.credential_info(&at, "unknown").unwrap_err();
        assert_eq!(e.reason(), Reason::InvalidRequest, "{e:?}");
        let info = c.credential_info(&at, "testca/signer-rsa").unwrap();
        assert_eq!(info.certificates, [b"cert of testca/signer-rsa".to_vec()]);
        assert_eq!(info.subject_dn, None);
        assert_eq!(info.valid_to, None);
        assert_eq!(info.auth.mode, AuthMode::Implicit);
        assert_eq!(info.scal, Scal::Two);
        c.credential_info(&at, "testca/signer-rsa").unwrap();
        let cert_info: Vec<Value> = bodies(&fake, "credentials/info")
            .into_iter()
            .map(|b| b["certInfo"].clone())
            .collect();
        // unknown: true, false; the credential: true (refused), false; then false at once.
        assert_eq!(
            cert_info,
            [
                json!(true),
                json!(false),
                json!(true),
                json!(false),
                json!(false)
            ],
            "{version:?}"
        );
    }
}

/// A v2 service whose list carries `credentialInfos` for all but `c3`, one of them unreadable.
fn v2_listing(r: &Req) -> Resp {
    if r.path.ends_with("credentials/list") {
        let mut body = json!({"credentialIDs": ["c1", "c2", "c3"]});
        if r.body["credentialInfo"] == true {
            let mut bad = info_body("c2");
            bad["SCAL"] = json!("3");
            body["credentialInfos"] = json!([info_body("c1"), bad]);
        }
        return Resp::json(200, body);
    }
    let id = r.body["credentialID"].as_str().unwrap_or("").to_owned();
    Resp::json(200, info_body(&id))
}

#[test]
fn credential_infos_from_the_list_when_offered() {
    let fake = Fake::http(v2_listing);
    let c = client(&fake, ApiVersion::V2);
    let listed = c.list_credential_infos(&Secret::new(ACCESS)).unwrap();
    let ids: Vec<&str> = listed.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert_eq!(listed[0].info.as_ref().unwrap().multisign, 10);
    let e = listed[1].info.as_ref().unwrap_err();
    assert!(
        matches!(e, Error::Protocol(m) if m.contains("SCAL")),
        "{e:?}"
    );
    assert_eq!(listed[2].info.as_ref().unwrap().id, "c3");
    assert_eq!(
        fake.paths(),
        ["/csc/v2/credentials/list", "/csc/v2/credentials/info"],
        "one list, and info only for the credential the list left out"
    );
    assert_eq!(
        bodies(&fake, "credentials/list")[0],
        json!({"credentialInfo":true,"certificates":"chain","certInfo":true,"authInfo":true})
    );
    assert_eq!(bodies(&fake, "credentials/info")[0]["credentialID"], "c3");

    // v1 has no credentialInfo: the list, then one info per credential.
    let fake = Fake::http(v2_listing);
    let c = client(&fake, ApiVersion::V1);
    let listed = c.list_credential_infos(&Secret::new(ACCESS)).unwrap();
    assert!(listed.iter().all(|l| l.info.is_ok()));
    assert_eq!(bodies(&fake, "credentials/list"), [json!({})]);
    assert_eq!(bodies(&fake, "credentials/info").len(), 3);
}

#[test]
fn a_v2_list_that_refuses_credential_info_falls_back() {
    let fake = Fake::http(|r: &Req| {
        if r.path.ends_with("credentials/list") && r.body["credentialInfo"] == true {
            return Resp::raw(501, "");
        }
        v2_listing(r)
    });
    let c = client(&fake, ApiVersion::V2);
    let listed = c.list_credential_infos(&Secret::new(ACCESS)).unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|l| l.info.is_ok()));
    assert_eq!(bodies(&fake, "credentials/list").len(), 2);
    assert_eq!(bodies(&fake, "credentials/info").len(), 3);
}

#[test]
fn methods_the_service_offers() {
    let fake = Fake::http(|r: &Req| {
        let methods = if r.path.contains("/v1/") {
            json!([])
        } else {
            json!(["auth/login", "credentials/list", "/signatures/signHash"])
        };
        Resp::json(
            200,
            json!({"specs":"2.0.0.2","name":"m","methods": methods}),
        )
    });
    let c = client(&fake, ApiVersion::V2);
    assert!(c.offers("credentials/list").unwrap());
    assert!(c.offers("signatures/signHash").unwrap());
    assert!(!c.offers("credentials/extendTransaction").unwrap());
    assert!(!c.offers("credentials/getChallenge").unwrap());
    assert_eq!(fake.paths(), ["/csc/v2/info"], "asked once");
    // Auto detection's info serves too.
    let c = client(&fake, ApiVersion::Auto);
    assert_eq!(c.api_version().unwrap(), ApiVersion::V2);
    assert!(!c.offers("credentials/extendTransaction").unwrap());
    assert_eq!(fake.paths().len(), 2);
    // A service that lists nothing says nothing.
    let c = client(&fake, ApiVersion::V1);
    assert!(c.offers("credentials/extendTransaction").unwrap());
}

#[test]
fn extend_transaction_in_both_versions() {
    let fake = Fake::http(|r: &Req| {
        if r.body["SAD"] == SAD {
            Resp::json(200, json!({"SAD": NEW_SAD, "expiresIn": 8_208_000}))
        } else {
            Resp::json(
                400,
                json!({"error":"invalid_request","error_description":"SAD expired"}),
            )
        }
    });
    let at = Secret::new(ACCESS);
    let hash = vec![7u8; 32];
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client(&fake, version);
        let sad = c
            .extend_transaction(
                &at,
                "c1",
                std::slice::from_ref(&hash),
                Some(oid::SHA256),
                &Secret::new(SAD),
            )
            .unwrap();
        assert_eq!(sad.value.expose(), NEW_SAD);
        assert_eq!(sad.expires_in.as_secs(), 8_208_000);
        let sad = c
            .extend_transaction(&at, "c1", &[], None, &Secret::new(SAD))
            .unwrap();
        assert_eq!(sad.value.expose(), NEW_SAD);
        let e = c
            .extend_transaction(&at, "c1", &[], None, &Secret::new("sad-stale-000"))
            .unwrap_err();
        assert_eq!(e.reason(), Reason::SadExpired);
    }
    let sent = bodies(&fake, "credentials/extendTransaction");
    let h = B64.encode(&hash);
    assert_eq!(sent[0], json!({"credentialID":"c1","hash":[h],"SAD":SAD}));
    assert_eq!(sent[1], json!({"credentialID":"c1","SAD":SAD}));
    assert_eq!(
        sent[3],
        json!({"credentialID":"c1","hashes":[h],"hashAlgorithmOID":oid::SHA256,"SAD":SAD})
    );
    assert_eq!(sent[4], json!({"credentialID":"c1","SAD":SAD}));
    assert!(fake.paths()[..3].iter().all(|p| p.starts_with("/csc/v1/")));
    // v2 needs the algorithm with hashes: refused before sending.
    let c = client(&fake, ApiVersion::V2);
    let e = c
        .extend_transaction(&at, "c1", &[hash], None, &Secret::new(SAD))
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)));
    assert_eq!(bodies(&fake, "credentials/extendTransaction").len(), 6);
}
