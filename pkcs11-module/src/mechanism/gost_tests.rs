//! The GOST R 34.11-2012 hashes against the standard's examples, and the GOST R 34.10-2012 mechanisms:
//! table, input rules, parameters, and the acceptance of real signatures (made by OpenSSL's GOST engine,
//! tests-data/verify/generate.sh) in either byte order. The acceptance tests run Debian's `openssl` with
//! `libengine-gost-openssl` (tests/run.sh installs both); without them they fail, loudly.

use super::gost::{self, GostSize, ParamSet, CKM_GOSTR3410_512};
use super::gost::{CKM_GOSTR3410_WITH_GOSTR3411_12_256, CKM_GOSTR3410_WITH_GOSTR3411_12_512};
use super::gost_check::GostKey;
use super::tests::hex;
use super::*;
use remote_client::oid;
use std::path::Path;

/// GOST R 34.11-2012 appendix A (also RFC 6986 §10). The standard writes the messages and digests as
/// numbers, most significant byte first; in memory (the byte order of every implementation, OpenSSL's
/// included) example 1 is the ASCII string below and example 2 its text in CP1251, and the digests are
/// the byte strings printed here.
const M1: &[u8] = b"012345678901234567890123456789012345678901234567890123456789012";
const M2_HEX: &str = "d1e520e2e5f2f0e82c20d1f2f0e8e1eee6e820e2edf3f6e82c20e2e5fef2fa20f120eceef0ff20f1f2f0e5ebe0ece820\
                      ede020f5f0e0e1f0fbff20efebfaeafb20c8e3eef0e5e2fb";

#[test]
fn streebog_matches_the_standards_examples() {
    let m2 = hex(M2_HEX);
    let cases: [(HashAlg, &[u8], &str); 4] = [
        (
            HashAlg::Streebog256,
            M1,
            "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500",
        ),
        (
            HashAlg::Streebog512,
            M1,
            "1b54d01a4af5b9d5cc3d86d68d285462b19abc2475222f35c085122be4ba1ffa\
             00ad30f8767b3a82384c6574f024c311e2a481332b08ef7f41797891c1646f48",
        ),
        (
            HashAlg::Streebog256,
            &m2,
            "9dd2fe4e90409e5da87f53976d7405b0c0cac628fc669a741d50063c557e8f50",
        ),
        (
            HashAlg::Streebog512,
            &m2,
            "1e88e62226bfca6f9994f1f2d51569e0daf8475a3b0fe61a5300eee46d961376\
             035fe83549ada2b8620fcd7c496ce5b33f0cb9dddc2b6460143b03dabac9fb28",
        ),
    ];
    for (h, message, want) in cases {
        assert_eq!(h.digest(message), hex(want), "{h:?}");
        // Incrementally, split inside a 64-byte block.
        let mut inc = h.hasher();
        inc.update(&message[..17]);
        inc.update(&message[17..]);
        assert_eq!(inc.finalize(), hex(want), "{h:?} incremental");
    }
    assert_eq!(
        HashAlg::from_ckm_digest(CKM_GOSTR3411_12_256),
        Some(HashAlg::Streebog256)
    );
    assert_eq!(HashAlg::Streebog512.oid(), "1.2.643.7.1.1.2.3");
    assert!(DIGEST_MECHANISMS.contains(&CKM_GOSTR3411_12_512));
}

