//! Objects built from real certificates (pkcs11-module/tests-data, made by generate.sh with OpenSSL), checked
//! against the values pyca/cryptography computed for the same files (tests-data/expected.txt).

use super::attributes::date_value;
use super::*;
use crate::mechanism::{mechanisms_for, Curve, HashAlg};
use remote_client::{AuthInfo, AuthMode, KeyInfo, Scal};
use std::collections::HashMap;

const CA: &[u8] = include_bytes!("../../tests-data/ca.der");
pub(crate) const EE_RSA: &[u8] = include_bytes!("../../tests-data/ee-rsa2048.der");
const EE_PSS: &[u8] = include_bytes!("../../tests-data/ee-rsapss2048.der");
const EE_P256: &[u8] = include_bytes!("../../tests-data/ee-p256.der");
const EE_P384: &[u8] = include_bytes!("../../tests-data/ee-p384.der");
const EE_P521: &[u8] = include_bytes!("../../tests-data/ee-p521.der");
const EE_P256_COMPRESSED: &[u8] = include_bytes!("../../tests-data/ee-p256-compressed.der");
const EE_K1: &[u8] = include_bytes!("../../tests-data/ee-secp256k1.der");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn expected(file: &str, key: &str) -> Vec<u8> {
    let table: HashMap<&str, &str> = include_str!("../../tests-data/expected.txt")
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    unhex(table[format!("{file}.{key}").as_str()])
}

fn credential(certs: &[&[u8]], algos: &[&str]) -> CredentialInfo {
    CredentialInfo {
        id: "cred-1".into(),
        description: None,
        key: KeyInfo {
            status: "enabled".into(),
            algos: algos.iter().map(|s| s.to_string()).collect(),
            len: 2048,
            curve: None,
        },
        certificates: certs.iter().map(|c| c.to_vec()).collect(),
        cert_status: None,
        subject_dn: None,
        issuer_dn: None,
        valid_from: None,
        valid_to: None,
        auth: AuthInfo {
            mode: AuthMode::Explicit,
            expression: None,
            pin: None,
            otp: None,
        },
        multisign: 1,
        scal: Scal::One,
    }
}

fn ulong(obj: &Object, t: CK_ATTRIBUTE_TYPE) -> CK_ULONG {
    parse_ulong(obj.value(t).unwrap()).unwrap()
}

fn flag(obj: &Object, t: CK_ATTRIBUTE_TYPE) -> bool {
    match obj.value(t) {
        Some([b]) => *b != 0,
        other => panic!("attribute {t:#x} is not a CK_BBOOL: {other:?}"),
    }
}

const ID: &[u8] = &[0xc0, 0xff, 0xee];
const RSA_ALGOS: [&str; 2] = [
    remote_client::oid::SHA256_WITH_RSA,
    remote_client::oid::RSASSA_PSS,
];

pub(crate) fn rsa_objects(always_authenticate: bool) -> CredentialObjects {
    let cred = credential(&[EE_RSA, CA], &RSA_ALGOS);
    let kind = key_kind_of_certificate(EE_RSA).unwrap();
    let mechs = mechanisms_for(&cred.key, &kind);
    objects_for_credential(&cred, "Alice", ID, &mechs, always_authenticate).unwrap()
}

