//! Corners of the PKCS#11 specification (issue 11, item 8), each with the return value the function's
//! description lists (support/spec.rs holds the lists): multi-part operations and single-part calls,
//! security-officer and context-specific logins, PIN lengths, single-part-only mechanisms, and context
//! logins that carry the PIN on `always_authenticate` tokens. The lifecycle corners (C_Initialize with
//! a pReserved that is no string, handles after C_Finalize) are in pkcs11_lifecycle.rs.

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use std::ptr::null_mut;
use support::config::totp_file_toml;
use support::prelude::*;
use support::spec;

const PERIOD: u64 = 2;
const CRED: &str = "alice-p256";

const PLAIN_TOKENS: &[&str] = &[
    "Multi",
    "Digest",
    "SO RO",
    "SO RW",
    "Context",
    "PIN Length",
    "Raw EC",
    "Raw RSA",
    "Raw Final",
];

struct Env {
    svc: Service,
    p: P11,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceCell<Env> = OnceCell::new();
    ENV.get_or_init(|| {
        let svc = Service::lasting_with_totp_period(PERIOD);
        let dir = tempfile::tempdir().unwrap();
        // A token per test, so that a failed test leaves no login or session behind for the others.
        let mut tokens: Vec<String> = PLAIN_TOKENS
            .iter()
            .map(|t| token_toml(&svc, t, "alice", ""))
            .collect();
        tokens.extend([
            token_toml(
                &svc,
                "Always",
                "alice",
                &format!(
                    "always_authenticate = true\n{}",
                    totp_file_toml(&svc, dir.path(), CRED, PERIOD)
                ),
            ),
            token_toml(
                &svc,
                "Always Passcode",
                "alice",
                "always_authenticate = true\n",
            ),
        ]);
        let p = initialize_on(dir.path(), &tokens).p;
        Env { svc, p, _dir: dir }
    })
}

fn pin(e: &Env) -> String {
    e.svc.demo.token_of("alice").pin.clone()
}

fn label(e: &Env) -> String {
    e.svc.demo.credential(CRED).1.label.clone()
}

/// `rv` is one of the values the specification lists for `function`.
#[track_caller]
fn assert_listed(function: &str, rv: CK_RV, what: &str) {
    assert!(
        spec::allowed(function, rv),
        "{what}: {function} answered {}, which is not among its return values in the specification",
        rv_name(rv)
    );
}

/// A session on `token` logged in with PIN and current code (the passcode), and the key of `cred`.
fn passcode_session(e: &Env, token: &str, cred: &str) -> KeySession {
    let (_, cred) = e.svc.demo.credential(cred);
    let passcode = format!("{}{}", pin(e), totp_code(cred));
    KeySession::open(e.p, token, Some(&passcode), &cred.label)
}

