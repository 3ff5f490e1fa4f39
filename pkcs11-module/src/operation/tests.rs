//! The path of a signature through the fake service: batches, faults the service can produce, and what
//! the application gets back for each.

use super::sign;
use crate::config::TokenConfig;
use crate::error::CkResult;
use crate::mechanism::Mechanism;
use crate::service::fake::{self, FakeService, Fault, Method};
use crate::service::{Secret, Service};
use crate::token::Token;
use cryptoki_sys::*;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub(super) fn token(fake: &Arc<FakeService>, extra: &str) -> Arc<Token> {
    let config: TokenConfig = toml::from_str(&format!(
        "label = \"Fake\"\nurl = \"https://fake.invalid\"\naccount = \"a\"\n\
         password_file = \"/nonexistent\"\n{extra}"
    ))
    .unwrap();
    let fake = fake.clone();
    Arc::new(Token::with_service(
        0,
        config,
        Arc::new(AtomicU64::new(1)),
        Box::new(move || Ok(fake.clone() as Arc<dyn Service>)),
    ))
}

pub(super) fn logged_in(fake: &Arc<FakeService>, extra: &str) -> Arc<Token> {
    let t = token(fake, extra);
    t.login.login_user(Secret::new(fake::PIN)).unwrap();
    t
}

pub(super) fn private_key(t: &Token) -> CK_OBJECT_HANDLE {
    let loaded = t.loaded().unwrap();
    loaded
        .objects
        .iter()
        .find(|o| o.object.class() == CKO_PRIVATE_KEY)
        .unwrap()
        .handle
}

pub(super) fn sign(t: &Arc<Token>, data: &[u8]) -> CkResult<Vec<u8>> {
    let op = sign::init(t, &Mechanism::new(CKM_ECDSA_SHA256), private_key(t))?;
    let parts = op.plan.request_for_data(data)?;
    sign::execute(t, op, parts, &|| false)
}

/// Checks a raw r||s P-256 signature over SHA-256(`data`) against the credential's certificate, with
/// the `p256` crate directly (not through the module's own check).
pub(super) fn verifies(t: &Token, data: &[u8], sig: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePublicKey;
    let loaded = t.loaded().unwrap();
    let cert = &loaded.credentials[0].info.certificates[0];
    let cert = <x509_cert::Certificate as der::Decode>::from_der(cert).unwrap();
    let spki = der::Encode::to_der(cert.tbs_certificate().subject_public_key_info()).unwrap();
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
    let Ok(sig) = p256::ecdsa::Signature::from_slice(sig) else {
        return false;
    };
    key.verify(data, &sig).is_ok()
}

#[test]
fn signatures_share_one_batch_authorization() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "batch_size = 3");
    for i in 0..4u8 {
        let sig = sign(&t, &[i]).unwrap();
        assert!(verifies(&t, &[i], &sig), "signature {i}");
    }
    assert_eq!(fake.calls(Method::Authorize), 2, "3 + 1 signatures");
    assert_eq!(fake.calls(Method::Sign), 4);
}

#[test]
fn concurrent_signers_share_one_authorization() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "batch_size = 20");
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let t = &t;
            s.spawn(move || {
                let sig = sign(t, &[i]).unwrap();
                assert!(verifies(t, &[i], &sig));
            });
        }
    });
    assert_eq!(fake.calls(Method::Authorize), 1);
}

#[test]
fn transient_failures_while_loading_are_retried() {
    let fake = Arc::new(FakeService::new());
    fake.inject(Method::List, Fault::Fail(fake::unavailable()));
    fake.inject(
        Method::Info,
        Fault::Fail(fake::server_error("credentials/info")),
    );
    let t = logged_in(&fake, "");
    assert_eq!(t.loaded().unwrap().credentials.len(), 1);
    assert!(sign(&t, b"x").is_ok());
}

#[test]
fn an_access_token_refused_during_a_signature_is_not_resent() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "");
    assert!(sign(&t, b"first").is_ok());
    fake.inject(Method::Sign, Fault::ExpireAccess);
    assert_eq!(sign(&t, b"second"), Err(CKR_DEVICE_ERROR));
    assert_eq!(fake.calls(Method::Sign), 2, "not sent again");
    // The next one signs in again and signs, from the same batch.
    let sig = sign(&t, b"third").unwrap();
    assert!(verifies(&t, b"third", &sig));
    assert_eq!(fake.calls(Method::SignIn), 2);
    assert_eq!(fake.calls(Method::Authorize), 1);
}

#[test]
fn a_lost_signature_answer_is_never_repaired_by_signing_again() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "");
    fake.inject(
        Method::Sign,
        Fault::FailAfter(fake::server_error("signatures/signHash")),
    );
    assert_eq!(sign(&t, b"x"), Err(CKR_DEVICE_ERROR));
    assert_eq!(fake.signatures_made(), 1);
    assert_eq!(fake.calls(Method::Sign), 1);
}