#[test]
fn end_entity_certificate_attributes() {
    let objs = rsa_objects(false);
    let cert = &objs.certificate;
    let f = "ee-rsa2048.der";
    assert_eq!(cert.class(), CKO_CERTIFICATE);
    assert_eq!(ulong(cert, CKA_CLASS), CKO_CERTIFICATE);
    assert_eq!(ulong(cert, CKA_CERTIFICATE_TYPE), CKC_X_509);
    assert_eq!(
        ulong(cert, CKA_CERTIFICATE_CATEGORY),
        CK_CERTIFICATE_CATEGORY_TOKEN_USER
    );
    assert_eq!(cert.value(CKA_VALUE), Some(EE_RSA));
    assert_eq!(cert.value(CKA_SUBJECT).unwrap(), expected(f, "subject"));
    assert_eq!(cert.value(CKA_ISSUER).unwrap(), expected(f, "issuer"));
    // 0xA1B2... has its top bit set: the DER INTEGER keeps a leading zero.
    assert_eq!(
        cert.value(CKA_SERIAL_NUMBER).unwrap(),
        expected(f, "serial")
    );
    assert_eq!(
        cert.value(CKA_SERIAL_NUMBER).unwrap()[..3],
        [0x02, 0x11, 0x00]
    );
    assert_eq!(
        cert.value(CKA_CHECK_VALUE).unwrap(),
        expected(f, "check_value")
    );
    assert_eq!(cert.value(CKA_START_DATE).unwrap(), expected(f, "start"));
    assert_eq!(cert.value(CKA_END_DATE).unwrap(), expected(f, "end"));
    assert_eq!(
        cert.value(CKA_PUBLIC_KEY_INFO).unwrap(),
        expected(f, "spki")
    );
    assert_eq!(cert.id(), ID);
    assert_eq!(cert.label(), b"Alice");
    assert!(cert.is_token());
    assert!(!cert.is_private());
    for (t, want) in [
        (CKA_TOKEN, true),
        (CKA_PRIVATE, false),
        (CKA_MODIFIABLE, false),
        (CKA_COPYABLE, false),
        (CKA_DESTROYABLE, false),
        (CKA_TRUSTED, false),
    ] {
        assert_eq!(flag(cert, t), want, "{t:#x}");
    }
    assert_eq!(
        ulong(cert, CKA_JAVA_MIDP_SECURITY_DOMAIN),
        CK_SECURITY_DOMAIN_UNSPECIFIED
    );
    assert_eq!(cert.value(CKA_URL), Some(&[][..]));
    assert_eq!(ulong(cert, CKA_NAME_HASH_ALGORITHM), CKM_SHA_1);
    // OpenSSL's subjectKeyIdentifier=hash is the same SHA-1 key hash, so the SKIs check both hashes.
    assert_eq!(
        cert.value(CKA_HASH_OF_SUBJECT_PUBLIC_KEY).unwrap(),
        expected(f, "ski")
    );
    assert_eq!(
        cert.value(CKA_HASH_OF_ISSUER_PUBLIC_KEY).unwrap(),
        expected("ca.der", "ski")
    );
    assert_eq!(cert.value(CKA_UNIQUE_ID).unwrap().len(), 32);
}

#[test]
fn ca_certificates_get_their_own_id_and_label() {
    let objs = rsa_objects(false);
    assert_eq!(objs.ca_certificates.len(), 1);
    let ca = &objs.ca_certificates[0];
    assert_eq!(
        ulong(ca, CKA_CERTIFICATE_CATEGORY),
        CK_CERTIFICATE_CATEGORY_AUTHORITY
    );
    assert_eq!(ca.value(CKA_VALUE), Some(CA));
    assert_eq!(ca.id(), expected("ca.der", "ski"));
    assert_ne!(ca.id(), ID);
    assert_eq!(ca.label(), b"Test Root CA");
    assert_eq!(
        ca.value(CKA_SUBJECT).unwrap(),
        expected("ca.der", "subject")
    );
    assert_eq!(
        ca.value(CKA_SERIAL_NUMBER).unwrap(),
        expected("ca.der", "serial")
    );
    // Self-signed: its issuer's key is its own.
    assert_eq!(
        ca.value(CKA_HASH_OF_ISSUER_PUBLIC_KEY).unwrap(),
        expected("ca.der", "ski")
    );
    assert!(!flag(ca, CKA_TRUSTED));

    // Without the CA in the chain the issuer key hash is unknown (empty), not invented.
    let cred = credential(&[EE_RSA], &RSA_ALGOS);
    let alone = objects_for_credential(&cred, "Alice", ID, &[], false).unwrap();
    assert!(alone.ca_certificates.is_empty());
    assert_eq!(
        alone.certificate.value(CKA_HASH_OF_ISSUER_PUBLIC_KEY),
        Some(&[][..])
    );
}

