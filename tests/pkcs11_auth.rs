//! Authorization through the built module against a real csc-server: the passcode (PIN+OTP at
//! C_Login) and the context login (C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit), TOTP and SMS codes,
//! SCAL 1 batches and their exhaustion, SCAL 2 hash-by-hash authorization and wrong factors (lockout:
//! pkcs11_lifecycle.rs, on a service of its own).

use cryptoki_sys::*;
use support::prelude::*;
use support::totp_code;

/// A valid-looking OTP that is not the current one.
fn wrong_otp(right: &str) -> String {
    let mut w: Vec<u8> = right.bytes().collect();
    let last = w.len() - 1;
    w[last] = if w[last] == b'9' { b'0' } else { w[last] + 1 };
    String::from_utf8(w).unwrap()
}

#[test]
fn scal2_totp_needs_a_context_login_per_signature() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("bob-p256-scal2");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &cred.label);
    assert!(
        bool_attr(p, h, key.private, CKA_ALWAYS_AUTHENTICATE),
        "SCAL 2 keys need a context login"
    );
    let case = cases_for(CKM_ECDSA_SHA256, b"scal2 document").remove(0);

    // Without the context login there is nothing to authorize with; the failed C_Sign ends the operation.
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    assert_eq!(p.sign_only(h, &case.input), Err(CKR_USER_NOT_LOGGED_IN));
    assert_eq!(
        p.sign_only(h, &case.input),
        Err(CKR_OPERATION_NOT_INITIALIZED)
    );

    for round in 0..2 {
        assert_rv(
            p.sign_init(h, &case.mech, key.private),
            CKR_OK,
            "C_SignInit",
        );
        assert_rv(
            p.login(h, CKU_CONTEXT_SPECIFIC, &totp_code(cred)),
            CKR_OK,
            "context login",
        );
        let sig = ok(
            p.sign_only(h, &case.input),
            &format!("SCAL 2 signature {round}"),
        );
        case.assert_verified(&key, &sig);
    }
    // The PIN+OTP form of the context value works too (clients that reuse the PIN send it).
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    let value = format!("{}{}", token.pin, totp_code(cred));
    assert_rv(
        p.login(h, CKU_CONTEXT_SPECIFIC, &value),
        CKR_OK,
        "context login PIN+OTP",
    );
    let sig = ok(
        p.sign_only(h, &case.input),
        "SCAL 2 with PIN+OTP context value",
    );
    case.assert_verified(&key, &sig);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn scal2_sms_sends_one_code_per_signature() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("bob-rsa2048-scal2");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &cred.label);
    let before = svc.sms_messages(&cred.id).len();
    for (i, hash) in ["sha256", "sha384"].iter().enumerate() {
        let mech = if *hash == "sha256" {
            CKM_SHA256_RSA_PKCS
        } else {
            CKM_SHA384_RSA_PKCS
        };
        let case = cases_for(mech, format!("scal2 sms {hash}").as_bytes()).remove(0);
        assert_rv(
            p.sign_init(h, &case.mech, key.private),
            CKR_OK,
            "C_SignInit sends the SMS",
        );
        let code = svc.wait_sms_code(&cred.id, before + i);
        assert_rv(
            p.login(h, CKU_CONTEXT_SPECIFIC, &code),
            CKR_OK,
            "context login with the SMS code",
        );
        let sig = ok(p.sign_only(h, &case.input), "SCAL 2 SMS signature");
        case.assert_verified(&key, &sig);
    }
    let msgs = svc.sms_messages(&cred.id);
    assert_eq!(msgs.len(), before + 2, "one SMS per SCAL 2 signature");
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn multisign_one_is_used_up_by_one_signature() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("bob-p256-single");
    assert_eq!(cred.multisign, 1);
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    assert_rv(
        p.login(h, CKU_USER, &format!("{}{}", token.pin, totp_code(cred))),
        CKR_OK,
        "C_Login",
    );
    let key = key_of(p, h, &cred.label);
    assert!(
        !bool_attr(p, h, key.private, CKA_ALWAYS_AUTHENTICATE),
        "SCAL 1 keys need no context login"
    );
    ok(sign_verified(p, h, &key, b"the one signature"), "sign");
    // The authorization covered one signature and the passcode's OTP is spent.
    let case = cases_for(CKM_ECDSA_SHA256, b"a second one").remove(0);
    assert_eq!(
        p.sign(h, &case.mech, key.private, &case.input),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    // A fresh OTP through the context login authorizes the next one.
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    assert_rv(
        p.login(h, CKU_CONTEXT_SPECIFIC, &totp_code(cred)),
        CKR_OK,
        "context login",
    );
    let sig = ok(p.sign_only(h, &case.input), "after the context login");
    case.assert_verified(&key, &sig);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn batch_covers_many_signatures_with_one_sms() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("carol-p256-sms");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &cred.label);
    let before = svc.sms_messages(&cred.id).len();
    let case = cases_for(CKM_ECDSA_SHA256, b"batch 0").remove(0);
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    let code = svc.wait_sms_code(&cred.id, before);
    assert_rv(
        p.login(h, CKU_CONTEXT_SPECIFIC, &code),
        CKR_OK,
        "context login",
    );
    ok(p.sign_only(h, &case.input), "first signature");
    // Further signatures, also from a second session, reuse the authorization: no C_SignInit asks for
    // another SMS while the batch lasts.
    let other = p.open(p.slot_of(&token.label));
    let n = (cred.multisign as usize).min(6) - 1;
    for i in 1..=n {
        let s = if i % 2 == 0 { h } else { other };
        ok(
            sign_verified(p, s, &key, format!("batch {i}").as_bytes()),
            "sign",
        );
    }
    assert_eq!(
        svc.sms_messages(&cred.id).len(),
        before + 1,
        "{} signatures, one SMS",
        n + 1
    );
    // Logging out forgets the batch.
    assert_rv(p.logout(h), CKR_OK, "C_Logout");
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    svc.wait_sms_code(&cred.id, before + 1);
    assert_eq!(
        p.sign_only(h, &case.input),
        Err(CKR_USER_NOT_LOGGED_IN),
        "no SAD after logout"
    );
    p.close(other);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn wrong_pin_and_wrong_otp_are_pin_incorrect() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("carol-p256");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));

    // Wrong PIN in the passcode: refused at the first authorization; the module logs the user out so it
    // does not send the wrong PIN again.
    let wrong_pin = wrong_otp(&token.pin);
    assert_rv(
        p.login(h, CKU_USER, &format!("{wrong_pin}{}", totp_code(cred))),
        CKR_OK,
        "C_Login (not checked yet)",
    );
    let key = key_of(p, h, &cred.label);
    let case = cases_for(CKM_ECDSA_SHA256, b"wrong pin").remove(0);
    // The refused PIN ends the login (C_Sign may not say CKR_PIN_INCORRECT).
    assert_eq!(
        p.sign(h, &case.mech, key.private, &case.input),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    assert_rv(
        p.logout(h),
        CKR_USER_NOT_LOGGED_IN,
        "logged out after the wrong PIN",
    );

    // Wrong OTP in the passcode: refused, the PIN stays, the OTP is spent.
    let right = totp_code(cred);
    assert_rv(
        p.login(h, CKU_USER, &format!("{}{}", token.pin, wrong_otp(&right))),
        CKR_OK,
        "C_Login",
    );
    // A refused code rejects the signature; the user stays logged in.
    assert_eq!(
        p.sign(h, &case.mech, key.private, &case.input),
        Err(CKR_FUNCTION_REJECTED)
    );
    assert_eq!(
        p.sign(h, &case.mech, key.private, &case.input),
        Err(CKR_USER_NOT_LOGGED_IN),
        "the OTP was used once"
    );

    // Wrong OTP at the context login of a SCAL 1 key: refused at C_Login itself; the operation stays.
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    let right = totp_code(cred);
    assert_rv(
        p.login(h, CKU_CONTEXT_SPECIFIC, &wrong_otp(&right)),
        CKR_PIN_INCORRECT,
        "wrong context OTP",
    );
    assert_rv(
        p.login(h, CKU_CONTEXT_SPECIFIC, &totp_code(cred)),
        CKR_OK,
        "right context OTP",
    );
    let sig = ok(p.sign_only(h, &case.input), "sign after the right OTP");
    case.assert_verified(&key, &sig);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn sms_code_requested_before_the_process_is_used_from_the_passcode() {
    // Every real client logs in, in a process of its own, before it signs: an SMS code the user had
    // sent earlier (by the service's portal, `cloudtoken`, or a first attempt) must work after the PIN.
    let (svc, p) = setup();
    let (token, sms) = svc.demo.credential("alice-p384");
    let _l = token_lock(&token.label);
    let before = svc.sms_messages(&sms.id).len();
    let mut cfg = remote_client::ClientConfig::new(svc.url.clone());
    cfg.ca_file = Some(svc.ca_file());
    let client = remote_client::CscClient::new(&cfg).expect("CSC client");
    let access = client
        .refresh(&remote_client::Secret::new(svc.refresh_token(&token.user)))
        .expect("refresh")
        .access_token;
    client.send_otp(&access, &sms.id).expect("send an SMS code");
    let code = svc.wait_sms_code(&sms.id, before);

    let h = p.open(p.slot_of(&token.label));
    assert_rv(
        p.login(h, CKU_USER, &format!("{}{code}", token.pin)),
        CKR_OK,
        "C_Login with PIN+SMS code",
    );
    let sms_key = key_of(p, h, &sms.label);
    let case = cases_for(CKM_ECDSA_SHA384, b"sms code sent before login").remove(0);
    let sig = ok(
        p.sign(h, &case.mech, sms_key.private, &case.input),
        "sign with the SMS passcode",
    );
    case.assert_verified(&sms_key, &sig);
    // The code at hand was used: the module had no second SMS sent.
    assert_eq!(svc.sms_messages(&sms.id).len(), before + 1, "one SMS");
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}