#[test]
fn a_server_error_during_authorize_fails_that_signature_only() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "");
    fake.inject(
        Method::Authorize,
        Fault::Fail(fake::server_error("credentials/authorize")),
    );
    assert_eq!(sign(&t, b"x"), Err(CKR_DEVICE_ERROR));
    assert_eq!(
        fake.calls(Method::Authorize),
        1,
        "an authorization is not repeated"
    );
    assert_eq!(fake.calls(Method::Sign), 0);
    assert!(t.is_logged_in());
    assert!(sign(&t, b"y").is_ok());
}

#[test]
fn a_wrong_number_of_signatures_is_a_device_error() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "");
    fake.inject(Method::Sign, Fault::SignatureCount(2));
    assert_eq!(sign(&t, b"x"), Err(CKR_DEVICE_ERROR));
    fake.inject(Method::Sign, Fault::SignatureCount(0));
    assert_eq!(sign(&t, b"x"), Err(CKR_DEVICE_ERROR));
}

#[test]
fn a_malformed_ecdsa_signature_is_a_device_error() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "");
    // Neither DER nor r||s of the curve's size.
    fake.inject(Method::Sign, Fault::Signature(vec![0x30, 0x03, 0x02, 0x01]));
    assert_eq!(sign(&t, b"x"), Err(CKR_DEVICE_ERROR));
    // An integer longer than the field.
    let mut long = vec![0x30, 0x26, 0x02, 0x21, 0x01];
    long.extend([0x7f; 32]);
    long.extend([0x02, 0x01, 0x01]);
    fake.inject(Method::Sign, Fault::Signature(long));
    assert_eq!(sign(&t, b"x"), Err(CKR_DEVICE_ERROR));
}

#[test]
fn a_refused_pin_logs_the_user_out() {
    let fake = Arc::new(FakeService::new());
    let t = token(&fake, "");
    t.login.login_user(Secret::new("9999")).unwrap();
    assert_eq!(sign(&t, b"x"), Err(CKR_PIN_INCORRECT));
    assert!(!t.is_logged_in());
}

#[test]
fn an_ended_login_gets_no_authorization() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "");
    let op = sign::init(&t, &Mechanism::new(CKM_ECDSA_SHA256), private_key(&t)).unwrap();
    let parts = op.plan.request_for_data(b"x").unwrap();
    t.logout();
    assert_eq!(
        sign::execute(&t, op, parts, &|| false),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    assert_eq!(fake.calls(Method::Authorize), 0);
}

#[test]
fn a_signature_that_does_not_verify_is_never_returned() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "");
    let good = sign(&t, b"x").unwrap();
    let mut flipped = good.clone();
    flipped[40] ^= 1;
    // Well-formed but wrong: a valid r||s of the curve's size that is not this hash's signature.
    fake.inject(Method::Sign, Fault::Signature(flipped));
    assert_eq!(sign(&t, b"x"), Err(CKR_DEVICE_ERROR));
    // A correct signature of another hash.
    fake.inject(Method::Sign, Fault::Signature(good_der(&t, b"other")));
    assert_eq!(sign(&t, b"x"), Err(CKR_DEVICE_ERROR));
    assert!(sign(&t, b"x").is_ok());
}

/// A DER signature the credential really made, over another message.
fn good_der(t: &Arc<Token>, data: &[u8]) -> Vec<u8> {
    let raw = sign(t, data).unwrap();
    p256::ecdsa::Signature::from_slice(&raw)
        .unwrap()
        .to_der()
        .as_bytes()
        .to_vec()
}

#[test]
fn a_credential_that_cannot_be_read_does_not_hide_the_others() {
    let fake = Arc::new(FakeService::with_credentials(&[
        ("good", crate::service::Scal::One, 10),
        ("broken", crate::service::Scal::One, 10),
    ]));
    // The first info answer (for "good") succeeds, the second is refused for good.
    fake.inject(Method::Info, Fault::Delay(std::time::Duration::ZERO));
    fake.inject(
        Method::Info,
        Fault::Fail(remote_client::Error::Csc {
            method: "credentials/info".into(),
            status: 400,
            code: remote_client::CscErrorCode::InvalidRequest,
            description: "Invalid parameter credentialID".into(),
        }),
    );
    let t = logged_in(&fake, "");
    let loaded = t.loaded().unwrap();
    let ids: Vec<&str> = loaded.credentials.iter().map(|c| c.id()).collect();
    assert_eq!(ids, ["good"]);
    assert!(sign(&t, b"x").is_ok());
}

#[test]
fn a_token_whose_credentials_need_nothing_needs_no_login() {
    let fake = Arc::new(FakeService::implicit());
    let t = token(&fake, "mode = \"pin\"");
    assert_eq!(
        t.mode(),
        crate::config::TokenMode::Pin,
        "before the credentials are loaded"
    );
    t.loaded().unwrap();
    assert_eq!(t.mode(), crate::config::TokenMode::LoginFree);
    assert!(!t.is_logged_in());
    let sig = sign(&t, b"no PIN").unwrap();
    assert!(verifies(&t, b"no PIN", &sig));
}
