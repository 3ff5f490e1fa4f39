//! The emulator's rules end to end without HTTP: transactions, their confirmation (confirmed, declined,
//! expired, collected once), the signatures a confirmed operation or sign-in makes (checked with OpenSSL's
//! GOST engine), packages, and the refusals. Real keys: SoftHSM for RSA, the GOST engine for GOST (Debian
//! packages softhsm2, openssl, libengine-gost-openssl).

use crate::confirm::{Caller, ConfirmBody, DecideError, Decision};
use crate::service::testing::emulator;
use crate::service::Emulator;
use crate::signing::{DocumentBody, TransactionBody};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use zeroize::Zeroizing;

const NOW: i64 = 1_900_000_000;

fn password(dir: &tempfile::TempDir, user: &str) -> Zeroizing<String> {
    Zeroizing::new(
        std::fs::read_to_string(dir.path().join(format!("state/{user}.password"))).unwrap(),
    )
}

fn access(e: &Emulator, dir: &tempfile::TempDir, user: &str) -> Zeroizing<String> {
    let form = crate::sts::TokenForm {
        grant_type: Some("password".into()),
        username: Some(user.into()),
        password: Some(password(dir, user)),
        client_id: Some(crate::model::CLIENT_ID.into()),
        resource: Some(crate::model::RESOURCE.into()),
        ..Default::default()
    };
    e.token(&form, None).unwrap().access_token
}

fn body<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn transaction(cert: u32, hashes: &[Vec<u8>]) -> TransactionBody {
    let params = json!([
        {"Name": "SignatureType", "Value": "GOST3410"},
        {"Name": "CertificateID", "Value": cert.to_string()},
        {"Name": "Hash", "Value": "True"},
        {"Name": "DocumentInfo", "Value": "Invoice <b>42</b>"},
    ]);
    match hashes {
        [one] => body(
            json!({"OperationCode": 2, "Document": STANDARD.encode(one), "Parameters": params}),
        ),
        many => body(json!({
            "OperationCode": 3,
            "Documents": many.iter().map(|h| json!({"Name": "d", "Content": STANDARD.encode(h)})).collect::<Vec<_>>(),
            "Parameters": params,
        })),
    }
}

fn start(e: &Emulator, token: &str, tx: &str) -> String {
    let b: ConfirmBody =
        body(json!({"Resource": crate::model::RESOURCE, "TransactionTokenId": tx}));
    let c = e
        .confirmation(
            Caller::Access(Zeroizing::new(token.into())),
            &b,
            Some("test"),
        )
        .unwrap();
    assert_eq!(c["IsFinal"], false);
    c["Challenge"]["ContextData"]["RefID"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn poll(e: &Emulator, token: &str, ref_id: &str) -> Result<Value, crate::error::DssError> {
    let b: ConfirmBody = body(json!({
        "Resource": crate::model::RESOURCE,
        "ChallengeResponse": {"TextChallengeResponse": [{"RefId": ref_id}]},
    }));
    e.confirmation(Caller::Access(Zeroizing::new(token.into())), &b, None)
}

/// Verifies a raw signature (CryptoAPI order, as the emulator returns it) with the engine.
fn verifies(e: &Emulator, cert: i64, hash: &[u8], b64: &str) -> bool {
    let der: Vec<u8> =
        e.db.lock()
            .query_row("SELECT der FROM certificates WHERE id = ?1", [cert], |r| {
                r.get(0)
            })
            .unwrap();
    let spki = {
        use der::{Decode, Encode};
        let c = x509_cert::Certificate::from_der(&der).unwrap();
        c.tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap()
    };
    let mut sig = STANDARD.decode(b64).unwrap();
    sig.reverse();
    let dir = tempfile::tempdir().unwrap();
    let (k, s, h) = (
        dir.path().join("k"),
        dir.path().join("s"),
        dir.path().join("h"),
    );
    std::fs::write(&k, spki).unwrap();
    std::fs::write(&s, sig).unwrap();
    std::fs::write(&h, hash).unwrap();
    let out = std::process::Command::new("/usr/bin/openssl")
        .args([
            "pkeyutl", "-engine", "gost", "-verify", "-pubin", "-keyform", "DER", "-inkey",
        ])
        .arg(&k)
        .arg("-sigfile")
        .arg(&s)
        .arg("-in")
        .arg(&h)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully")
}

#[test]
fn a_confirmed_operation_signs_its_hash_once() {
    let (dir, e) = emulator(NOW);
    let alice = access(&e, &dir, "alice");
    let hash = vec![0x11; 32];
    let tx = e
        .create_transaction(&alice, &transaction(1, std::slice::from_ref(&hash)))
        .unwrap();
    let tx = tx.as_str().unwrap();
    let ref_id = start(&e, &alice, tx);
    // Waiting: the same challenge again, and the page lists it with its (escaped-later) description.
    assert_eq!(poll(&e, &alice, &ref_id).unwrap()["IsFinal"], false);
    let pending = e.pending("alice").unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].description.as_deref(), Some("Invoice <b>42</b>"));
    assert_eq!(pending[0].hashes, vec![hash.clone()]);
    assert!(e.pending("bob").unwrap().is_empty());
    // Bob cannot decide it, nor poll it.
    assert_eq!(
        e.decide("bob", &pending[0].id, Decision::Confirm, "t"),
        Err(DecideError::Gone)
    );
    let bob = access(&e, &dir, "bob");
    assert_eq!(
        poll(&e, &bob, &ref_id).unwrap_err().error,
        "invalid_request"
    );
    // A plain access token never signs.
    let direct: DocumentBody = body(json!({"Content": STANDARD.encode(&hash),
        "Signature": {"Type": "GOST3410", "Parameters": {"Hash": "True"}, "CertificateId": 1}}));
    assert_eq!(
        e.documents(&alice, &direct, false).unwrap_err().error,
        "access_denied"
    );

    e.decide("alice", &pending[0].id, Decision::Confirm, "t")
        .unwrap();
    let done = poll(&e, &alice, &ref_id).unwrap();
    assert_eq!(done["IsFinal"], true);
    let op = done["AccessToken"].as_str().unwrap().to_owned();
    // Collected once.
    assert_eq!(
        poll(&e, &alice, &ref_id).unwrap_err().error,
        "invalid_request"
    );
    let empty: DocumentBody = body(json!({}));
    // The transaction signs one document: not as a package.
    assert_eq!(
        e.documents(&op, &empty, true).unwrap_err().error,
        "invalid_request"
    );
    let sig = e.documents(&op, &empty, false).unwrap();
    assert!(verifies(&e, 1, &hash, sig.as_str().unwrap()));
    // The operation token is spent.
    assert_eq!(
        e.documents(&op, &empty, false).unwrap_err().error,
        "invalid_token"
    );
}