#[test]
fn tc26_codes_are_those_of_opensc() {
    // OpenSC src/pkcs11/pkcs11.h: NSSCK_VENDOR_PKCS11_RU_TEAM = CKK_VENDOR_DEFINED | 0x54321000.
    assert_eq!(gost::CK_VENDOR_PKCS11_RU_TEAM_TC26, 0xD432_1000);
    assert_eq!(gost::CKK_GOSTR3410_512, 0xD432_1003);
    assert_eq!(CKM_GOSTR3410_512, 0xD432_1006);
    assert_eq!(CKM_GOSTR3410_WITH_GOSTR3411_12_256, 0xD432_1008);
    assert_eq!(CKM_GOSTR3410_WITH_GOSTR3411_12_512, 0xD432_1009);
    assert_eq!(CKM_GOSTR3411_12_256, 0xD432_1012);
    assert_eq!(CKM_GOSTR3411_12_512, 0xD432_1013);
    // PKCS#11 v2.40's own.
    assert_eq!((CKK_GOSTR3410, CKM_GOSTR3410), (0x30, 0x1201));
    assert_eq!((CKA_GOSTR3410_PARAMS, CKA_GOSTR3411_PARAMS), (0x250, 0x251));
    // DER of an OID, as CKA_GOSTR3410_PARAMS carries it (the bytes pkcs11-tool compares).
    assert_eq!(
        gost::oid_der("1.2.643.7.1.2.1.1.1").unwrap(),
        hex("06 09 2a 85 03 07 01 02 01 01 01")
    );
    assert_eq!(
        gost::oid_der(oid::STREEBOG_256).unwrap(),
        hex("06 08 2a 85 03 07 01 01 02 02")
    );
}

fn gost_key(size: GostSize) -> KeyKind {
    let set = match size {
        GostSize::Bits256 => "1.2.643.2.2.35.1",
        GostSize::Bits512 => "1.2.643.7.1.2.1.2.1",
    };
    KeyKind::Gost {
        params: ParamSet::find(set, size).unwrap(),
    }
}

fn key_info(algos: &[&str], bits: u32) -> KeyInfo {
    KeyInfo {
        status: "enabled".into(),
        algos: algos.iter().map(|s| s.to_string()).collect(),
        len: bits,
        curve: None,
    }
}

fn gost_plan(mech: &Mechanism, size: GostSize) -> Result<SignPlan, CK_RV> {
    let kind = gost_key(size);
    let info = key_info(&[size.sign_oid()], size.bits());
    let allowed = mechanisms_for(&info, &kind);
    plan(mech, &kind, &info, &allowed)
}

#[test]
fn each_gost_key_has_the_two_mechanisms_of_its_size() {
    let k256 = gost_key(GostSize::Bits256);
    let k512 = gost_key(GostSize::Bits512);
    let both = [oid::SIGN_WITH_STREEBOG_256, oid::SIGN_WITH_STREEBOG_512];
    assert_eq!(
        mechanisms_for(&key_info(&both, 256), &k256),
        [CKM_GOSTR3410, CKM_GOSTR3410_WITH_GOSTR3411_12_256]
    );
    assert_eq!(
        mechanisms_for(&key_info(&both, 512), &k512),
        [CKM_GOSTR3410_512, CKM_GOSTR3410_WITH_GOSTR3411_12_512]
    );
    // Only what the service names: a 256-bit key the service offers nothing for cannot sign.
    assert!(mechanisms_for(&key_info(&[oid::SIGN_WITH_STREEBOG_512], 256), &k256).is_empty());
    assert!(mechanisms_for(&key_info(&[], 256), &k256).is_empty());
    // No RSA or ECDSA mechanism for a GOST key, and no GOST one for the others.
    let everything = [
        oid::SHA256_WITH_RSA,
        oid::ECDSA_WITH_SHA256,
        oid::SIGN_WITH_STREEBOG_256,
    ];
    let rsa = mechanisms_for(&key_info(&everything, 2048), &KeyKind::Rsa { bits: 2048 });
    assert!(
        !rsa.is_empty()
            && rsa
                .iter()
                .all(|m| *m < gost::CK_VENDOR_PKCS11_RU_TEAM_TC26 && *m != CKM_GOSTR3410)
    );
    assert_eq!(
        mechanisms_for(&key_info(&everything, 256), &k256),
        [CKM_GOSTR3410, CKM_GOSTR3410_WITH_GOSTR3411_12_256]
    );
    let info = mechanism_info(CKM_GOSTR3410_512, 512..=512).unwrap();
    assert_eq!(
        (info.ulMinKeySize, info.ulMaxKeySize, info.flags),
        (512, 512, CKF_SIGN | CKF_HW)
    );
    assert_eq!(k256.ck_key_type(), CKK_GOSTR3410);
    assert_eq!(k512.ck_key_type(), gost::CKK_GOSTR3410_512);
    assert_eq!((k256.signature_len(), k512.signature_len()), (64, 128));
}

