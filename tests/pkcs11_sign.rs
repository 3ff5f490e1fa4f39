//! Signing through the built module against a real csc-server: every mechanism each key offers, on
//! every key type (RSA-2048, RSA-3072, P-256, P-384), single- and multi-part, and from several threads
//! at once. Every signature is verified by `openssl` with the certificate read through PKCS#11.

use cryptoki_sys::*;
use support::prelude::*;
use support::totp_code;

/// The mechanisms every key of this type must offer (the credential lists the matching algorithms).
fn expected(key_type: CK_KEY_TYPE) -> &'static [CK_MECHANISM_TYPE] {
    match key_type {
        CKK_RSA => &[
            CKM_RSA_PKCS,
            CKM_SHA256_RSA_PKCS,
            CKM_RSA_PKCS_PSS,
            CKM_SHA256_RSA_PKCS_PSS,
        ],
        CKK_EC => &[CKM_ECDSA, CKM_ECDSA_SHA256],
        _ => panic!("unexpected key type {key_type}"),
    }
}

/// Signs with every mechanism the key allows and checks each signature; returns how many were made.
fn sign_everything(p: P11, h: CK_SESSION_HANDLE, key: &Key, label: &str) -> usize {
    for m in expected(key.key_type) {
        assert!(
            key.mechanisms.contains(m),
            "{label}: mechanism 0x{m:x} missing from CKA_ALLOWED_MECHANISMS"
        );
    }
    let mut n = 0;
    for &mech in &key.mechanisms {
        for case in cases_for(mech, format!("{label}: mechanism 0x{mech:x}").as_bytes()) {
            let sig = ok(
                p.sign(h, &case.mech, key.private, &case.input),
                &format!("{label} sign 0x{mech:x} {}", case.hash),
            );
            case.assert_verified(key, &sig);
            n += 1;
        }
    }
    n
}

#[test]
fn every_mechanism_with_totp_passcode_credentials() {
    let (svc, p) = setup();
    for id in ["alice-rsa2048", "alice-p256"] {
        let (token, cred) = svc.demo.credential(id);
        let _l = token_lock(&token.label);
        let h = p.open(p.slot_of(&token.label));
        // The passcode: PIN immediately followed by the OTP; one authorization covers the batch.
        let passcode = format!("{}{}", token.pin, totp_code(cred));
        assert_rv(p.login(h, CKU_USER, &passcode), CKR_OK, "C_Login");
        let key = key_of(p, h, &cred.label);
        let n = sign_everything(p, h, &key, id);
        assert!(
            n >= expected(key.key_type).len(),
            "{id}: only {n} signatures"
        );
        assert_rv(p.close(h), CKR_OK, "C_CloseSession");
    }
}

#[test]
fn every_mechanism_with_sms_context_credentials() {
    let (svc, p) = setup();
    for id in ["alice-rsa3072", "alice-p384"] {
        let (token, cred) = svc.demo.credential(id);
        let _l = token_lock(&token.label);
        let h = p.open(p.slot_of(&token.label));
        assert_rv(
            p.login(h, CKU_USER, &token.pin),
            CKR_OK,
            "C_Login with the PIN alone",
        );
        let key = key_of(p, h, &cred.label);
        let sent = svc.sms_messages(id).len();
        // C_SignInit has the service send the SMS; the context login carries its code and authorizes a batch.
        let first = cases_for(key.mechanisms[0], b"first").remove(0);
        assert_rv(
            p.sign_init(h, &first.mech, key.private),
            CKR_OK,
            "C_SignInit",
        );
        let code = svc.wait_sms_code(id, sent);
        assert_rv(
            p.login(h, CKU_CONTEXT_SPECIFIC, &code),
            CKR_OK,
            "C_Login(CKU_CONTEXT_SPECIFIC)",
        );
        let sig = ok(p.sign_only(h, &first.input), "C_Sign");
        first.assert_verified(&key, &sig);
        let n = sign_everything(p, h, &key, id);
        assert!(n >= expected(key.key_type).len());
        // All of them under the one authorization: no second SMS.
        assert_eq!(
            svc.sms_messages(id).len(),
            sent + 1,
            "{id}: one SMS for {} signatures",
            n + 1
        );
        assert_rv(p.close(h), CKR_OK, "C_CloseSession");
    }
}

