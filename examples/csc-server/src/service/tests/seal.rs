//! The organisation's e-seals (PIN only) and SAD lifetimes per credential.

use super::*;

const SEAL_P256: &str = "seal-p256";
const SEAL_RSA: &str = "seal-rsa2048";

#[test]
fn seals_authorize_with_the_pin_alone_for_large_batches() {
    let f = Fixture::new();
    let seal = f.caller("seal");
    let pin = f.user("seal").pin.clone();
    for (id, algo) in [
        (SEAL_P256, oid::ECDSA_WITH_SHA256),
        (SEAL_RSA, oid::SHA256_WITH_RSA),
    ] {
        let c = f.cred(id);
        assert_eq!((c.otp.as_str(), c.scal, c.multisign), ("none", 1, 10_000));
        assert!(c.totp_secret.is_none());
        let sad = f
            .authorize_with(&seal, id, 10_000, None, &pin, None)
            .unwrap();
        assert_eq!(sad.expires_in, 3600, "{id}: the seals' own SAD lifetime");
        let h = vec![digest(b"invoice 1"), digest(b"invoice 2")];
        let sigs = f.sign(&seal, id, &sad.sad, h.clone(), algo).unwrap();
        let cert = &f.service.credential(&seal, id).unwrap().cert_der;
        for (hash, sig) in h.iter().zip(&sigs) {
            assert!(sha256_signature_verifies(cert, hash, sig), "{id}");
        }
        assert_eq!(
            f.authorize_with(&seal, id, 10_001, None, &pin, None)
                .unwrap_err(),
            CscError::invalid_param("numSignatures")
        );
    }
    let cert = f.service.credential(&seal, SEAL_P256).unwrap();
    assert_eq!(
        cert.cert.subject_dn,
        "CN=Example Organisation Seal,O=cloudtoken demo,C=DE"
    );
    // An OTP is refused, not ignored; nothing is sent by SMS.
    let refused = f
        .authorize_with(&seal, SEAL_P256, 1, None, &pin, Some("123456"))
        .unwrap_err();
    assert_eq!(refused.code, "invalid_request");
    assert!(refused.description.contains("takes no OTP"), "{refused:?}");
    assert!(f.service.send_otp(&seal, SEAL_P256, None).is_err());
    // The PIN still locks.
    for _ in 0..5 {
        assert_eq!(
            f.authorize_with(&seal, SEAL_RSA, 1, None, "000000", None)
                .unwrap_err(),
            CscError::invalid_pin()
        );
    }
    assert_eq!(
        f.authorize_with(&seal, SEAL_P256, 1, None, &pin, None)
            .unwrap_err(),
        CscError::pin_locked()
    );
    // The seal's credentials are its own.
    let alice = f.caller("alice");
    assert_eq!(
        f.service.credential(&alice, SEAL_P256).err(),
        Some(CscError::invalid_credential())
    );
    f.audit_ok();
}

#[test]
fn sad_lifetimes_come_from_the_service_the_credential_or_the_command_line() {
    let f = Fixture::with_lifetimes(&[("alice-p256", 60), (SEAL_RSA, 7200)]).unwrap();
    let alice = f.caller("alice");
    let seal = f.caller("seal");
    let alice_pin = f.user("alice").pin.clone();
    let seal_pin = f.user("seal").pin.clone();
    let short = f
        .authorize(
            &alice,
            "alice-p256",
            2,
            None,
            &alice_pin,
            &f.totp("alice-p256", 0),
        )
        .unwrap();
    assert_eq!(short.expires_in, 60);
    let default = f
        .authorize(
            &alice,
            "alice-rsa2048",
            1,
            None,
            &alice_pin,
            &f.totp("alice-rsa2048", 0),
        )
        .unwrap();
    assert_eq!(default.expires_in, 300);
    let own = f
        .authorize_with(&seal, SEAL_P256, 5, None, &seal_pin, None)
        .unwrap();
    assert_eq!(own.expires_in, 3600);
    let overridden = f
        .authorize_with(&seal, SEAL_RSA, 5, None, &seal_pin, None)
        .unwrap();
    assert_eq!(overridden.expires_in, 7200);
    // The lifetime is what the SAD really lives.
    f.clock.advance(60);
    let h = vec![digest(b"late")];
    assert_eq!(
        f.sign(
            &alice,
            "alice-p256",
            &short.sad,
            h.clone(),
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::sad_expired()
    );
    f.clock.advance(3600 - 60 - 1);
    assert!(f
        .sign(
            &seal,
            SEAL_P256,
            &own.sad,
            h.clone(),
            oid::ECDSA_WITH_SHA256
        )
        .is_ok());
    f.clock.advance(1);
    assert_eq!(
        f.sign(&seal, SEAL_P256, &own.sad, h, oid::ECDSA_WITH_SHA256)
            .unwrap_err(),
        CscError::sad_expired()
    );
    // extendTransaction gives the credential's lifetime again.
    let extended = f
        .service
        .extend_transaction(&seal, SEAL_RSA, &overridden.sad, None, None)
        .unwrap();
    assert_eq!(extended.expires_in, 7200);
    // A lifetime for a credential that does not exist is a configuration error.
    let err = Fixture::with_lifetimes(&[("nobody-p256", 10)])
        .err()
        .unwrap();
    assert!(err.contains("nobody-p256"), "{err}");
}
