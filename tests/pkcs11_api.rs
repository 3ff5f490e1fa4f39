//! The PKCS#11 API contract of the built module, through raw C calls: info structures, size queries and
//! buffers, attribute semantics, handle and state checks, misuse with NULL pointers, local digests and
//! random numbers, unsupported functions. Against a real csc-server.

use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::{null, null_mut};
use support::prelude::*;
use support::totp_code;

/// Streebog (GOST R 34.11-2012) digests by their TC26 vendor codes: every token hashes with them
/// locally, as it does with SHA-2.
const CKM_GOSTR3411_12_256: CK_MECHANISM_TYPE = 0xD432_1012;
const CKM_GOSTR3411_12_512: CK_MECHANISM_TYPE = 0xD432_1013;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end_matches(' ').to_owned()
}

#[test]
fn library_slot_and_token_information() {
    let (svc, p) = setup();
    let mut info = CK_INFO::default();
    // SAFETY: valid out pointer.
    assert_rv(
        unsafe { (p.f.C_GetInfo.unwrap())(&mut info) },
        CKR_OK,
        "C_GetInfo",
    );
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (2, 40)
    );
    assert_eq!(text(&info.manufacturerID), "cloudtoken");
    // SAFETY: NULL is the misuse under test.
    assert_rv(
        unsafe { (p.f.C_GetInfo.unwrap())(null_mut()) },
        CKR_ARGUMENTS_BAD,
        "C_GetInfo(NULL)",
    );

    // Size query, too-small buffer, fill.
    let mut n: CK_ULONG = 0;
    // SAFETY: valid pointers.
    assert_rv(
        unsafe { (p.f.C_GetSlotList.unwrap())(CK_FALSE, null_mut(), &mut n) },
        CKR_OK,
        "size query",
    );
    assert_eq!(
        n as usize,
        svc.demo.tokens.len(),
        "one slot per configured token"
    );
    let mut small = vec![0; n as usize - 1];
    let mut m = small.len() as CK_ULONG;
    // SAFETY: buffer of m entries.
    assert_rv(
        unsafe { (p.f.C_GetSlotList.unwrap())(CK_FALSE, small.as_mut_ptr(), &mut m) },
        CKR_BUFFER_TOO_SMALL,
        "small",
    );
    assert_eq!(
        m, n,
        "the needed count comes back with CKR_BUFFER_TOO_SMALL"
    );
    // SAFETY: NULL count is the misuse under test.
    assert_rv(
        unsafe { (p.f.C_GetSlotList.unwrap())(CK_FALSE, small.as_mut_ptr(), null_mut()) },
        CKR_ARGUMENTS_BAD,
        "NULL count",
    );
    let slots = ok(p.slots(), "C_GetSlotList");
    let mut serials = Vec::new();
    for t in &svc.demo.tokens {
        let slot = p.slot_of(&t.label);
        assert!(slots.contains(&slot));
        let mut si = CK_SLOT_INFO::default();
        // SAFETY: valid out pointer.
        assert_rv(
            unsafe { (p.f.C_GetSlotInfo.unwrap())(slot, &mut si) },
            CKR_OK,
            "C_GetSlotInfo",
        );
        assert_eq!(
            si.flags & (CKF_TOKEN_PRESENT | CKF_REMOVABLE_DEVICE | CKF_HW_SLOT),
            CKF_TOKEN_PRESENT
        );
        let ti = ok(p.token_info(slot), "C_GetTokenInfo");
        assert_eq!(text(&ti.label), t.label);
        assert_eq!(text(&ti.manufacturerID), "cloudtoken");
        assert_eq!(text(&ti.model), "CSC remote token");
        let serial = text(&ti.serialNumber);
        assert_eq!(serial.len(), 16);
        assert!(serial.chars().all(|c| c.is_ascii_hexdigit()), "{serial}");
        serials.push(serial);
        // A token whose credentials are all authorized in the browser (dave's) needs no login once
        // its credentials are known; C_GetTokenInfo does not wait for them, so its flag is open.
        let browser_only = t.credentials.iter().all(|c| c.otp == "oauth2");
        let want = CKF_TOKEN_INITIALIZED
            | CKF_USER_PIN_INITIALIZED
            | if browser_only { 0 } else { CKF_LOGIN_REQUIRED }
            | CKF_RNG;
        assert_eq!(ti.flags & want, want);
        assert_eq!(ti.flags & CKF_WRITE_PROTECTED, 0);
        assert!(
            ti.ulMinPinLen <= t.pin.len() as CK_ULONG
                && ti.ulMaxPinLen >= (t.pin.len() + 6) as CK_ULONG
        );
        assert_eq!(ti.utcTime, [b' '; 16]);
    }
    serials.sort();
    serials.dedup();
    assert_eq!(
        serials.len(),
        svc.demo.tokens.len(),
        "serial numbers differ between tokens"
    );
    let bad = slots.iter().max().unwrap() + 100;
    assert!(matches!(p.token_info(bad), Err(CKR_SLOT_ID_INVALID)));
    let mut si = CK_SLOT_INFO::default();
    // SAFETY: valid out pointer.
    assert_rv(
        unsafe { (p.f.C_GetSlotInfo.unwrap())(bad, &mut si) },
        CKR_SLOT_ID_INVALID,
        "bad slot",
    );
    // SAFETY: NULL is the misuse under test.
    assert_rv(
        unsafe { (p.f.C_GetTokenInfo.unwrap())(slots[0], null_mut()) },
        CKR_ARGUMENTS_BAD,
        "NULL info",
    );
}

/// C_GetInterface as a PKCS#11 3.0 application calls it: name (NULL or "PKCS 11"), version (NULL or
/// major.minor) and flags; `Err` carries the CK_RV.
fn interface(
    p: P11,
    name: Option<&str>,
    version: Option<(u8, u8)>,
    flags: CK_FLAGS,
) -> Result<CK_INTERFACE, CK_RV> {
    let name = name.map(|n| std::ffi::CString::new(n).unwrap());
    let mut v = version.map(|(major, minor)| CK_VERSION { major, minor });
    let mut iface: *mut CK_INTERFACE = null_mut();
    // SAFETY: NULL or valid pointers to locals.
    let rv = unsafe {
        p.lib.C_GetInterface(
            name.as_ref()
                .map_or(null_mut(), |n| n.as_ptr() as *mut CK_UTF8CHAR),
            v.as_mut().map_or(null_mut(), |v| v as *mut CK_VERSION),
            &mut iface,
            flags,
        )
    };
    if rv != CKR_OK {
        return Err(rv);
    }
    assert!(!iface.is_null(), "CKR_OK without an interface");
    // SAFETY: the module returned a pointer to one of its interfaces.
    Ok(unsafe { *iface })
}