#[test]
fn multi_part_signing_hashes_locally() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("alice-p256");
    let _l = token_lock(&token.label);
    let (_, rsa) = svc.demo.credential("alice-rsa2048");
    let h = p.open(p.slot_of(&token.label));
    let message: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let parts: Vec<&[u8]> = message.chunks(777).collect();
    for (c, mechs) in [
        (
            cred,
            &[CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512][..],
        ),
        (
            rsa,
            &[
                CKM_SHA256_RSA_PKCS,
                CKM_SHA512_RSA_PKCS,
                CKM_SHA256_RSA_PKCS_PSS,
                CKM_SHA384_RSA_PKCS_PSS,
            ][..],
        ),
    ] {
        assert_rv(
            p.login(h, CKU_USER, &format!("{}{}", token.pin, totp_code(c))),
            CKR_OK,
            "C_Login",
        );
        let key = key_of(p, h, &c.label);
        for &m in mechs {
            let case = cases_for(m, &message).remove(0);
            let sig = ok(
                p.sign_multipart(h, &case.mech, key.private, &parts),
                &format!("multi-part 0x{m:x}"),
            );
            case.assert_verified(&key, &sig);
        }
        // C_SignFinal right after C_SignInit signs the empty message.
        let case = cases_for(mechs[0], b"").remove(0);
        let sig = ok(
            p.sign_multipart(h, &case.mech, key.private, &[]),
            "empty multi-part",
        );
        case.assert_verified(&key, &sig);
        assert_rv(p.logout(h), CKR_OK, "C_Logout");
    }
    // Raw mechanisms in parts: tests/pkcs11_spec_corners.rs.
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &cred.label);
    // C_Sign after C_SignUpdate is refused without ending the multi-part operation.
    assert_rv(
        p.sign_init(h, &Mech::new(CKM_ECDSA_SHA256), key.private),
        CKR_OK,
        "C_SignInit",
    );
    assert_rv(p.sign_update(h, b"abc"), CKR_OK, "C_SignUpdate");
    assert_eq!(p.sign_only(h, b"abc"), Err(CKR_OPERATION_ACTIVE));
    assert_rv(p.sign_update(h, b"def"), CKR_OK, "still active");
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn sessions_in_several_threads_sign_in_parallel_under_one_login() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("alice-p256");
    let _l = token_lock(&token.label);
    let slot = p.slot_of(&token.label);
    let first = p.open(slot);
    assert_rv(
        p.login(
            first,
            CKU_USER,
            &format!("{}{}", token.pin, totp_code(cred)),
        ),
        CKR_OK,
        "C_Login",
    );
    let key = key_of(p, first, &cred.label);
    const THREADS: usize = 4;
    const EACH: usize = 3;
    let results: Vec<(Case, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let key = &key;
                s.spawn(move || {
                    // Each thread its own session; the login is the token's, shared by all of them.
                    let h = p.open(slot);
                    let mut out = Vec::new();
                    for i in 0..EACH {
                        let case = cases_for(
                            CKM_ECDSA_SHA256,
                            format!("thread {t} document {i}").as_bytes(),
                        )
                        .remove(0);
                        let sig = ok(
                            p.sign(h, &case.mech, key.private, &case.input),
                            &format!("thread {t} sign {i}"),
                        );
                        out.push((case, sig));
                    }
                    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    });
    assert_eq!(results.len(), THREADS * EACH);
    for (case, sig) in &results {
        case.assert_verified(&key, sig);
    }
    assert_rv(p.close(first), CKR_OK, "C_CloseSession");
}