#[test]
fn gost_plans_follow_the_input_rules() {
    use GostSize::{Bits256, Bits512};
    // The mechanism of the other size: the key type is inconsistent with it.
    for (mech, size) in [
        (CKM_GOSTR3410_512, Bits256),
        (CKM_GOSTR3410_WITH_GOSTR3411_12_512, Bits256),
        (CKM_GOSTR3410, Bits512),
        (CKM_GOSTR3410_WITH_GOSTR3411_12_256, Bits512),
    ] {
        assert_eq!(
            gost_plan(&Mechanism::new(mech), size).unwrap_err(),
            CKR_KEY_TYPE_INCONSISTENT,
            "{mech:#x}"
        );
    }
    // The raw mechanisms take exactly the key size's hash.
    let raw = gost_plan(&Mechanism::new(CKM_GOSTR3410), Bits256).unwrap();
    assert_eq!(raw.input(), plan::Input::BareHash);
    assert!(!raw.supports_multipart());
    assert_eq!(raw.signature_len(), 64);
    for bad in [0, 31, 33, 64] {
        assert_eq!(
            raw.request_for_data(&vec![7; bad]).unwrap_err(),
            CKR_DATA_LEN_RANGE,
            "{bad} bytes"
        );
    }
    let parts = raw.request_for_data(&[7; 32]).unwrap();
    assert_eq!(parts.hash, vec![7; 32]);
    assert_eq!(parts.hash_alg, HashAlg::Streebog256);
    assert_eq!(parts.sign_algo_oid, oid::SIGN_WITH_STREEBOG_256);
    let raw512 = gost_plan(&Mechanism::new(CKM_GOSTR3410_512), Bits512).unwrap();
    assert_eq!(
        raw512.request_for_data(&[1; 32]).unwrap_err(),
        CKR_DATA_LEN_RANGE
    );
    assert_eq!(
        raw512.request_for_data(&[1; 64]).unwrap().hash_alg,
        HashAlg::Streebog512
    );

    // Hash-and-sign: the message is hashed here, single- or multi-part alike.
    let hashing = gost_plan(
        &Mechanism::new(CKM_GOSTR3410_WITH_GOSTR3411_12_512),
        Bits512,
    )
    .unwrap();
    assert!(hashing.supports_multipart());
    let single = hashing.request_for_data(b"a message").unwrap();
    let mut h = hashing.hasher().unwrap();
    h.update(b"a ");
    h.update(b"message");
    let multi = hashing.request_for_digest(h.finalize()).unwrap();
    assert_eq!(single, multi);
    assert_eq!(single.hash, HashAlg::Streebog512.digest(b"a message"));
    assert_eq!(single.sign_algo_oid, oid::SIGN_WITH_STREEBOG_512);
    assert_eq!(hashing.signature_len(), 128);
}

#[test]
fn gost_mechanism_parameters() {
    let with = |mech, param: Vec<u8>| Mechanism {
        mechanism: mech,
        parameter: param,
    };
    let streebog256 = gost::oid_der(oid::STREEBOG_256).unwrap();
    // The hashing mechanism may name its own hash; nothing else.
    assert!(gost_plan(
        &with(CKM_GOSTR3410_WITH_GOSTR3411_12_256, streebog256.clone()),
        GostSize::Bits256
    )
    .is_ok());
    for (mech, param) in [
        (
            CKM_GOSTR3410_WITH_GOSTR3411_12_256,
            gost::oid_der(oid::STREEBOG_512).unwrap(),
        ),
        (CKM_GOSTR3410_WITH_GOSTR3411_12_256, vec![0x05, 0x00]),
        (CKM_GOSTR3410, streebog256.clone()),
    ] {
        assert_eq!(
            gost_plan(&with(mech, param), GostSize::Bits256).unwrap_err(),
            CKR_MECHANISM_PARAM_INVALID
        );
    }
}

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!("../../tests-data/verify/", $name))
    };
}