/// The version a function list starts with, and what its C_GetInfo reports (the module is initialized).
fn list_versions(iface: &CK_INTERFACE) -> ((u8, u8), (u8, u8)) {
    // Every PKCS#11 function list starts with its version and C_Initialize, C_Finalize, C_GetInfo, so
    // the 2.40 layout reads both.
    // SAFETY: pFunctionList points to a function list of the module.
    let list = unsafe { &*(iface.pFunctionList as *const CK_FUNCTION_LIST) };
    let mut info = CK_INFO::default();
    // SAFETY: valid out pointer.
    assert_rv(
        unsafe { (list.C_GetInfo.unwrap())(&mut info) },
        CKR_OK,
        "C_GetInfo",
    );
    (
        (list.version.major, list.version.minor),
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
    )
}

#[test]
fn interfaces_3_0_by_default_2_40_on_request_unknown_ones_refused() {
    let (_svc, p) = setup();
    let mut count: CK_ULONG = 0;
    let mut list = [CK_INTERFACE::default(); 2];
    // SAFETY: valid pointers to locals.
    unsafe {
        assert_rv(
            p.lib.C_GetInterfaceList(null_mut(), &mut count),
            CKR_OK,
            "C_GetInterfaceList size",
        );
        assert_eq!(count, 2, "3.0 and 2.40");
        assert_rv(
            p.lib.C_GetInterfaceList(list.as_mut_ptr(), &mut count),
            CKR_OK,
            "C_GetInterfaceList",
        );
    }
    for i in &list {
        // SAFETY: the module's interface name, NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(i.pInterfaceName as *const std::ffi::c_char) };
        assert_eq!(name.to_bytes(), b"PKCS 11");
        assert_eq!(i.flags, 0);
    }
    assert_eq!(
        list_versions(&list[0]),
        ((3, 0), (3, 0)),
        "the list's first interface is 3.0"
    );
    assert_eq!(list_versions(&list[1]), ((2, 40), (2, 40)));
    // The 2.40 interface is what C_GetFunctionList gives.
    assert_eq!(
        list[1].pFunctionList as *const CK_FUNCTION_LIST,
        p.f as *const CK_FUNCTION_LIST
    );

    let default = interface(p, None, None, 0).expect("the default interface");
    assert_eq!(
        list_versions(&default),
        ((3, 0), (3, 0)),
        "the default is 3.0"
    );
    for (name, version, want) in [
        (Some("PKCS 11"), None, (3, 0)),
        (Some("PKCS 11"), Some((3, 0)), (3, 0)),
        (None, Some((2, 40)), (2, 40)),
        (Some("PKCS 11"), Some((2, 40)), (2, 40)),
    ] {
        let got = interface(p, name, version, 0)
            .unwrap_or_else(|rv| panic!("{name:?} {version:?}: {}", rv_name(rv)));
        assert_eq!(list_versions(&got).0, want, "{name:?} {version:?}");
    }

    // Unknown names, versions and flags (PKCS#11 3.0 §5.4.6): CKR_ARGUMENTS_BAD, nothing returned.
    for (name, version, flags) in [
        (Some("PKCS 11 "), None, 0),
        (Some("pkcs 11"), None, 0),
        (Some(""), None, 0),
        (Some("Vendor Interface"), Some((3, 0)), 0),
        (None, Some((3, 1)), 0),
        (None, Some((2, 20)), 0),
        (Some("PKCS 11"), Some((4, 0)), 0),
        (None, None, CKF_INTERFACE_FORK_SAFE),
        (Some("PKCS 11"), Some((3, 0)), CKF_INTERFACE_FORK_SAFE),
        (None, None, 0x8000_0000),
    ] {
        assert_eq!(
            interface(p, name, version, flags).map(|i| list_versions(&i)),
            Err(CKR_ARGUMENTS_BAD),
            "C_GetInterface({name:?}, {version:?}, {flags:#x})"
        );
    }
    // SAFETY: NULL output pointers are the misuse under test.
    unsafe {
        assert_rv(
            p.lib.C_GetInterface(null_mut(), null_mut(), null_mut(), 0),
            CKR_ARGUMENTS_BAD,
            "NULL out",
        );
        assert_rv(
            p.lib.C_GetInterfaceList(null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD,
            "NULL count",
        );
        let mut short: CK_ULONG = 1;
        assert_rv(
            p.lib.C_GetInterfaceList(list.as_mut_ptr(), &mut short),
            CKR_BUFFER_TOO_SMALL,
            "short list",
        );
        assert_eq!(short, 2);
    }
}

#[test]
fn mechanism_list_and_info() {
    let (svc, p) = setup();
    let alice = svc.demo.token_of("alice");
    let slot = p.slot_of(&alice.label);
    let mut n: CK_ULONG = 0;
    // SAFETY: size query.
    assert_rv(
        unsafe { (p.f.C_GetMechanismList.unwrap())(slot, null_mut(), &mut n) },
        CKR_OK,
        "size query",
    );
    let mut list = vec![0; n as usize];
    let mut short = n - 1;
    // SAFETY: buffer of n entries, claimed shorter.
    assert_rv(
        unsafe { (p.f.C_GetMechanismList.unwrap())(slot, list.as_mut_ptr(), &mut short) },
        CKR_BUFFER_TOO_SMALL,
        "short",
    );
    assert_eq!(short, n);
    // SAFETY: buffer of n entries.
    assert_rv(
        unsafe { (p.f.C_GetMechanismList.unwrap())(slot, list.as_mut_ptr(), &mut n) },
        CKR_OK,
        "fill",
    );
    for m in [
        CKM_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_ECDSA,
        CKM_ECDSA_SHA256,
        CKM_SHA_1,
        CKM_SHA256,
        CKM_SHA512,
        CKM_GOSTR3411_12_256,
        CKM_GOSTR3411_12_512,
    ] {
        assert!(list.contains(&m), "mechanism 0x{m:x} missing");
    }
    for &m in &list {
        let mut mi = CK_MECHANISM_INFO::default();
        // SAFETY: valid out pointer.
        assert_rv(
            unsafe { (p.f.C_GetMechanismInfo.unwrap())(slot, m, &mut mi) },
            CKR_OK,
            "C_GetMechanismInfo",
        );
        if [
            CKM_SHA_1,
            CKM_SHA224,
            CKM_SHA256,
            CKM_SHA384,
            CKM_SHA512,
            CKM_GOSTR3411_12_256,
            CKM_GOSTR3411_12_512,
        ]
        .contains(&m)
        {
            assert_ne!(mi.flags & CKF_DIGEST, 0);
        } else {
            assert_ne!(mi.flags & CKF_SIGN, 0, "0x{m:x} signs");
            assert!(mi.ulMinKeySize <= mi.ulMaxKeySize && mi.ulMinKeySize > 0);
        }
    }
    // Alice has RSA-2048 and RSA-3072 keys, P-256 and P-384 keys.
    let mut mi = CK_MECHANISM_INFO::default();
    // SAFETY: valid out pointers.
    unsafe {
        assert_rv(
            (p.f.C_GetMechanismInfo.unwrap())(slot, CKM_RSA_PKCS, &mut mi),
            CKR_OK,
            "RSA info",
        );
        assert_eq!((mi.ulMinKeySize, mi.ulMaxKeySize), (2048, 3072));
        assert_rv(
            (p.f.C_GetMechanismInfo.unwrap())(slot, CKM_ECDSA, &mut mi),
            CKR_OK,
            "ECDSA info",
        );
        assert_eq!((mi.ulMinKeySize, mi.ulMaxKeySize), (256, 384));
        assert_rv(
            (p.f.C_GetMechanismInfo.unwrap())(slot, CKM_AES_CBC, &mut mi),
            CKR_MECHANISM_INVALID,
            "AES",
        );
        assert_rv(
            (p.f.C_GetMechanismInfo.unwrap())(slot, CKM_ECDSA, null_mut()),
            CKR_ARGUMENTS_BAD,
            "NULL",
        );
        assert_rv(
            (p.f.C_GetMechanismList.unwrap())(slot, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD,
            "NULL count",
        );
    }
}

/// CK_ATTRIBUTE with a buffer of `len` bytes (`None`: pValue NULL).
struct Req {
    ty: CK_ATTRIBUTE_TYPE,
    buf: Option<Vec<u8>>,
}

fn get_attrs(
    p: P11,
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    reqs: &mut [Req],
) -> (CK_RV, Vec<CK_ULONG>) {
    let mut t: Vec<CK_ATTRIBUTE> = reqs
        .iter_mut()
        .map(|r| CK_ATTRIBUTE {
            type_: r.ty,
            pValue: r
                .buf
                .as_mut()
                .map_or(null_mut(), |b| b.as_mut_ptr() as *mut c_void),
            ulValueLen: r.buf.as_ref().map_or(0, |b| b.len() as CK_ULONG),
        })
        .collect();
    // SAFETY: each entry points into `reqs`, alive for the call.
    let rv =
        unsafe { (p.f.C_GetAttributeValue.unwrap())(h, obj, t.as_mut_ptr(), t.len() as CK_ULONG) };
    (rv, t.iter().map(|a| a.ulValueLen).collect())
}

#[test]
fn certificates_and_public_keys_are_visible_before_login_private_keys_not() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("alice-p256");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    // Before login: certificates and public keys, no private keys.
    let certs = ok(
        p.find(h, &[(CKA_CLASS, ulong(CKO_CERTIFICATE))]),
        "find certificates",
    );
    let alice_creds = token.credentials.len();
    assert!(
        certs.len() >= alice_creds,
        "a certificate per credential (plus CA certificates)"
    );
    assert_eq!(
        ok(
            p.find(h, &[(CKA_CLASS, ulong(CKO_PUBLIC_KEY))]),
            "public keys"
        )
        .len(),
        alice_creds
    );
    assert!(ok(
        p.find(h, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]),
        "private keys"
    )
    .is_empty());
    // Vendor classes NSS probes: nothing.
    assert!(ok(
        p.find(h, &[(CKA_CLASS, ulong(CKO_VENDOR_DEFINED + 3))]),
        "vendor class"
    )
    .is_empty());
    let cert = find_labelled(p, h, CKO_CERTIFICATE, &cred.label)[0];
    let pubkey = find_labelled(p, h, CKO_PUBLIC_KEY, &cred.label)[0];
    let cert_der = ok(p.attr(h, cert, CKA_VALUE), "CKA_VALUE");
    // The public key is the certificate's.
    let point = ok(p.attr(h, pubkey, CKA_EC_POINT), "CKA_EC_POINT");
    assert!(point.len() > 65);
    let raw_point = &point[point.len() - 65..];
    assert!(
        cert_der.windows(65).any(|w| w == raw_point),
        "CKA_EC_POINT is the certificate's key"
    );

    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn c_get_attribute_value_processes_every_entry_of_a_template() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("alice-p256");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    let cert = find_labelled(p, h, CKO_CERTIFICATE, &cred.label)[0];
    // Several entries in one call: every one is processed; the call reports one of the errors.
    let mut reqs = [
        Req {
            ty: CKA_LABEL,
            buf: None,
        },
        Req {
            ty: CKA_VALUE,
            buf: Some(vec![0; 10]),
        },
        Req {
            ty: 0x7fff_0000,
            buf: Some(vec![0; 10]),
        },
        Req {
            ty: CKA_ID,
            buf: Some(vec![0; 64]),
        },
    ];
    let (rv, lens) = get_attrs(p, h, cert, &mut reqs);
    assert!(
        rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID,
        "{}",
        rv_name(rv)
    );
    assert_eq!(lens[0], cred.label.len() as CK_ULONG, "size query answered");
    assert_eq!(lens[1], CK_UNAVAILABLE_INFORMATION, "too small");
    assert_eq!(lens[2], CK_UNAVAILABLE_INFORMATION, "unknown type");
    let id = ok(p.attr(h, cert, CKA_ID), "CKA_ID");
    assert_eq!(
        lens[3],
        id.len() as CK_ULONG,
        "the valid entry is still filled"
    );
    assert_eq!(&reqs[3].buf.as_ref().unwrap()[..id.len()], &id[..]);
    // Exact-size buffer.
    let mut reqs = [Req {
        ty: CKA_LABEL,
        buf: Some(vec![0; cred.label.len()]),
    }];
    let (rv, _) = get_attrs(p, h, cert, &mut reqs);
    assert_rv(rv, CKR_OK, "exact buffer");
    assert_eq!(reqs[0].buf.as_deref(), Some(cred.label.as_bytes()));

    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn private_key_after_login_is_paired_by_id_sensitive_and_unextractable() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("alice-p256");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    let cert = find_labelled(p, h, CKO_CERTIFICATE, &cred.label)[0];
    let id = ok(p.attr(h, cert, CKA_ID), "CKA_ID");
    let cert_der = ok(p.attr(h, cert, CKA_VALUE), "CKA_VALUE");
    // Private key after login: paired by CKA_ID, sensitive, not extractable, signs.
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &cred.label);
    assert_eq!(key.id, id);
    assert_eq!(key.cert_der, cert_der);
    assert_eq!(
        ok(p.attr(h, key.private, CKA_SENSITIVE), "CKA_SENSITIVE"),
        [CK_TRUE]
    );
    assert_eq!(
        ok(p.attr(h, key.private, CKA_EXTRACTABLE), "CKA_EXTRACTABLE"),
        [CK_FALSE]
    );
    assert_eq!(ok(p.attr(h, key.private, CKA_SIGN), "CKA_SIGN"), [CK_TRUE]);
    assert_eq!(
        ok(p.attr(h, key.private, CKA_PRIVATE), "CKA_PRIVATE"),
        [CK_TRUE]
    );
    let mut reqs = [
        Req {
            ty: CKA_VALUE,
            buf: Some(vec![0; 64]),
        },
        Req {
            ty: CKA_KEY_TYPE,
            buf: Some(vec![0; 8]),
        },
    ];
    let (rv, lens) = get_attrs(p, h, key.private, &mut reqs);
    assert_rv(rv, CKR_ATTRIBUTE_SENSITIVE, "private value");
    assert_eq!(lens[0], CK_UNAVAILABLE_INFORMATION);
    assert_eq!(ulongs(reqs[1].buf.as_ref().unwrap())[0], CKK_EC);

    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn logout_hides_the_private_key_from_the_application() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("alice-p256");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &cred.label);
    // After logout the private key is gone for this application.
    assert_rv(p.logout(h), CKR_OK, "C_Logout");
    assert!(matches!(
        p.attr(h, key.private, CKA_LABEL),
        Err(CKR_OBJECT_HANDLE_INVALID)
    ));
    assert!(ok(
        p.find(h, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]),
        "private keys"
    )
    .is_empty());

    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn bad_object_handles_and_find_misuse_are_refused() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("alice-p256");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    let cert = find_labelled(p, h, CKO_CERTIFICATE, &cred.label)[0];
    // Handles and operations misused.
    assert!(matches!(
        p.attr(h, 0, CKA_LABEL),
        Err(CKR_OBJECT_HANDLE_INVALID)
    ));
    assert!(matches!(
        p.attr(h, 0x7fff_ffff, CKA_LABEL),
        Err(CKR_OBJECT_HANDLE_INVALID)
    ));
    assert!(matches!(
        p.attr(0x7fff_ffff, cert, CKA_LABEL),
        Err(CKR_SESSION_HANDLE_INVALID)
    ));
    // SAFETY: NULL template is the misuse under test.
    unsafe {
        assert_rv(
            (p.f.C_GetAttributeValue.unwrap())(h, cert, null_mut(), 1),
            CKR_ARGUMENTS_BAD,
            "NULL template",
        );
        let mut one: CK_OBJECT_HANDLE = 0;
        let mut n: CK_ULONG = 0;
        assert_rv(
            (p.f.C_FindObjects.unwrap())(h, &mut one, 1, &mut n),
            CKR_OPERATION_NOT_INITIALIZED,
            "no find",
        );
        assert_rv(
            (p.f.C_FindObjectsFinal.unwrap())(h),
            CKR_OPERATION_NOT_INITIALIZED,
            "no find",
        );
        assert_rv(
            (p.f.C_FindObjectsInit.unwrap())(h, null_mut(), 0),
            CKR_OK,
            "match all",
        );
        assert_rv(
            (p.f.C_FindObjectsInit.unwrap())(h, null_mut(), 0),
            CKR_OPERATION_ACTIVE,
            "twice",
        );
        assert_rv(
            (p.f.C_FindObjects.unwrap())(h, &mut one, 1, null_mut()),
            CKR_ARGUMENTS_BAD,
            "NULL count",
        );
        assert_rv(
            (p.f.C_FindObjects.unwrap())(h, &mut one, 1, &mut n),
            CKR_OK,
            "one at a time",
        );
        assert_eq!(n, 1);
        assert_rv((p.f.C_FindObjectsFinal.unwrap())(h), CKR_OK, "final");
        assert_rv(
            (p.f.C_FindObjectsInit.unwrap())(h, null_mut(), 2),
            CKR_ARGUMENTS_BAD,
            "NULL template, count 2",
        );
        let mut size: CK_ULONG = 0;
        assert_rv(
            (p.f.C_GetObjectSize.unwrap())(h, cert, &mut size),
            CKR_OK,
            "C_GetObjectSize",
        );
        let mut a = CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: 0,
        };
        assert_rv(
            (p.f.C_SetAttributeValue.unwrap())(h, cert, &mut a, 1),
            CKR_ACTION_PROHIBITED,
            "read-only",
        );
        assert_rv(
            (p.f.C_DestroyObject.unwrap())(h, cert),
            CKR_FUNCTION_NOT_SUPPORTED,
            "read-only",
        );
    }
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn sessions_and_login_state() {
    let (svc, p) = setup();
    let bob = svc.demo.token_of("bob");
    let _l = token_lock(&bob.label);
    let slot = p.slot_of(&bob.label);
    let mut h: CK_SESSION_HANDLE = 0;
    // SAFETY: valid pointers, or the NULL under test.
    unsafe {
        assert_rv(
            (p.f.C_OpenSession.unwrap())(slot, 0, null_mut(), None, &mut h),
            CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            "no serial flag",
        );
        assert_rv(
            (p.f.C_OpenSession.unwrap())(slot, CKF_SERIAL_SESSION, null_mut(), None, null_mut()),
            CKR_ARGUMENTS_BAD,
            "NULL",
        );
        assert_rv(
            (p.f.C_OpenSession.unwrap())(0x7fff, CKF_SERIAL_SESSION, null_mut(), None, &mut h),
            CKR_SLOT_ID_INVALID,
            "bad slot",
        );
        assert_rv(
            (p.f.C_OpenSession.unwrap())(
                slot,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                null_mut(),
                None,
                &mut h,
            ),
            CKR_OK,
            "RW",
        );
    }
    let ro = p.open(slot);
    let state = |s: CK_SESSION_HANDLE| {
        let mut si = CK_SESSION_INFO::default();
        // SAFETY: valid out pointer.
        assert_rv(
            unsafe { (p.f.C_GetSessionInfo.unwrap())(s, &mut si) },
            CKR_OK,
            "C_GetSessionInfo",
        );
        assert_eq!(si.slotID, slot);
        si.state
    };
    assert_eq!(state(h), CKS_RW_PUBLIC_SESSION);
    assert_eq!(state(ro), CKS_RO_PUBLIC_SESSION);
    let ti = ok(p.token_info(slot), "C_GetTokenInfo");
    assert_eq!((ti.ulSessionCount, ti.ulRwSessionCount), (2, 1));

    assert_rv(p.logout(ro), CKR_USER_NOT_LOGGED_IN, "logout before login");
    // A context login belongs to an operation (§5.6.11), whatever the login state.
    assert_rv(
        p.login(ro, CKU_CONTEXT_SPECIFIC, "123456"),
        CKR_OPERATION_NOT_INITIALIZED,
        "context before user",
    );
    // With a read-only session open, an SO login is refused for that first (§5.6.10).
    assert_rv(
        p.login(ro, CKU_SO, &bob.pin),
        CKR_SESSION_READ_ONLY_EXISTS,
        "no security officer",
    );
    assert_rv(
        p.login(ro, 77, &bob.pin),
        CKR_USER_TYPE_INVALID,
        "unknown user type",
    );
    // CKR_PIN_LEN_RANGE is not among C_Login's return values: an empty PIN is an incorrect one.
    assert_rv(p.login(ro, CKU_USER, ""), CKR_PIN_INCORRECT, "empty PIN");
    // SAFETY: NULL PIN is the misuse under test.
    assert_rv(
        unsafe { (p.f.C_Login.unwrap())(ro, CKU_USER, null_mut(), 6) },
        CKR_ARGUMENTS_BAD,
        "NULL PIN",
    );
    assert_rv(p.login(ro, CKU_USER, &bob.pin), CKR_OK, "C_Login");
    // The login belongs to the token: every session sees it.
    assert_eq!(state(h), CKS_RW_USER_FUNCTIONS);
    assert_eq!(state(ro), CKS_RO_USER_FUNCTIONS);
    assert_rv(
        p.login(h, CKU_USER, &bob.pin),
        CKR_USER_ALREADY_LOGGED_IN,
        "second login",
    );
    assert_rv(
        p.login(h, CKU_CONTEXT_SPECIFIC, "123456"),
        CKR_OPERATION_NOT_INITIALIZED,
        "context without operation",
    );

    // Closing the last session logs the user out.
    assert_rv(p.close(ro), CKR_OK, "close");
    assert_rv(p.close(ro), CKR_SESSION_HANDLE_INVALID, "closed twice");
    assert_eq!(state(h), CKS_RW_USER_FUNCTIONS, "one session left");
    assert_rv(p.close(h), CKR_OK, "close the last one");
    let h = p.open(slot);
    assert_eq!(
        state(h),
        CKS_RO_PUBLIC_SESSION,
        "logged out with the last session"
    );
    assert_rv(p.login(h, CKU_USER, &bob.pin), CKR_OK, "C_Login");
    let other = p.open(slot);
    // SAFETY: plain calls.
    unsafe {
        assert_rv(
            (p.f.C_CloseAllSessions.unwrap())(slot),
            CKR_OK,
            "C_CloseAllSessions",
        );
        assert_rv(
            (p.f.C_CloseAllSessions.unwrap())(0x7fff),
            CKR_SLOT_ID_INVALID,
            "bad slot",
        );
    }
    assert_rv(
        p.close(other),
        CKR_SESSION_HANDLE_INVALID,
        "closed by C_CloseAllSessions",
    );
    let h = p.open(slot);
    assert_eq!(state(h), CKS_RO_PUBLIC_SESSION);
    assert_rv(p.close(h), CKR_OK, "close");
}