#[test]
fn rsa_key_objects() {
    let objs = rsa_objects(true);
    let f = "ee-rsa2048.der";
    assert_eq!(objs.key_kind, KeyKind::Rsa { bits: 2048 });
    let mechs = mechanisms_for(&credential(&[], &RSA_ALGOS).key, &objs.key_kind);
    let (public, private) = (&objs.public_key, &objs.private_key);
    assert_eq!(public.class(), CKO_PUBLIC_KEY);
    assert_eq!(private.class(), CKO_PRIVATE_KEY);
    for key in [public, private] {
        assert_eq!(ulong(key, CKA_KEY_TYPE), CKK_RSA);
        assert_eq!(key.value(CKA_MODULUS).unwrap(), expected(f, "modulus"));
        assert_eq!(
            key.value(CKA_PUBLIC_EXPONENT).unwrap(),
            expected(f, "exponent")
        );
        assert_eq!(key.value(CKA_PUBLIC_KEY_INFO).unwrap(), expected(f, "spki"));
        assert_eq!(key.value(CKA_SUBJECT).unwrap(), expected(f, "subject"));
        assert_eq!(key.id(), ID);
        assert_eq!(key.label(), b"Alice");
        assert_eq!(
            key.value(CKA_ALLOWED_MECHANISMS).unwrap(),
            ulongs_value(&mechs)
        );
        assert_eq!(
            ulong(key, CKA_KEY_GEN_MECHANISM),
            CK_UNAVAILABLE_INFORMATION
        );
        assert_eq!(key.value(CKA_START_DATE), Some(&[][..]));
        assert_eq!(key.value(CKA_END_DATE), Some(&[][..]));
        for t in [
            CKA_MODIFIABLE,
            CKA_COPYABLE,
            CKA_DESTROYABLE,
            CKA_DERIVE,
            CKA_LOCAL,
        ] {
            assert!(!flag(key, t), "{t:#x}");
        }
        assert!(flag(key, CKA_TOKEN));
        assert!(key.attribute(CKA_EC_POINT).is_none());
    }
    assert_eq!(ulong(public, CKA_MODULUS_BITS), 2048);
    assert!(!public.is_private());
    assert!(flag(public, CKA_VERIFY));
    for t in [CKA_ENCRYPT, CKA_WRAP, CKA_VERIFY_RECOVER, CKA_TRUSTED] {
        assert!(!flag(public, t), "{t:#x}");
    }

    assert!(private.is_private());
    assert!(private.attribute(CKA_MODULUS_BITS).is_none());
    for (t, want) in [
        (CKA_SIGN, true),
        (CKA_SENSITIVE, true),
        (CKA_ALWAYS_SENSITIVE, true),
        (CKA_NEVER_EXTRACTABLE, true),
        (CKA_ALWAYS_AUTHENTICATE, true),
        (CKA_EXTRACTABLE, false),
        (CKA_SIGN_RECOVER, false),
        (CKA_DECRYPT, false),
        (CKA_UNWRAP, false),
        (CKA_WRAP_WITH_TRUSTED, false),
    ] {
        assert_eq!(flag(private, t), want, "{t:#x}");
    }
    for t in [
        CKA_PRIVATE_EXPONENT,
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        assert_eq!(private.attribute(t), Some(&AttrValue::Sensitive), "{t:#x}");
        assert_eq!(private.value(t), None);
    }
    assert!(!flag(
        &rsa_objects(false).private_key,
        CKA_ALWAYS_AUTHENTICATE
    ));

    // Every object of the credential has its own CKA_UNIQUE_ID.
    let mut ids: Vec<&[u8]> = [&objs.certificate, public, private, &objs.ca_certificates[0]]
        .iter()
        .map(|o| o.value(CKA_UNIQUE_ID).unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[test]
fn ec_key_objects() {
    for (der, file, curve) in [
        (EE_P256, "ee-p256.der", Curve::P256),
        (EE_P384, "ee-p384.der", Curve::P384),
        (EE_P521, "ee-p521.der", Curve::P521),
    ] {
        let cred = credential(&[der, CA], &[remote_client::oid::ECDSA_WITH_SHA256]);
        let objs = objects_for_credential(&cred, "ec", b"1", &[CKM_ECDSA], false).unwrap();
        assert_eq!(objs.key_kind, KeyKind::Ec { curve });
        assert_eq!(key_kind_of_certificate(der).unwrap(), objs.key_kind);
        let point = expected(file, "point");
        assert_eq!(point.len(), 1 + 2 * curve.field_len());
        // DER OCTET STRING: short length form below 128 bytes, 0x81 form for P-521's 133.
        let mut octet_string = if point.len() < 128 {
            vec![0x04, point.len() as u8]
        } else {
            vec![0x04, 0x81, point.len() as u8]
        };
        octet_string.extend_from_slice(&point);
        for key in [&objs.public_key, &objs.private_key] {
            assert_eq!(ulong(key, CKA_KEY_TYPE), CKK_EC);
            assert_eq!(key.value(CKA_EC_PARAMS).unwrap(), curve.ec_params_der());
            assert_eq!(key.value(CKA_EC_POINT).unwrap(), octet_string, "{file}");
            assert_eq!(
                key.value(CKA_PUBLIC_KEY_INFO).unwrap(),
                expected(file, "spki")
            );
            assert!(key.attribute(CKA_MODULUS).is_none());
        }
        assert_eq!(
            objs.private_key.attribute(CKA_VALUE),
            Some(&AttrValue::Sensitive)
        );
        assert!(objs.public_key.attribute(CKA_VALUE).is_none());
        assert_eq!(objs.certificate.value(CKA_VALUE), Some(der));
    }
}

#[test]
fn rsassa_pss_spki_is_an_rsa_key() {
    let kind = key_kind_of_certificate(EE_PSS).unwrap();
    assert_eq!(kind, KeyKind::Rsa { bits: 2048 });
    let objs = objects_for_credential(&credential(&[EE_PSS], &RSA_ALGOS), "pss", b"p", &[], false)
        .unwrap();
    assert_eq!(
        objs.public_key.value(CKA_MODULUS).unwrap(),
        expected("ee-rsapss2048.der", "modulus")
    );
    assert_eq!(ulong(&objs.public_key, CKA_MODULUS_BITS), 2048);
    // The SPKI is kept as the certificate has it (rsassaPss algorithm), not re-labelled.
    let spki = objs.public_key.value(CKA_PUBLIC_KEY_INFO).unwrap();
    assert!(EE_PSS.windows(spki.len()).any(|w| w == spki));
}

#[test]
fn unusable_credentials_are_reported() {
    let none = objects_for_credential(&credential(&[], &RSA_ALGOS), "x", b"x", &[], false);
    assert!(matches!(none, Err(Error::NoCertificate)));
    let garbage = objects_for_credential(
        &credential(&[EE_RSA, b"not a cert"], &RSA_ALGOS),
        "x",
        b"x",
        &[],
        false,
    );
    assert!(matches!(garbage, Err(Error::Certificate { index: 1, .. })));
    let truncated = &EE_RSA[..EE_RSA.len() - 1];
    assert!(matches!(
        key_kind_of_certificate(truncated),
        Err(Error::Certificate { index: 0, .. })
    ));
    assert!(matches!(
        key_kind_of_certificate(EE_P256_COMPRESSED),
        Err(Error::UnsupportedKey(_))
    ));
    assert!(matches!(
        key_kind_of_certificate(EE_K1),
        Err(Error::UnsupportedKey(_))
    ));
}

#[test]
fn template_matching() {
    let objs = rsa_objects(false);
    let (cert, private) = (&objs.certificate, &objs.private_key);
    let class = |c| Attribute::new(CKA_CLASS, ulong_value(c));
    assert!(cert.matches(&[]));
    assert!(private.matches(&[]));
    assert!(cert.matches(&[class(CKO_CERTIFICATE)]));
    assert!(!private.matches(&[class(CKO_CERTIFICATE)]));
    assert!(private.matches(&[class(CKO_PRIVATE_KEY), Attribute::new(CKA_ID, ID)]));
    assert!(!private.matches(&[
        class(CKO_PRIVATE_KEY),
        Attribute::new(CKA_ID, &b"other"[..])
    ]));
    assert!(private.matches(&[
        Attribute::new(CKA_KEY_TYPE, ulong_value(CKK_RSA)),
        Attribute::new(CKA_SIGN, bool_value(true)),
        Attribute::new(CKA_LABEL, &b"Alice"[..]),
    ]));
    // C treats any non-zero CK_BBOOL as true.
    assert!(private.matches(&[Attribute::new(CKA_TOKEN, vec![0xff])]));
    assert!(!private.matches(&[Attribute::new(CKA_TOKEN, vec![0])]));
    assert!(!private.matches(&[Attribute::new(CKA_TOKEN, vec![1, 0])]));
    // Vendor and unknown classes, attributes the object lacks, sensitive attributes: never a match.
    for template in [
        vec![class(CKO_VENDOR_DEFINED + 0x4e53_4350)],
        vec![class(CKO_PROFILE)],
        vec![Attribute::new(CKA_MODULUS, Vec::new())],
        vec![Attribute::new(CKA_VENDOR_DEFINED, Vec::new())],
    ] {
        assert!(!cert.matches(&template), "{template:?}");
    }
    assert!(!private.matches(&[Attribute::new(CKA_PRIVATE_EXPONENT, Vec::new())]));
    assert!(!private.matches(&[Attribute::new(CKA_CLASS, vec![3])])); // wrong width
    let mut visible = private.clone();
    visible.set_private(false);
    assert!(!visible.is_private());
    assert!(visible.matches(&[Attribute::new(CKA_PRIVATE, bool_value(false))]));
}

#[test]
fn resolve_follows_the_spec_per_entry() {
    let objs = rsa_objects(false);
    let private = &objs.private_key;
    let modulus = private.value(CKA_MODULUS).unwrap();
    let req = |type_, buffer_len| AttributeRequest { type_, buffer_len };
    let (outcomes, rv) = resolve_attributes(
        private,
        &[
            req(CKA_MODULUS, None),
            req(CKA_MODULUS, Some(256)),
            req(CKA_MODULUS, Some(255)),
            req(CKA_MODULUS, Some(CK_UNAVAILABLE_INFORMATION)),
            req(CKA_LABEL, Some(0)),
        ],
    );
    assert_eq!(
        outcomes,
        vec![
            AttributeOutcome::Length(256),
            AttributeOutcome::Copy(modulus),
            AttributeOutcome::Unavailable,
            AttributeOutcome::Copy(modulus),
            AttributeOutcome::Unavailable,
        ]
    );
    assert_eq!(rv, CKR_BUFFER_TOO_SMALL);

    let (outcomes, rv) = resolve_attributes(
        private,
        &[
            req(CKA_VALUE_LEN, None),
            req(CKA_ID, None),
            req(CKA_MODULUS, Some(1)),
        ],
    );
    assert_eq!(
        outcomes,
        vec![
            AttributeOutcome::Unavailable,
            AttributeOutcome::Length(ID.len() as CK_ULONG),
            AttributeOutcome::Unavailable,
        ]
    );
    assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);

    // Sensitive wins over the other errors whatever the order.
    for template in [
        [req(CKA_PRIVATE_EXPONENT, None), req(CKA_MODULUS_BITS, None)],
        [
            req(CKA_MODULUS_BITS, None),
            req(CKA_PRIVATE_EXPONENT, Some(4096)),
        ],
    ] {
        let (outcomes, rv) = resolve_attributes(private, &template);
        assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
        assert!(outcomes.iter().all(|o| *o == AttributeOutcome::Unavailable));
    }
    let (_, rv) = resolve_attributes(private, &[req(CKA_ID, None), req(CKA_SIGN, Some(1))]);
    assert_eq!(rv, CKR_OK);
    let (outcomes, rv) = resolve_attributes(private, &[]);
    assert!(outcomes.is_empty());
    assert_eq!(rv, CKR_OK);
}

#[test]
fn wire_form_helpers() {
    assert_eq!(
        ulong_value(0x0102),
        (0x0102 as CK_ULONG).to_ne_bytes().to_vec()
    );
    assert_eq!(
        parse_ulong(&ulong_value(CKO_PRIVATE_KEY)),
        Some(CKO_PRIVATE_KEY)
    );
    assert_eq!(parse_ulong(&[1, 2, 3]), None);
    assert_eq!(bool_value(true), vec![CK_TRUE]);
    assert_eq!(bool_value(false), vec![CK_FALSE]);
    assert_eq!(
        ulongs_value(&[1, 2]).len(),
        2 * std::mem::size_of::<CK_ULONG>()
    );
    assert_eq!(date_value(2026, 1, 9), Some(b"20260109".to_vec()));
    assert_eq!(date_value(10000, 1, 1), None);
    assert_eq!(date_value(2026, 13, 1), None);
    assert_eq!(date_value(2026, 1, 0), None);
    // CK_DATE is 8 ASCII bytes, the size of the C struct.
    assert_eq!(
        date_value(1, 2, 3).unwrap().len(),
        std::mem::size_of::<CK_DATE>()
    );
    assert_eq!(
        HashAlg::Sha1.digest(CA)[..3],
        expected("ca.der", "check_value")[..]
    );
}

const EE_GOST256: &[u8] = include_bytes!("../../tests-data/ee-gost256.der");
const EE_GOST512: &[u8] = include_bytes!("../../tests-data/ee-gost512.der");

fn gost_expected(file: &str) -> Vec<u8> {
    let line = include_str!("../../tests-data/expected-gost.txt")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{file}.value=")))
        .unwrap();
    unhex(line)
}

/// The attributes of GOST R 34.10-2012 keys, as pkcs11-tool and the TC26 extension read them: the key
/// type, the parameter set and the hash as DER OIDs on both keys, the public key's CKA_VALUE as the
/// certificate carries it (X || Y little-endian, what OpenSSL's parser finds: tests-data/generate-gost.sh).
#[test]
fn gost_key_objects() {
    use crate::mechanism::gost;
    for (der, file, size_oid, set_der, hash_der, key_type, mech) in [
        (
            EE_GOST256,
            "ee-gost256",
            remote_client::oid::SIGN_WITH_STREEBOG_256,
            // id-GostR3410-2001-CryptoPro-A-ParamSet (OpenSSL's paramset A for 256-bit keys).
            "06072a850302022301",
            "06082a85030701010202",
            CKK_GOSTR3410,
            CKM_GOSTR3410,
        ),
        (
            EE_GOST512,
            "ee-gost512",
            remote_client::oid::SIGN_WITH_STREEBOG_512,
            // id-tc26-gost-3410-12-512-paramSetC.
            "06092a8503070102010203",
            "06082a85030701010203",
            gost::CKK_GOSTR3410_512,
            gost::CKM_GOSTR3410_512,
        ),
    ] {
        let cred = credential(&[der], &[size_oid]);
        let kind = key_kind_of_certificate(der).unwrap();
        let mechs = mechanisms_for(&cred.key, &kind);
        assert_eq!(mechs.len(), 2, "{file}");
        assert_eq!(mechs[0], mech, "{file}");
        let objs = objects_for_credential(&cred, "Alice GOST", ID, &mechs, false).unwrap();
        let set: String = set_der.chars().filter(|c| !c.is_whitespace()).collect();
        let hash: String = hash_der.chars().filter(|c| !c.is_whitespace()).collect();
        for key in [&objs.public_key, &objs.private_key] {
            assert_eq!(ulong(key, CKA_KEY_TYPE), key_type, "{file}");
            assert_eq!(
                key.value(CKA_GOSTR3410_PARAMS).unwrap(),
                unhex(&set),
                "{file}"
            );
            assert_eq!(
                key.value(CKA_GOSTR3411_PARAMS).unwrap(),
                unhex(&hash),
                "{file}"
            );
            assert!(key.value(CKA_EC_POINT).is_none() && key.value(CKA_MODULUS).is_none());
        }
        assert_eq!(
            objs.public_key.value(CKA_VALUE).unwrap(),
            gost_expected(file)
        );
        // The private key's CKA_VALUE is its secret scalar: sensitive, never given.
        assert!(objs.private_key.value(CKA_VALUE).is_none());
        assert!(flag(&objs.private_key, CKA_SIGN));
        assert_eq!(objs.key_kind.gost_size().unwrap().bits(), kind.bits());
    }
}

/// A key the service offers no signature for is listed, and says it cannot sign.
#[test]
fn a_key_without_mechanisms_cannot_sign() {
    let cred = credential(&[EE_RSA], &[]);
    let objs = objects_for_credential(&cred, "Alice", ID, &[], false).unwrap();
    assert!(!flag(&objs.private_key, CKA_SIGN));
    assert!(flag(&objs.public_key, CKA_VERIFY));
}