#[test]
fn declined_and_expired_confirmations() {
    let (dir, e) = emulator(NOW);
    let alice = access(&e, &dir, "alice");
    let tx = e
        .create_transaction(&alice, &transaction(2, &[vec![2; 64]]))
        .unwrap();
    let ref_id = start(&e, &alice, tx.as_str().unwrap());
    let id = e.pending("alice").unwrap()[0].id.clone();
    e.decide("alice", &id, Decision::Decline, "t").unwrap();
    let declined = poll(&e, &alice, &ref_id).unwrap();
    assert_eq!(
        (declined["IsFinal"].clone(), declined["IsError"].clone()),
        (json!(false), json!(true))
    );
    // Decided once.
    assert_eq!(
        e.decide("alice", &id, Decision::Confirm, "t"),
        Err(DecideError::Gone)
    );

    let tx = e
        .create_transaction(&alice, &transaction(1, &[vec![3; 32]]))
        .unwrap();
    let ref_id = start(&e, &alice, tx.as_str().unwrap());
    let id = e.pending("alice").unwrap()[0].id.clone();
    e.clock.advance(e.settings.confirmation_timeout + 1);
    let expired = poll(&e, &alice, &ref_id).unwrap_err();
    assert!(expired.description.contains("expired"), "{expired:?}");
    assert_eq!(
        e.decide("alice", &id, Decision::Confirm, "t"),
        Err(DecideError::Expired)
    );
    assert!(e.pending("alice").unwrap().is_empty());
}

#[test]
fn a_package_is_confirmed_once_and_signs_every_document() {
    let (dir, e) = emulator(NOW);
    let alice = access(&e, &dir, "alice");
    let hashes: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 32]).collect();
    let tx = e
        .create_transaction(&alice, &transaction(1, &hashes))
        .unwrap();
    let ref_id = start(&e, &alice, tx.as_str().unwrap());
    let pending = e.pending("alice").unwrap();
    assert_eq!(pending[0].hashes.len(), 10);
    e.decide("alice", &pending[0].id, Decision::Confirm, "t")
        .unwrap();
    let op = poll(&e, &alice, &ref_id).unwrap()["AccessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let empty: DocumentBody = body(json!({}));
    assert_eq!(
        e.documents(&op, &empty, false).unwrap_err().error,
        "invalid_request"
    );
    let results = e.documents(&op, &empty, true).unwrap();
    let results = results["Results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    for (h, s) in hashes.iter().zip(results) {
        assert!(verifies(&e, 1, h, s.as_str().unwrap()));
    }
}