#[test]
fn sign_size_queries_and_misuse_are_answered_locally() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("bob-p256-single");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    let cert = find_labelled(p, h, CKO_CERTIFICATE, &cred.label)[0];
    let pubkey = find_labelled(p, h, CKO_PUBLIC_KEY, &cred.label)[0];
    // PIN only: no OTP at hand, so any attempt to authorize would fail with CKR_USER_NOT_LOGGED_IN.
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &cred.label);
    let ecdsa = Mech::new(CKM_ECDSA_SHA256);
    let data = b"size queries";

    // SAFETY: valid pointers or the NULLs under test.
    unsafe {
        let sign = p.f.C_Sign.unwrap();
        let mut len: CK_ULONG = 0;
        assert_rv(
            sign(h, data.as_ptr() as *mut u8, 3, null_mut(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED,
            "no op",
        );
        assert_rv(p.sign_init(h, &ecdsa, key.private), CKR_OK, "C_SignInit");
        assert_rv(
            p.sign_init(h, &ecdsa, key.private),
            CKR_OPERATION_ACTIVE,
            "twice",
        );
        for _ in 0..3 {
            len = 0;
            assert_rv(
                sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as CK_ULONG,
                    null_mut(),
                    &mut len,
                ),
                CKR_OK,
                "length",
            );
            assert_eq!(len, 64, "P-256 r||s");
            let mut small = [0u8; 10];
            len = small.len() as CK_ULONG;
            assert_rv(
                sign(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as CK_ULONG,
                    small.as_mut_ptr(),
                    &mut len,
                ),
                CKR_BUFFER_TOO_SMALL,
                "small",
            );
            assert_eq!(len, 64);
        }
        // Neither query reached the service, and the operation is still active: the real call now
        // tries to authorize, finds no OTP, and ends the operation.
        let mut sig = [0u8; 64];
        len = 64;
        assert_rv(
            sign(
                h,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                sig.as_mut_ptr(),
                &mut len,
            ),
            CKR_USER_NOT_LOGGED_IN,
            "no OTP",
        );
        assert_rv(
            sign(
                h,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                sig.as_mut_ptr(),
                &mut len,
            ),
            CKR_OPERATION_NOT_INITIALIZED,
            "ended",
        );

        // A NULL length pointer ends the operation.
        assert_rv(p.sign_init(h, &ecdsa, key.private), CKR_OK, "C_SignInit");
        assert_rv(
            sign(
                h,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                null_mut(),
                null_mut(),
            ),
            CKR_ARGUMENTS_BAD,
            "NULL len",
        );
        assert_rv(
            sign(
                h,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                null_mut(),
                &mut len,
            ),
            CKR_OPERATION_NOT_INITIALIZED,
            "ended",
        );
        // NULL data with a length.
        assert_rv(p.sign_init(h, &ecdsa, key.private), CKR_OK, "C_SignInit");
        assert_rv(
            sign(h, null_mut(), 5, sig.as_mut_ptr(), &mut len),
            CKR_ARGUMENTS_BAD,
            "NULL data",
        );

        // Bad keys and mechanisms.
        assert_rv(
            (p.f.C_SignInit.unwrap())(h, null_mut(), key.private),
            CKR_ARGUMENTS_BAD,
            "NULL mechanism",
        );
        assert_rv(
            p.sign_init(h, &ecdsa, cert),
            CKR_KEY_HANDLE_INVALID,
            "a certificate",
        );
        assert_rv(
            p.sign_init(h, &ecdsa, pubkey),
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            "a public key",
        );
        assert_rv(
            p.sign_init(h, &ecdsa, 0x7fff_ffff),
            CKR_KEY_HANDLE_INVALID,
            "no such key",
        );
        assert_rv(
            p.sign_init(h, &Mech::new(CKM_SHA256), key.private),
            CKR_MECHANISM_INVALID,
            "a digest mechanism",
        );
        let rv = p.sign_init(h, &Mech::new(CKM_SHA256_RSA_PKCS), key.private);
        assert!(
            rv == CKR_MECHANISM_INVALID || rv == CKR_KEY_TYPE_INCONSISTENT,
            "RSA on EC: {}",
            rv_name(rv)
        );
        let mut m = CK_MECHANISM {
            mechanism: CKM_ECDSA,
            pParameter: null_mut(),
            ulParameterLen: 8,
        };
        assert_rv(
            (p.f.C_SignInit.unwrap())(h, &mut m, key.private),
            CKR_MECHANISM_PARAM_INVALID,
            "NULL parameter, length 8",
        );
        assert_rv(
            p.sign_update(h, b"x"),
            CKR_OPERATION_NOT_INITIALIZED,
            "nothing started",
        );
        let mut len: CK_ULONG = 0;
        assert_rv(
            (p.f.C_SignFinal.unwrap())(h, null_mut(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED,
            "nothing started",
        );

        // The private key needs the login.
        assert_rv(p.logout(h), CKR_OK, "C_Logout");
        assert_rv(
            p.sign_init(h, &ecdsa, key.private),
            CKR_USER_NOT_LOGGED_IN,
            "logged out",
        );
        assert_rv(
            p.sign_init(0x7fff_ffff, &ecdsa, key.private),
            CKR_SESSION_HANDLE_INVALID,
            "bad session",
        );
    }
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn rsa_input_rules() {
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("bob-rsa2048-scal2");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &cred.label);
    let d = sha("sha256", b"x");
    // CKM_RSA_PKCS wants a DigestInfo: a bare hash or garbage is refused before anything is sent.
    for bad in [
        d.clone(),
        vec![0x30, 0x00],
        [digest_info("sha256", &d), vec![0]].concat(),
    ] {
        assert_rv(
            p.sign_init(h, &Mech::new(CKM_RSA_PKCS), key.private),
            CKR_OK,
            "C_SignInit",
        );
        let mut len: CK_ULONG = 256;
        let mut sig = [0u8; 256];
        // SAFETY: valid buffers.
        let rv = unsafe {
            (p.f.C_Sign.unwrap())(
                h,
                bad.as_ptr() as *mut u8,
                bad.len() as CK_ULONG,
                sig.as_mut_ptr(),
                &mut len,
            )
        };
        assert!(
            rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE,
            "{}",
            rv_name(rv)
        );
    }
    // PSS parameters must match the hash.
    let wrong = Mech::pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA384, 32);
    assert_rv(
        p.sign_init(h, &wrong, key.private),
        CKR_MECHANISM_PARAM_INVALID,
        "MGF of another hash",
    );
    let wrong = Mech::pss(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 32);
    assert_rv(
        p.sign_init(h, &wrong, key.private),
        CKR_MECHANISM_PARAM_INVALID,
        "hashAlg of another hash",
    );
    let wrong = Mech::pss(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 256);
    assert_rv(
        p.sign_init(h, &wrong, key.private),
        CKR_MECHANISM_PARAM_INVALID,
        "salt too long",
    );
    assert_rv(
        p.sign_init(h, &Mech::new(CKM_SHA256_RSA_PKCS_PSS), key.private),
        CKR_MECHANISM_PARAM_INVALID,
        "no params",
    );
    // CKM_RSA_PKCS_PSS gets a bare hash of the parameter's length.
    assert_rv(
        p.sign_init(
            h,
            &Mech::pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32),
            key.private,
        ),
        CKR_OK,
        "init",
    );
    let mut len: CK_ULONG = 256;
    let mut sig = [0u8; 256];
    // SAFETY: valid buffers.
    let rv =
        unsafe { (p.f.C_Sign.unwrap())(h, d.as_ptr() as *mut u8, 20, sig.as_mut_ptr(), &mut len) };
    assert!(
        rv == CKR_DATA_LEN_RANGE || rv == CKR_DATA_INVALID,
        "{}",
        rv_name(rv)
    );
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn local_digests() {
    let (svc, p) = setup();
    let h = p.open(p.slot_of(&svc.demo.tokens[0].label));
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    for (name, mech, _) in HASHES {
        let want = sha(name, &data);
        let m = Mech::new(mech).raw();
        // SAFETY: valid pointers throughout, or the NULLs under test.
        unsafe {
            let mut mm = m;
            assert_rv(
                (p.f.C_DigestInit.unwrap())(h, &mut mm),
                CKR_OK,
                "C_DigestInit",
            );
            assert_rv(
                (p.f.C_DigestInit.unwrap())(h, &mut mm),
                CKR_OPERATION_ACTIVE,
                "twice",
            );
            let mut len: CK_ULONG = 0;
            assert_rv(
                (p.f.C_Digest.unwrap())(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as CK_ULONG,
                    null_mut(),
                    &mut len,
                ),
                CKR_OK,
                "length",
            );
            assert_eq!(len as usize, want.len());
            let mut out = vec![0u8; want.len()];
            len = 4;
            assert_rv(
                (p.f.C_Digest.unwrap())(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as CK_ULONG,
                    out.as_mut_ptr(),
                    &mut len,
                ),
                CKR_BUFFER_TOO_SMALL,
                "small",
            );
            assert_eq!(len as usize, want.len());
            assert_rv(
                (p.f.C_Digest.unwrap())(
                    h,
                    data.as_ptr() as *mut u8,
                    data.len() as CK_ULONG,
                    out.as_mut_ptr(),
                    &mut len,
                ),
                CKR_OK,
                "digest",
            );
            assert_eq!(out, want, "{name}");
            assert_rv(
                (p.f.C_Digest.unwrap())(h, data.as_ptr() as *mut u8, 1, out.as_mut_ptr(), &mut len),
                CKR_OPERATION_NOT_INITIALIZED,
                "ended",
            );
            // Multi-part.
            assert_rv(
                (p.f.C_DigestInit.unwrap())(h, &mut mm),
                CKR_OK,
                "C_DigestInit",
            );
            for part in data.chunks(333) {
                assert_rv(
                    (p.f.C_DigestUpdate.unwrap())(
                        h,
                        part.as_ptr() as *mut u8,
                        part.len() as CK_ULONG,
                    ),
                    CKR_OK,
                    "update",
                );
            }
            assert_rv(
                (p.f.C_Digest.unwrap())(h, data.as_ptr() as *mut u8, 1, out.as_mut_ptr(), &mut len),
                CKR_OPERATION_ACTIVE,
                "single after update",
            );
            len = 0;
            assert_rv(
                (p.f.C_DigestFinal.unwrap())(h, null_mut(), &mut len),
                CKR_OK,
                "final length",
            );
            assert_eq!(len as usize, want.len());
            assert_rv(
                (p.f.C_DigestFinal.unwrap())(h, out.as_mut_ptr(), &mut len),
                CKR_OK,
                "final",
            );
            assert_eq!(out, want, "{name} multi-part");
            assert_rv(
                (p.f.C_DigestKey.unwrap())(h, 1),
                CKR_OPERATION_NOT_INITIALIZED,
                "no digest",
            );
        }
    }
    // SAFETY: valid pointers, or the NULLs under test.
    unsafe {
        let mut bad = Mech::new(CKM_SHA256_RSA_PKCS).raw();
        assert_rv(
            (p.f.C_DigestInit.unwrap())(h, &mut bad),
            CKR_MECHANISM_INVALID,
            "not a digest",
        );
        assert_rv(
            (p.f.C_DigestInit.unwrap())(h, null_mut()),
            CKR_ARGUMENTS_BAD,
            "NULL mechanism",
        );
        let mut len: CK_ULONG = 0;
        assert_rv(
            (p.f.C_DigestFinal.unwrap())(h, null_mut(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED,
            "none",
        );
        assert_rv(
            (p.f.C_DigestUpdate.unwrap())(0x7fff_ffff, null_mut(), 0),
            CKR_SESSION_HANDLE_INVALID,
            "bad session",
        );
    }
    assert_rv(p.close(h), CKR_OK, "close");
}

#[test]
fn random_parallel_stubs_and_unsupported_functions() {
    let (svc, p) = setup();
    let slot = p.slot_of(&svc.demo.tokens[0].label);
    let h = p.open(slot);
    // SAFETY: valid pointers, or the NULLs under test.
    unsafe {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        assert_rv(
            (p.f.C_GenerateRandom.unwrap())(h, a.as_mut_ptr(), 32),
            CKR_OK,
            "random",
        );
        assert_rv(
            (p.f.C_GenerateRandom.unwrap())(h, b.as_mut_ptr(), 32),
            CKR_OK,
            "random",
        );
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
        assert_rv(
            (p.f.C_GenerateRandom.unwrap())(h, null_mut(), 4),
            CKR_ARGUMENTS_BAD,
            "NULL",
        );
        assert_rv(
            (p.f.C_SeedRandom.unwrap())(h, a.as_mut_ptr(), 4),
            CKR_RANDOM_SEED_NOT_SUPPORTED,
            "seed",
        );
        assert_rv(
            (p.f.C_GetFunctionStatus.unwrap())(h),
            CKR_FUNCTION_NOT_PARALLEL,
            "status",
        );
        assert_rv(
            (p.f.C_CancelFunction.unwrap())(h),
            CKR_FUNCTION_NOT_PARALLEL,
            "cancel",
        );
        let mut m = Mech::new(CKM_RSA_PKCS).raw();
        assert_rv(
            (p.f.C_EncryptInit.unwrap())(h, &mut m, 1),
            CKR_FUNCTION_NOT_SUPPORTED,
            "encrypt",
        );
        assert_rv(
            (p.f.C_DecryptInit.unwrap())(h, &mut m, 1),
            CKR_FUNCTION_NOT_SUPPORTED,
            "decrypt",
        );
        assert_rv(
            (p.f.C_VerifyInit.unwrap())(h, &mut m, 1),
            CKR_FUNCTION_NOT_SUPPORTED,
            "verify",
        );
        assert_rv(
            (p.f.C_GenerateKeyPair.unwrap())(
                h,
                &mut m,
                null_mut(),
                0,
                null_mut(),
                0,
                null_mut(),
                null_mut(),
            ),
            CKR_FUNCTION_NOT_SUPPORTED,
            "keygen",
        );
        assert_rv(
            (p.f.C_EncryptInit.unwrap())(0x7fff_ffff, &mut m, 1),
            CKR_SESSION_HANDLE_INVALID,
            "bad session first",
        );
        assert_rv(
            (p.f.C_InitToken.unwrap())(slot, null_mut(), 0, null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED,
            "init token",
        );
        assert_rv(
            (p.f.C_SetPIN.unwrap())(h, null_mut(), 0, null_mut(), 0),
            CKR_FUNCTION_NOT_SUPPORTED,
            "set PIN",
        );
        assert_rv(
            (p.f.C_CreateObject.unwrap())(h, null_mut(), 0, null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED,
            "create",
        );
        let mut state_len: CK_ULONG = 0;
        assert_rv(
            (p.f.C_GetOperationState.unwrap())(h, null_mut(), &mut state_len),
            CKR_FUNCTION_NOT_SUPPORTED,
            "op state",
        );
        let mut ev: CK_SLOT_ID = 0;
        assert_rv(
            (p.f.C_WaitForSlotEvent.unwrap())(CKF_DONT_BLOCK, &mut ev, null_mut()),
            CKR_NO_EVENT,
            "no event",
        );
        let _ = null::<u8>();
    }
    assert_rv(p.close(h), CKR_OK, "close");
}

#[test]
fn passcode_login_signs_without_network_at_login() {
    // C_Login itself never talks to the service: a wrong PIN is accepted by C_Login and refused at the
    // first authorization (see pkcs11_auth.rs); here, the right passcode signs.
    let (svc, p) = setup();
    let (token, cred) = svc.demo.credential("alice-rsa2048");
    let _l = token_lock(&token.label);
    let h = p.open(p.slot_of(&token.label));
    assert_rv(
        p.login(h, CKU_USER, &format!("{}{}", token.pin, totp_code(cred))),
        CKR_OK,
        "C_Login",
    );
    let key = key_of(p, h, &cred.label);
    let case = cases_for(CKM_SHA256_RSA_PKCS, b"api").remove(0);
    let sig = ok(p.sign(h, &case.mech, key.private, &case.input), "sign");
    assert_eq!(sig.len(), 256);
    case.assert_verified(&key, &sig);
    assert_rv(p.close(h), CKR_OK, "close");
}

#[test]
fn c_header_builds_an_application_that_loads_the_module() {
    let svc = support::Service::shared();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let pkcs11_h = std::path::Path::new("/usr/include/p11-kit-1/p11-kit/pkcs11.h");
    assert!(
        pkcs11_h.exists(),
        "p11-kit's pkcs11.h is needed (apt-get install libp11-kit-dev)"
    );
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("header_check");
    let out = std::process::Command::new("cc")
        .args([
            "-Wall",
            "-Werror",
            "-std=c99",
            "-D_POSIX_C_SOURCE=200809L",
            "-o",
        ])
        .arg(&exe)
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I/usr/include/p11-kit-1")
        .arg({
            let src = dir.path().join("header_check.c");
            std::fs::write(&src, HEADER_CHECK_C).unwrap();
            src
        })
        .arg("-ldl")
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A process of its own: the module is initialized there with its own configuration path.
    let out = std::process::Command::new(&exe)
        .arg(support::module_path())
        .arg(svc.config_file())
        .env_remove("CLOUDTOKEN_CONFIG")
        .output()
        .expect("run header_check");
    assert!(
        out.status.success(),
        "header_check exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("slots {} manufacturer 1 model 1", svc.demo.tokens.len())
    );
}

/// A C application using include/cloudtoken.h with p11-kit's pkcs11.h.
const HEADER_CHECK_C: &str = r#"/* Usage: header_check MODULE CONFIG; prints "slots N manufacturer M". */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <p11-kit/pkcs11.h>
#include "cloudtoken.h"

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 3; }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f = NULL;
    if (!get || get(&f) != CKR_OK) return 4;
    char conf[4096];
    snprintf(conf, sizeof conf, "%s%s", CLOUDTOKEN_CONF_PREFIX, argv[2]);
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = conf;
    CK_RV rv = f->C_Initialize(&args);
    if (rv != CKR_OK) { fprintf(stderr, "C_Initialize: 0x%lx\n", rv); return 5; }
    CK_ULONG n = 0;
    if (f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n == 0) return 6;
    CK_SLOT_ID slot;
    CK_ULONG one = 1;
    rv = f->C_GetSlotList(CK_TRUE, &slot, &one);
    if (n > 1 && rv != CKR_BUFFER_TOO_SMALL) return 7;
    CK_SLOT_ID *slots = calloc(n, sizeof *slots);
    if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) return 8;
    CK_TOKEN_INFO ti;
    if (f->C_GetTokenInfo(slots[0], &ti) != CKR_OK) return 9;
    size_t m = strlen(CLOUDTOKEN_MANUFACTURER_ID);
    int manufacturer = memcmp(ti.manufacturerID, CLOUDTOKEN_MANUFACTURER_ID, m) == 0 && ti.manufacturerID[m] == ' ';
    int model = memcmp(ti.model, CLOUDTOKEN_TOKEN_MODEL, strlen(CLOUDTOKEN_TOKEN_MODEL)) == 0;
    if (f->C_Finalize(NULL) != CKR_OK) return 10;
    printf("slots %lu manufacturer %d model %d\n", (unsigned long)n, manufacturer, model);
    free(slots);
    dlclose(lib);
    return 0;
}
"#;

/// What `ssh-keygen -D` (OpenSSH's PKCS#11 client) shows as identities. OpenSSH lists the public key of
/// every X.509 certificate object (it looks for no matching private key, nor at
/// CKA_CERTIFICATE_CATEGORY), so the CA certificate the token shows appears too. NSS and Java use that
/// certificate to build a signer's chain (NSS finds issuers on tokens; SunPKCS11's key store builds a
/// key entry's chain from the token's certificates), so it stays; this test pins what OpenSSH sees:
/// every credential exactly once, and besides them only the CA, named as such.
#[test]
fn ssh_keygen_lists_every_credential_once_and_besides_them_only_the_ca() {
    let (svc, _) = setup();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-D")
        .arg(support::module_path())
        .env("CLOUDTOKEN_CONFIG", svc.config_file())
        .output()
        .expect("run ssh-keygen (Debian package openssh-client; tests/run.sh installs it)");
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ssh-keygen -D: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let comments: Vec<String> = listed
        .lines()
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").trim().to_owned())
        .collect();
    for t in &svc.demo.tokens {
        for c in &t.credentials {
            assert_eq!(
                comments.iter().filter(|l| **l == c.label).count(),
                1,
                "{} listed once:\n{listed}",
                c.label
            );
        }
    }
    let credentials: usize = svc.demo.tokens.iter().map(|t| t.credentials.len()).sum();
    let others: Vec<&String> = comments
        .iter()
        .filter(|l| {
            !svc.demo
                .tokens
                .iter()
                .any(|t| t.credentials.iter().any(|c| c.label == **l))
        })
        .collect();
    assert_eq!(comments.len(), credentials + others.len());
    assert!(
        others.iter().all(|l| l.contains("CA")),
        "identities that are neither a credential nor the CA: {others:?}"
    );
}