#[test]
fn c_sign_after_c_sign_update_is_operation_active_and_the_multi_part_signature_goes_on() {
    // "C_Sign cannot be used to terminate a multi-part operation, and MUST be called after
    // C_SignInit without intervening C_SignUpdate calls" (base specification, C_Sign): the multi-part
    // operation stays active and C_SignFinal finishes it.
    let _s = serial();
    let e = env();
    let s = passcode_session(e, "Multi", CRED);
    let case = s.init(CKM_ECDSA_SHA256, b"first part");
    assert_rv(e.p.sign_update(s.h, b"first part"), CKR_OK, "C_SignUpdate");
    let mut len: CK_ULONG = 256;
    let mut out = [0u8; 256];
    let data = b"single part";
    // SAFETY: valid buffers of the given lengths.
    let rv = unsafe {
        (e.p.f.C_Sign.unwrap())(
            s.h,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    assert_rv(
        rv,
        CKR_OPERATION_ACTIVE,
        "C_Sign during a multi-part signature",
    );
    let sig = ok(
        e.p.sign_final(s.h),
        "C_SignFinal of the multi-part signature",
    );
    case.assert_verified(&s.key, &sig);
    assert_rv(s.close(), CKR_OK, "C_CloseSession");
}

#[test]
fn c_digest_after_c_digest_update_is_operation_active_and_the_multi_part_digest_goes_on() {
    let _s = serial();
    let e = env();
    let h = e.p.open(e.p.slot_of("Digest"));
    let mech = Mech::new(CKM_SHA256).raw();
    let mut m = mech;
    // SAFETY: valid pointers and lengths throughout.
    unsafe {
        assert_rv(
            (e.p.f.C_DigestInit.unwrap())(h, &mut m),
            CKR_OK,
            "C_DigestInit",
        );
        let part = b"first part";
        assert_rv(
            (e.p.f.C_DigestUpdate.unwrap())(h, part.as_ptr() as *mut u8, part.len() as CK_ULONG),
            CKR_OK,
            "C_DigestUpdate",
        );
        let mut out = [0u8; 64];
        let mut len: CK_ULONG = 64;
        let data = b"single part";
        let rv = (e.p.f.C_Digest.unwrap())(
            h,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        );
        assert_rv(
            rv,
            CKR_OPERATION_ACTIVE,
            "C_Digest during a multi-part digest",
        );
        let mut len: CK_ULONG = 64;
        assert_rv(
            (e.p.f.C_DigestFinal.unwrap())(h, out.as_mut_ptr(), &mut len),
            CKR_OK,
            "C_DigestFinal",
        );
        assert_eq!(
            &out[..len as usize],
            &sha("sha256", part)[..],
            "the digest of the parts only"
        );
    }
    assert_rv(e.p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn so_login_with_a_read_only_session_open_is_session_read_only_exists() {
    let _s = serial();
    let e = env();
    let h = e.p.open(e.p.slot_of("SO RO"));
    assert_rv(
        e.p.login(h, CKU_SO, &pin(e)),
        CKR_SESSION_READ_ONLY_EXISTS,
        "C_Login(CKU_SO) with a read-only session open",
    );
    assert_rv(e.p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn so_login_while_the_user_is_logged_in_is_user_another_already_logged_in() {
    let _s = serial();
    let e = env();
    let h = ok(
        e.p.open_session(e.p.slot_of("SO RW"), CKF_SERIAL_SESSION | CKF_RW_SESSION),
        "read-write C_OpenSession",
    );
    assert_rv(e.p.login(h, CKU_USER, &pin(e)), CKR_OK, "C_Login(CKU_USER)");
    assert_rv(
        e.p.login(h, CKU_SO, &pin(e)),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
        "C_Login(CKU_SO) while the user is logged in",
    );
    assert_rv(e.p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn context_login_without_an_operation_is_operation_not_initialized() {
    let _s = serial();
    let e = env();
    let h = e.p.open(e.p.slot_of("Context"));
    assert_rv(
        e.p.login(h, CKU_CONTEXT_SPECIFIC, "123456"),
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Login(CKU_CONTEXT_SPECIFIC) with no operation, not logged in",
    );
    assert_rv(e.p.login(h, CKU_USER, &pin(e)), CKR_OK, "C_Login(CKU_USER)");
    assert_rv(
        e.p.login(h, CKU_CONTEXT_SPECIFIC, "123456"),
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Login(CKU_CONTEXT_SPECIFIC) with no operation, logged in",
    );
    assert_rv(e.p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn c_login_with_a_pin_too_short_or_too_long_answers_a_listed_code() {
    let _s = serial();
    let e = env();
    let h = e.p.open(e.p.slot_of("PIN Length"));
    for (what, pin) in [
        ("a 1-character PIN", "1".to_owned()),
        ("a 300-character PIN", "7".repeat(300)),
    ] {
        let rv = e.p.login(h, CKU_USER, &pin);
        if rv == CKR_OK {
            assert_rv(e.p.logout(h), CKR_OK, "C_Logout");
        }
        assert_listed("C_Login", rv, what);
    }
    assert_rv(e.p.close(h), CKR_OK, "C_CloseSession");
}

/// C_SignUpdate then C_SignFinal with single-part mechanism `mech`: listed codes, and an error ends the
/// operation (C_SignUpdate: "A call to C_SignUpdate which results in an error terminates the current
/// signature operation"). A module that accepts the parts must produce a signature that verifies.
fn multi_part_with_a_raw_mechanism(token: &str, mech: CK_MECHANISM_TYPE, key_cred: &str) {
    let _s = serial();
    let e = env();
    let s = passcode_session(e, token, key_cred);
    let case = s.init(mech, b"raw mechanism, in parts");
    let rv = e.p.sign_update(s.h, &case.input);
    assert_listed("C_SignUpdate", rv, &format!("mechanism 0x{mech:x}"));
    match e.p.sign_final(s.h) {
        Ok(sig) if rv == CKR_OK => case.assert_verified(&s.key, &sig),
        Ok(_) => panic!(
            "C_SignFinal signed after C_SignUpdate failed with {}",
            rv_name(rv)
        ),
        Err(final_rv) => {
            assert_listed("C_SignFinal", final_rv, &format!("mechanism 0x{mech:x}"));
            if rv != CKR_OK {
                assert_rv(
                    final_rv,
                    CKR_OPERATION_NOT_INITIALIZED,
                    "the failed C_SignUpdate ended the operation",
                );
            }
        }
    }
    assert_rv(s.close(), CKR_OK, "C_CloseSession");
}

#[test]
fn c_sign_update_with_ckm_ecdsa_answers_a_listed_code() {
    multi_part_with_a_raw_mechanism("Raw EC", CKM_ECDSA, CRED);
}

#[test]
fn c_sign_update_with_ckm_rsa_pkcs_answers_a_listed_code() {
    multi_part_with_a_raw_mechanism("Raw RSA", CKM_RSA_PKCS, "alice-rsa2048");
}

#[test]
fn c_sign_final_without_data_for_a_raw_mechanism_answers_a_listed_code() {
    let _s = serial();
    let e = env();
    let s = passcode_session(e, "Raw Final", CRED);
    s.init(CKM_ECDSA, b"nothing");
    let mut len: CK_ULONG = 0;
    // SAFETY: a length query with a valid count pointer.
    let rv = unsafe { (e.p.f.C_SignFinal.unwrap())(s.h, null_mut(), &mut len) };
    assert_listed("C_SignFinal", rv, "CKM_ECDSA without C_SignUpdate");
    assert_rv(s.close(), CKR_OK, "C_CloseSession");
}

/// A signature on an `always_authenticate` token whose context login gives `value(pin)`.
fn context_login_signs(token: &str, value: impl Fn(&Env) -> String) {
    let _s = serial();
    let e = env();
    let s = KeySession::open(e.p, token, Some(&pin(e)), &label(e));
    assert!(
        bool_attr(e.p, s.h, s.key.private, CKA_ALWAYS_AUTHENTICATE),
        "always_authenticate"
    );
    let case = s.init(CKM_ECDSA_SHA256, token.as_bytes());
    assert_rv(
        e.p.login(s.h, CKU_CONTEXT_SPECIFIC, &value(e)),
        CKR_OK,
        &format!("context login on {token}"),
    );
    let sig = ok(
        e.p.sign_only(s.h, &case.input),
        "C_Sign after the context login",
    );
    case.assert_verified(&s.key, &sig);
    assert_rv(s.close(), CKR_OK, "C_CloseSession");
    // Where the code came from the token's secret file, the codes handed out next must be later ones.
    support::totp::module_made_codes(e.svc.demo.credential(CRED).1);
}

#[test]
fn always_authenticate_context_login_with_the_pin_signs_with_the_code_from_the_channels() {
    // The specification's context login carries the PIN (p11test, NSS, Java do so); the code comes
    // from the token's totp_secret_file.
    context_login_signs("Always", pin);
}

#[test]
fn always_authenticate_context_login_with_pin_and_code_signs() {
    context_login_signs("Always Passcode", |e| {
        format!("{}{}", pin(e), totp_code(e.svc.demo.credential(CRED).1))
    });
}