#[test]
fn a_confirmed_sign_in_signs_documents_until_it_expires() {
    let (dir, e) = emulator(NOW);
    let caller = || Caller::Password {
        user: "alice".into(),
        password: password(&dir, "alice"),
    };
    let b: ConfirmBody = body(json!({"Resource": crate::model::RESOURCE}));
    let c = e.confirmation(caller(), &b, None).unwrap();
    let ref_id = c["Challenge"]["ContextData"]["RefID"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = e.pending("alice").unwrap()[0].id.clone();
    e.decide("alice", &id, Decision::Confirm, "t").unwrap();
    let p: ConfirmBody = body(json!({"Resource": crate::model::RESOURCE,
        "ChallengeResponse": {"TextChallengeResponse": [{"RefId": ref_id}]}}));
    let session = e.confirmation(caller(), &p, None).unwrap()["AccessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for (cert, len) in [(1, 32), (2, 64), (0, 32)] {
        let hash = vec![7u8; len];
        let d: DocumentBody = body(json!({"Content": STANDARD.encode(&hash),
            "Signature": {"Type": 1, "Parameters": {"Hash": true}, "CertificateId": cert}}));
        let sig = e.documents(&session, &d, false).unwrap();
        // ID 0 is the default certificate, alice's first.
        assert!(verifies(
            &e,
            if cert == 0 { 1 } else { cert },
            &hash,
            sig.as_str().unwrap()
        ));
    }
    // RSA keys make no raw signatures; a hash of the wrong size; another user's certificate.
    for (cert, len, code) in [
        (3, 32, "invalid_signature_params"),
        (1, 64, "invalid_signature_params"),
        (4, 32, "object_not_found"),
    ] {
        let d: DocumentBody = body(json!({"Content": STANDARD.encode(vec![1u8; len]),
            "Signature": {"Type": "GOST3410", "Parameters": {"Hash": "True"}, "CertificateId": cert}}));
        assert_eq!(
            e.documents(&session, &d, false).unwrap_err().error,
            code,
            "{cert}"
        );
    }
    e.clock.advance(e.settings.session_lifetime + 1);
    let d: DocumentBody = body(json!({"Content": STANDARD.encode([1u8; 32]),
        "Signature": {"Type": "GOST3410", "Parameters": {"Hash": "True"}, "CertificateId": 1}}));
    assert_eq!(
        e.documents(&session, &d, false).unwrap_err().error,
        "invalid_token"
    );
    // A wrong password starts nothing.
    let wrong = Caller::Password {
        user: "alice".into(),
        password: Zeroizing::new("wrong".into()),
    };
    assert_eq!(
        e.confirmation(wrong, &b, None).unwrap_err().error,
        "invalid_grant"
    );
}

#[test]
fn transactions_refuse_what_the_emulator_does_not_sign() {
    let (dir, e) = emulator(NOW);
    let alice = access(&e, &dir, "alice");
    assert_eq!(
        e.create_transaction(&alice, &transaction(3, &[vec![1; 32]]))
            .unwrap_err()
            .error,
        "invalid_signature_params"
    );
    assert_eq!(
        e.create_transaction(&alice, &transaction(1, &[vec![1; 20]]))
            .unwrap_err()
            .error,
        "invalid_signature_params"
    );
    assert_eq!(
        e.create_transaction(&alice, &transaction(4, &[vec![1; 32]]))
            .unwrap_err()
            .error,
        "object_not_found"
    );
    let cms: TransactionBody = body(json!({"OperationCode": 2, "Document": "AAAA",
        "Parameters": [{"Name": "SignatureType", "Value": "CMS"}]}));
    assert_eq!(
        e.create_transaction(&alice, &cms).unwrap_err().error,
        "invalid_signature_params"
    );
    // Starting a confirmation twice, or of an unknown transaction.
    let tx = e
        .create_transaction(&alice, &transaction(1, &[vec![1; 32]]))
        .unwrap();
    start(&e, &alice, tx.as_str().unwrap());
    let again: ConfirmBody =
        body(json!({"Resource": crate::model::RESOURCE, "TransactionTokenId": tx}));
    assert_eq!(
        e.confirmation(Caller::Access(alice.clone()), &again, None)
            .unwrap_err()
            .error,
        "invalid_request"
    );
    let other: ConfirmBody = body(json!({"Resource": "urn:other", "TransactionTokenId": tx}));
    assert_eq!(
        e.confirmation(Caller::Access(alice), &other, None)
            .unwrap_err()
            .error,
        "invalid_request"
    );
}