fn public_key(size: GostSize) -> PublicKey {
    let spki: &[u8] = match size {
        GostSize::Bits256 => vector!("gost256.spki.der"),
        GostSize::Bits512 => vector!("gost512.spki.der"),
    };
    PublicKey::from_spki(spki, &gost_key(size)).unwrap()
}

fn raw_plan(size: GostSize) -> SignPlan {
    let mech = match size {
        GostSize::Bits256 => CKM_GOSTR3410,
        GostSize::Bits512 => CKM_GOSTR3410_512,
    };
    gost_plan(&Mechanism::new(mech), size).unwrap()
}

#[test]
fn real_gost_signatures_are_accepted_in_either_byte_order() {
    for (size, sig) in [
        (GostSize::Bits256, &vector!("gost256-abc.sig")[..]),
        (GostSize::Bits512, &vector!("gost512-abc.sig")[..]),
    ] {
        let key = public_key(size);
        let plan = raw_plan(size);
        let parts = plan.request_for_data(&size.hash().digest(b"abc")).unwrap();
        // As OpenSSL (and PKCS#11) orders it: s || r, big-endian.
        assert_eq!(plan.accept(&key, &parts, sig), Ok(sig.to_vec()), "{size:?}");
        // Reversed as a whole (CryptoAPI's little-endian order): normalised back.
        let reversed: Vec<u8> = sig.iter().rev().copied().collect();
        assert_eq!(
            plan.accept(&key, &parts, &reversed),
            Ok(sig.to_vec()),
            "{size:?}"
        );
        // An altered signature, another hash, or the wrong length is never returned.
        let mut altered = sig.to_vec();
        altered[5] ^= 0x40;
        assert_eq!(
            plan.accept(&key, &parts, &altered),
            Err(Rejected::DoesNotVerify)
        );
        let other = plan.request_for_data(&size.hash().digest(b"abd")).unwrap();
        assert_eq!(plan.accept(&key, &other, sig), Err(Rejected::DoesNotVerify));
        assert_eq!(
            plan.accept(&key, &parts, &sig[1..]),
            Err(Rejected::Malformed)
        );
        assert_eq!(
            plan.accept(&key, &parts, &vec![0; sig.len()]),
            Err(Rejected::Malformed)
        );
    }
    // A signature of the 256-bit key does not verify under the 512-bit one.
    let plan = raw_plan(GostSize::Bits512);
    let parts = plan
        .request_for_data(&HashAlg::Streebog512.digest(b"abc"))
        .unwrap();
    let mut doubled = vector!("gost256-abc.sig").to_vec();
    doubled.extend_from_slice(vector!("gost256-abc.sig"));
    assert_eq!(
        plan.accept(&public_key(GostSize::Bits512), &parts, &doubled),
        Err(Rejected::DoesNotVerify)
    );
}

#[test]
fn without_the_gost_engine_nothing_is_accepted_and_the_log_says_what_to_install() {
    let size = GostSize::Bits256;
    let key = GostKey::new(vector!("gost256.spki.der"), size)
        .unwrap()
        .with_openssl(Path::new("/nonexistent/openssl"));
    let plan = raw_plan(size);
    let parts = plan.request_for_data(&size.hash().digest(b"abc")).unwrap();
    match plan.accept(&PublicKey::Gost(key), &parts, vector!("gost256-abc.sig")) {
        Err(Rejected::Unverifiable(why)) => {
            assert!(why.contains("libengine-gost-openssl"), "{why}");
            assert!(why.contains("/nonexistent/openssl"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // A program that is not OpenSSL with the engine gives no verdict either.
    let key = GostKey::new(vector!("gost256.spki.der"), size)
        .unwrap()
        .with_openssl(Path::new("/bin/true"));
    assert!(matches!(
        plan.accept(&PublicKey::Gost(key), &parts, vector!("gost256-abc.sig")),
        Err(Rejected::Unverifiable(_))
    ));
}
