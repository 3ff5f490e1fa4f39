//! The mechanism table, plans, input rules and output encodings, against published vectors.

use super::ecdsa::signature_to_raw as ecdsa_signature_to_raw;
use super::pkcs1::parse_digest_info;
use super::plan::Input;
use super::*;
use der::asn1::ObjectIdentifier;
use der::Encode;
use remote_client::oid;

pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key_info(algos: &[&str], len: u32, curve: Option<&str>) -> KeyInfo {
    KeyInfo {
        status: "enabled".into(),
        algos: algos.iter().map(|s| s.to_string()).collect(),
        len,
        curve: curve.map(str::to_string),
    }
}

const ALL_RSA: [&str; 6] = [
    oid::SHA1_WITH_RSA,
    oid::SHA224_WITH_RSA,
    oid::SHA256_WITH_RSA,
    oid::SHA384_WITH_RSA,
    oid::SHA512_WITH_RSA,
    oid::RSASSA_PSS,
];
const ALL_ECDSA: [&str; 5] = [
    oid::ECDSA_WITH_SHA1,
    oid::ECDSA_WITH_SHA224,
    oid::ECDSA_WITH_SHA256,
    oid::ECDSA_WITH_SHA384,
    oid::ECDSA_WITH_SHA512,
];
const RSA2048: KeyKind = KeyKind::Rsa { bits: 2048 };
const P256: KeyKind = KeyKind::Ec { curve: Curve::P256 };

/// The DigestInfo prefixes of RFC 8017 §9.2 note 1.
fn digest_info_prefix(h: HashAlg) -> Vec<u8> {
    hex(match h {
        HashAlg::Sha1 => "30 21 30 09 06 05 2b 0e 03 02 1a 05 00 04 14",
        HashAlg::Sha224 => "30 2d 30 0d 06 09 60 86 48 01 65 03 04 02 04 05 00 04 1c",
        HashAlg::Sha256 => "30 31 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20",
        HashAlg::Sha384 => "30 41 30 0d 06 09 60 86 48 01 65 03 04 02 02 05 00 04 30",
        HashAlg::Sha512 => "30 51 30 0d 06 09 60 86 48 01 65 03 04 02 03 05 00 04 40",
        HashAlg::Streebog256 | HashAlg::Streebog512 => panic!("RSA does not combine with {h:?}"),
    })
}

fn digest_info(h: HashAlg, hash: &[u8]) -> Vec<u8> {
    let mut v = digest_info_prefix(h);
    v.extend_from_slice(hash);
    v
}

fn pss(
    mech: CK_MECHANISM_TYPE,
    hash: CK_MECHANISM_TYPE,
    mgf: CK_ULONG,
    slen: CK_ULONG,
) -> Mechanism {
    Mechanism::rsa_pss(
        mech,
        CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: hash,
            mgf,
            sLen: slen,
        },
    )
}

fn plan_for(mech: &Mechanism, kind: KeyKind, algos: &[&str]) -> Result<SignPlan, CK_RV> {
    let info = key_info(algos, kind.bits(), None);
    let allowed = mechanisms_for(&info, &kind);
    plan(mech, &kind, &info, &allowed)
}

#[test]
fn hash_table_is_consistent() {
    for h in HashAlg::ALL {
        assert_eq!(HashAlg::from_oid(h.oid()), Some(h));
        assert_eq!(HashAlg::from_ckm_digest(h.ckm_digest()), Some(h));
        assert_eq!(h.digest(b"").len(), h.len());
        assert_eq!(h.ckg_mgf1().is_some(), h.is_sha());
    }
    // A bare hash of a raw RSA or ECDSA mechanism is taken for the SHA hash of its length.
    assert_eq!(HashAlg::from_len(32), Some(HashAlg::Sha256));
    assert_eq!(HashAlg::from_len(64), Some(HashAlg::Sha512));
    for h in HashAlg::SHA {
        assert_eq!(HashAlg::from_len(h.len()), Some(h));
        assert_eq!(HashAlg::from_oid(h.oid()), Some(h));
        assert_eq!(HashAlg::from_ckm_digest(h.ckm_digest()), Some(h));
        assert_eq!(h.digest(b"").len(), h.len());
        assert_eq!(
            pkcs1::digest_info_len(h),
            digest_info(h, &h.digest(b"x")).len()
        );
    }
    assert_eq!(HashAlg::from_len(16), None);
    assert_eq!(HashAlg::from_oid("1.2.840.113549.2.5"), None); // MD5
    assert_eq!(HashAlg::from_ckm_digest(CKM_MD5), None);
    assert_eq!(HashAlg::Sha256.ckg_mgf1(), Some(CKG_MGF1_SHA256));
    assert_eq!(HashAlg::Sha224.ckg_mgf1(), Some(CKG_MGF1_SHA224));
}

#[test]
fn digests_match_fips_180_vectors() {
    let abc = [
        (HashAlg::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            HashAlg::Sha224,
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
        ),
        (
            HashAlg::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            HashAlg::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            HashAlg::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ];
    for (h, want) in abc {
        assert_eq!(h.digest(b"abc"), hex(want), "{h:?}");
        let mut inc = h.hasher();
        assert_eq!(inc.alg(), h);
        inc.update(b"a");
        inc.update(b"");
        let forked = inc.clone();
        inc.update(b"bc");
        assert_eq!(inc.finalize(), hex(want), "{h:?} incremental");
        assert_eq!(forked.finalize(), h.digest(b"a"), "{h:?} clone keeps state");
    }
}

#[test]
fn curve_parameters() {
    for c in Curve::ALL {
        let der_oid = ObjectIdentifier::new(c.oid()).unwrap().to_der().unwrap();
        assert_eq!(c.ec_params_der(), der_oid, "{c:?}");
        assert_eq!(Curve::from_oid(c.oid()), Some(c));
    }
    assert_eq!(
        [Curve::P256, Curve::P384, Curve::P521].map(Curve::field_len),
        [32, 48, 66]
    );
    assert_eq!(Curve::from_oid("1.3.132.0.10"), None); // secp256k1
    assert_eq!(KeyKind::Ec { curve: Curve::P521 }.signature_len(), 132);
    assert_eq!(RSA2048.signature_len(), 256);
    assert_eq!(KeyKind::Rsa { bits: 2047 }.signature_len(), 256);
    assert_eq!(KeyKind::Rsa { bits: 2049 }.signature_len(), 257);
    assert_eq!(RSA2048.ck_key_type(), CKK_RSA);
    assert_eq!(P256.ck_key_type(), CKK_EC);
}

#[test]
fn key_kind_from_key_info() {
    let rsa = key_info(&[oid::SHA256_WITH_RSA], 3072, None);
    assert_eq!(
        KeyKind::from_key_info(&rsa),
        Some(KeyKind::Rsa { bits: 3072 })
    );
    let ec = key_info(&[oid::ECDSA_WITH_SHA384], 384, Some(oid::P384));
    assert_eq!(
        KeyKind::from_key_info(&ec),
        Some(KeyKind::Ec { curve: Curve::P384 })
    );
    let ec_no_curve = key_info(&[oid::EC_PUBLIC_KEY], 521, None);
    assert_eq!(
        KeyKind::from_key_info(&ec_no_curve),
        Some(KeyKind::Ec { curve: Curve::P521 })
    );
    assert_eq!(
        KeyKind::from_key_info(&key_info(&[oid::ECDSA_WITH_SHA256], 255, None)),
        None
    );
    assert_eq!(
        KeyKind::from_key_info(&key_info(
            &[oid::ECDSA_WITH_SHA256],
            256,
            Some("1.3.132.0.10")
        )),
        None
    );
    assert_eq!(
        KeyKind::from_key_info(&key_info(&["1.2.3.4"], 2048, None)),
        None
    );
    // Contradictory descriptions are not guessed at.
    assert_eq!(
        KeyKind::from_key_info(&key_info(
            &[oid::SHA256_WITH_RSA, oid::ECDSA_WITH_SHA256],
            2048,
            None
        )),
        None
    );
}

#[test]
fn mechanisms_follow_algos_and_key_type() {
    let full_rsa = mechanisms_for(&key_info(&ALL_RSA, 2048, None), &RSA2048);
    assert_eq!(
        full_rsa,
        vec![
            CKM_RSA_PKCS,
            CKM_SHA1_RSA_PKCS,
            CKM_SHA224_RSA_PKCS,
            CKM_SHA256_RSA_PKCS,
            CKM_SHA384_RSA_PKCS,
            CKM_SHA512_RSA_PKCS,
            CKM_RSA_PKCS_PSS,
            CKM_SHA1_RSA_PKCS_PSS,
            CKM_SHA224_RSA_PKCS_PSS,
            CKM_SHA256_RSA_PKCS_PSS,
            CKM_SHA384_RSA_PKCS_PSS,
            CKM_SHA512_RSA_PKCS_PSS,
        ]
    );
    assert_eq!(
        mechanisms_for(&key_info(&[oid::SHA256_WITH_RSA], 2048, None), &RSA2048),
        vec![CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS]
    );
    assert_eq!(
        mechanisms_for(&key_info(&[oid::RSASSA_PSS], 2048, None), &RSA2048),
        vec![
            CKM_RSA_PKCS_PSS,
            CKM_SHA1_RSA_PKCS_PSS,
            CKM_SHA224_RSA_PKCS_PSS,
            CKM_SHA256_RSA_PKCS_PSS,
            CKM_SHA384_RSA_PKCS_PSS,
            CKM_SHA512_RSA_PKCS_PSS,
        ]
    );
    // A bare rsaEncryption means PKCS#1 v1.5 with any hash.
    assert_eq!(
        mechanisms_for(&key_info(&[oid::RSA_ENCRYPTION], 2048, None), &RSA2048),
        full_rsa[..6].to_vec()
    );
    assert_eq!(
        mechanisms_for(&key_info(&[oid::ECDSA_WITH_SHA256], 256, None), &P256),
        vec![CKM_ECDSA, CKM_ECDSA_SHA256]
    );
    assert_eq!(
        mechanisms_for(&key_info(&ALL_ECDSA, 256, None), &P256),
        vec![
            CKM_ECDSA,
            CKM_ECDSA_SHA1,
            CKM_ECDSA_SHA224,
            CKM_ECDSA_SHA256,
            CKM_ECDSA_SHA384,
            CKM_ECDSA_SHA512
        ]
    );
    // Algorithms of the other key type are ignored, not offered.
    assert!(mechanisms_for(&key_info(&ALL_RSA, 256, None), &P256).is_empty());
    assert!(mechanisms_for(&key_info(&ALL_ECDSA, 2048, None), &RSA2048).is_empty());
    assert!(mechanisms_for(&key_info(&[], 2048, None), &RSA2048).is_empty());
}

#[test]
fn small_rsa_keys_lose_the_long_hashes() {
    // 512-bit modulus: k = 64 bytes. PKCS#1 v1.5 needs DigestInfo + 11: SHA-256 (51) fits, SHA-384 (67)
    // does not. PSS needs emLen (64) >= hLen + 2: SHA-384 (50) fits, SHA-512 (66) does not.
    let small = KeyKind::Rsa { bits: 512 };
    assert_eq!(
        mechanisms_for(&key_info(&ALL_RSA, 512, None), &small),
        vec![
            CKM_RSA_PKCS,
            CKM_SHA1_RSA_PKCS,
            CKM_SHA224_RSA_PKCS,
            CKM_SHA256_RSA_PKCS,
            CKM_RSA_PKCS_PSS,
            CKM_SHA1_RSA_PKCS_PSS,
            CKM_SHA224_RSA_PKCS_PSS,
            CKM_SHA256_RSA_PKCS_PSS,
            CKM_SHA384_RSA_PKCS_PSS,
        ]
    );
    // CKM_RSA_PKCS with a SHA-512 DigestInfo (83 bytes) on that key: more than k - 11.
    let p = plan_for(&Mechanism::new(CKM_RSA_PKCS), small, &ALL_RSA).unwrap();
    let info = digest_info(HashAlg::Sha512, &HashAlg::Sha512.digest(b"m"));
    assert_eq!(p.request_for_data(&info), Err(CKR_DATA_LEN_RANGE));
    assert_eq!(
        plan_for(&Mechanism::new(CKM_SHA512_RSA_PKCS), small, &ALL_RSA),
        Err(CKR_MECHANISM_INVALID)
    );
}

#[test]
fn mechanism_info_flags_and_sizes() {
    let i = mechanism_info(CKM_SHA256_RSA_PKCS, 2048..=4096).unwrap();
    assert_eq!(
        (i.ulMinKeySize, i.ulMaxKeySize, i.flags),
        (2048, 4096, CKF_SIGN | CKF_HW)
    );
    let i = mechanism_info(CKM_ECDSA, 256..=521).unwrap();
    assert_eq!((i.ulMinKeySize, i.ulMaxKeySize), (256, 521));
    assert_eq!(
        i.flags,
        CKF_SIGN | CKF_HW | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS
    );
    for d in DIGEST_MECHANISMS {
        let i = mechanism_info(d, 0..=0).unwrap();
        assert_eq!(
            (i.ulMinKeySize, i.ulMaxKeySize, i.flags),
            (0, 0, CKF_DIGEST)
        );
    }
    assert!(mechanism_info(CKM_MD5, 0..=0).is_none());
    assert!(mechanism_info(CKM_RSA_X_509, 2048..=2048).is_none());
    assert!(mechanism_info(CKM_VENDOR_DEFINED, 0..=0).is_none());
}

#[test]
fn digest_info_exact_bytes_parse() {
    for h in HashAlg::SHA {
        let hash: Vec<u8> = (0..h.len() as u8).collect();
        assert_eq!(
            parse_digest_info(&digest_info(h, &hash)),
            Ok((h, hash.clone())),
            "{h:?}"
        );
    }
}

#[test]
fn digest_info_is_strict() {
    let hash = HashAlg::Sha256.digest(b"m");
    let good = digest_info(HashAlg::Sha256, &hash);
    let mut trailing = good.clone();
    trailing.push(0);
    // Parameters absent instead of NULL.
    let mut absent = hex("30 2f 30 0b 06 09 60 86 48 01 65 03 04 02 01 04 20");
    absent.extend_from_slice(&hash);
    // SHA-256 OID with a 20-byte digest.
    let mut short = hex("30 1d 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 04 14");
    short.extend_from_slice(&hash[..20]);
    // MD5 (1.2.840.113549.2.5) with 16 bytes.
    let mut md5 = hex("30 20 30 0c 06 08 2a 86 48 86 f7 0d 02 05 05 00 04 10");
    md5.extend_from_slice(&[7u8; 16]);
    // Non-minimal (BER) length of the outer SEQUENCE.
    let mut ber = hex("30 81 31");
    ber.extend_from_slice(&good[2..]);
    for (name, bad) in [
        ("trailing byte", trailing),
        ("absent parameters", absent),
        ("short digest", short),
        ("md5", md5),
        ("ber length", ber),
        ("bare hash", hash.clone()),
        ("empty", Vec::new()),
        ("truncated", good[..good.len() - 1].to_vec()),
    ] {
        assert_eq!(parse_digest_info(&bad), Err(CKR_DATA_INVALID), "{name}");
    }
}

#[test]
fn plan_rejects_what_the_spec_says() {
    let rsa = |m: &Mechanism| plan_for(m, RSA2048, &ALL_RSA);
    assert_eq!(
        rsa(&Mechanism::new(CKM_MD5_RSA_PKCS)),
        Err(CKR_MECHANISM_INVALID)
    );
    assert_eq!(rsa(&Mechanism::new(CKM_SHA256)), Err(CKR_MECHANISM_INVALID));
    assert_eq!(
        rsa(&Mechanism::new(CKM_ECDSA)),
        Err(CKR_KEY_TYPE_INCONSISTENT)
    );
    assert_eq!(
        plan_for(&Mechanism::new(CKM_RSA_PKCS), P256, &ALL_ECDSA),
        Err(CKR_KEY_TYPE_INCONSISTENT)
    );
    // Offered by no algorithm of this key.
    assert_eq!(
        plan_for(
            &Mechanism::new(CKM_SHA384_RSA_PKCS),
            RSA2048,
            &[oid::SHA256_WITH_RSA]
        ),
        Err(CKR_MECHANISM_INVALID)
    );
    // Mechanisms without parameters refuse one.
    let mut with_param = Mechanism::new(CKM_RSA_PKCS);
    with_param.parameter = vec![0; 8];
    assert_eq!(rsa(&with_param), Err(CKR_MECHANISM_PARAM_INVALID));

    // PSS parameter checks (2048-bit key, SHA-256: sLen <= 256 - 32 - 2 = 222).
    let ok = pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 222);
    assert!(rsa(&ok).is_ok());
    for (name, m) in [
        ("no parameter", Mechanism::new(CKM_RSA_PKCS_PSS)),
        (
            "salt too long",
            pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 223),
        ),
        (
            "mgf of another hash",
            pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA1, 32),
        ),
        ("unknown mgf", pss(CKM_RSA_PKCS_PSS, CKM_SHA256, 0x99, 32)),
        (
            "hash not a digest",
            pss(CKM_RSA_PKCS_PSS, CKM_MD5, CKG_MGF1_SHA1, 16),
        ),
        (
            "hash differs from the mechanism's",
            pss(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, 48),
        ),
        (
            "huge salt",
            pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, CK_ULONG::MAX),
        ),
    ] {
        assert_eq!(rsa(&m), Err(CKR_MECHANISM_PARAM_INVALID), "{name}");
    }
    let mut truncated = ok.clone();
    truncated.parameter.pop();
    assert_eq!(rsa(&truncated), Err(CKR_MECHANISM_PARAM_INVALID));

    // A 4096-bit key allows sLen up to 512 - 64 - 2 = 446 with SHA-512 (beyond a byte).
    let big = KeyKind::Rsa { bits: 4096 };
    let m = pss(CKM_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 446);
    let p = plan_for(&m, big, &ALL_RSA).unwrap();
    let params = p
        .request_for_data(&[1; 64])
        .unwrap()
        .sign_algo_params
        .unwrap();
    assert!(
        params.ends_with(&hex("a2 04 02 02 01 be")),
        "salt 446 as INTEGER"
    );
    let m = pss(CKM_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 447);
    assert_eq!(
        plan_for(&m, big, &ALL_RSA),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
    // 2049 bits: emLen is still 256 bytes, while k is 257.
    let odd = KeyKind::Rsa { bits: 2049 };
    let m = pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 222);
    assert!(plan_for(&m, odd, &ALL_RSA).is_ok());
    let m = pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 223);
    assert_eq!(
        plan_for(&m, odd, &ALL_RSA),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
}

#[test]
fn rsa_pkcs_takes_a_digest_info() {
    let p = plan_for(&Mechanism::new(CKM_RSA_PKCS), RSA2048, &ALL_RSA).unwrap();
    assert_eq!(p.input(), Input::DigestInfo);
    assert!(!p.supports_multipart());
    assert!(p.hasher().is_none());
    assert_eq!(p.signature_len(), 256);
    for (h, o) in pkcs1::OIDS {
        let hash = h.digest(b"hello");
        let parts = p.request_for_data(&digest_info(h, &hash)).unwrap();
        assert_eq!(
            parts,
            SignRequestParts {
                hash,
                hash_alg: h,
                sign_algo_oid: o,
                sign_algo_params: None
            }
        );
    }
    assert_eq!(
        p.request_for_data(&HashAlg::Sha256.digest(b"bare")),
        Err(CKR_DATA_INVALID)
    );
    // More than k - 11 bytes.
    assert_eq!(p.request_for_data(&[0x30; 246]), Err(CKR_DATA_LEN_RANGE));

    // A hash the key does not list is refused at C_Sign.
    let only256 = plan_for(
        &Mechanism::new(CKM_RSA_PKCS),
        RSA2048,
        &[oid::SHA256_WITH_RSA],
    )
    .unwrap();
    let sha1 = digest_info(HashAlg::Sha1, &HashAlg::Sha1.digest(b"x"));
    assert_eq!(only256.request_for_data(&sha1), Err(CKR_DATA_INVALID));

    // A service listing only rsaEncryption gets it as signAlgo, with hashAlgo naming the hash.
    let bare = plan_for(
        &Mechanism::new(CKM_RSA_PKCS),
        RSA2048,
        &[oid::RSA_ENCRYPTION],
    )
    .unwrap();
    let parts = bare.request_for_data(&sha1).unwrap();
    assert_eq!(
        (parts.sign_algo_oid, parts.hash_alg),
        (oid::RSA_ENCRYPTION, HashAlg::Sha1)
    );
}

#[test]
fn hashed_mechanisms_hash_locally_single_or_multi_part() {
    let cases = [
        (
            CKM_SHA1_RSA_PKCS,
            HashAlg::Sha1,
            oid::SHA1_WITH_RSA,
            RSA2048,
        ),
        (
            CKM_SHA384_RSA_PKCS,
            HashAlg::Sha384,
            oid::SHA384_WITH_RSA,
            RSA2048,
        ),
        (
            CKM_ECDSA_SHA256,
            HashAlg::Sha256,
            oid::ECDSA_WITH_SHA256,
            P256,
        ),
        (
            CKM_ECDSA_SHA512,
            HashAlg::Sha512,
            oid::ECDSA_WITH_SHA512,
            P256,
        ),
    ];
    let algos: Vec<&str> = ALL_RSA.iter().chain(ALL_ECDSA.iter()).copied().collect();
    let message = b"the quick brown fox jumps over the lazy dog";
    for (mech, h, o, kind) in cases {
        let p = plan_for(&Mechanism::new(mech), kind, &algos).unwrap();
        assert_eq!(p.input(), Input::Message(h));
        assert!(p.supports_multipart());
        let single = p.request_for_data(message).unwrap();
        assert_eq!(single.hash, h.digest(message));
        assert_eq!((single.hash_alg, single.sign_algo_oid), (h, o));
        let mut hasher = p.hasher().unwrap();
        for chunk in message.chunks(7) {
            hasher.update(chunk);
        }
        assert_eq!(p.request_for_digest(hasher.finalize()), Ok(single));
        assert_eq!(p.request_for_digest(vec![0; 3]), Err(CKR_FUNCTION_FAILED));
    }
    let raw = plan_for(&Mechanism::new(CKM_ECDSA), P256, &ALL_ECDSA).unwrap();
    assert_eq!(
        raw.request_for_digest(vec![0; 32]),
        Err(CKR_FUNCTION_FAILED)
    );
}

/// RSASSA-PSS-params as OpenSSL 3.0 writes them (`openssl req -x509 -sigopt rsa_padding_mode:pss
/// -sigopt rsa_pss_saltlen:N`, the signatureAlgorithm parameters of the certificate).
const OPENSSL_PSS_PARAMS: [(HashAlg, u32, &str); 8] = [
    (HashAlg::Sha1, 20, "3000"),
    (HashAlg::Sha1, 32, "3005a203020120"),
    (HashAlg::Sha1, 0, "3005a203020100"),
    (
        HashAlg::Sha224,
        28,
        "3034a00f300d06096086480165030402040500a11c301a06092a864886f70d010108300d0609608648016503\
         0402040500a20302011c",
    ),
    (
        HashAlg::Sha256,
        32,
        "3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d0609608648016503\
         0402010500a203020120",
    ),
    (
        HashAlg::Sha256,
        200,
        "3035a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d0609608648016503\
         0402010500a204020200c8",
    ),
    (
        HashAlg::Sha384,
        20,
        "302fa00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d0609608648016503\
         0402020500",
    ),
    (
        HashAlg::Sha512,
        64,
        "3034a00f300d06096086480165030402030500a11c301a06092a864886f70d010108300d0609608648016503\
         0402030500a203020140",
    ),
];

#[test]
fn pss_params_match_openssl() {
    for (h, salt, want) in OPENSSL_PSS_PARAMS {
        assert_eq!(
            pss::params_der(h, salt).unwrap(),
            hex(want),
            "{h:?} salt {salt}"
        );
    }
}

#[test]
fn pss_plans_carry_the_params() {
    let m = pss(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32);
    let p = plan_for(&m, RSA2048, &ALL_RSA).unwrap();
    assert_eq!(p.input(), Input::BareHash);
    let hash = HashAlg::Sha256.digest(b"doc");
    let parts = p.request_for_data(&hash).unwrap();
    assert_eq!(parts.hash, hash);
    assert_eq!(parts.hash_alg, HashAlg::Sha256);
    assert_eq!(parts.sign_algo_oid, oid::RSASSA_PSS);
    assert_eq!(parts.sign_algo_params, Some(hex(OPENSSL_PSS_PARAMS[4].2)));
    // The bare hash must have the parameter hash's length.
    assert_eq!(p.request_for_data(&hash[..20]), Err(CKR_DATA_LEN_RANGE));
    assert_eq!(
        p.request_for_data(&digest_info(HashAlg::Sha256, &hash)),
        Err(CKR_DATA_LEN_RANGE)
    );

    let m = pss(CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 64);
    let p = plan_for(&m, RSA2048, &[oid::RSASSA_PSS]).unwrap();
    let parts = p.request_for_data(b"message").unwrap();
    assert_eq!(parts.hash, HashAlg::Sha512.digest(b"message"));
    assert_eq!(parts.sign_algo_params, Some(hex(OPENSSL_PSS_PARAMS[7].2)));
}

#[test]
fn ecdsa_bare_hash_length_rules() {
    let p = plan_for(&Mechanism::new(CKM_ECDSA), P256, &ALL_ECDSA).unwrap();
    assert_eq!(p.input(), Input::BareHash);
    assert_eq!(p.signature_len(), 64);
    for (h, o) in ecdsa::OIDS {
        let hash = h.digest(b"x");
        let parts = p.request_for_data(&hash).unwrap();
        assert_eq!(
            (parts.hash, parts.hash_alg, parts.sign_algo_oid),
            (hash, h, o)
        );
    }
    assert_eq!(p.request_for_data(&[]), Err(CKR_DATA_LEN_RANGE));
    // Other lengths carry the same number ECDSA uses: shorter ones left-padded to a standard length
    // no longer than the order, longer ones cut to the order's 256 bits.
    let input: Vec<u8> = (1..=16).collect();
    let parts = p.request_for_data(&input).unwrap();
    assert_eq!(parts.hash_alg, HashAlg::Sha1);
    assert_eq!(parts.hash, [vec![0; 4], input].concat());
    let input: Vec<u8> = (1..=30).collect();
    assert_eq!(
        p.request_for_data(&input).unwrap().hash_alg,
        HashAlg::Sha256
    );
    for len in [33, 65, 1000] {
        let input: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let parts = p.request_for_data(&input).unwrap();
        assert_eq!(
            (parts.hash_alg, &parts.hash[..]),
            (HashAlg::Sha256, &input[..32]),
            "{len}"
        );
    }
    // Only SHA-256 allowed: a 48-byte hash is cut to the order's size.
    let only256 = plan_for(&Mechanism::new(CKM_ECDSA), P256, &[oid::ECDSA_WITH_SHA256]).unwrap();
    assert_eq!(
        only256.request_for_data(&[1; 48]).unwrap().hash,
        vec![1; 32]
    );
    assert!(only256.request_for_data(&[1; 32]).is_ok());
    // P-521: a longer input than SHA-512's cannot be carried whole.
    let p521 = plan_for(
        &Mechanism::new(CKM_ECDSA),
        KeyKind::Ec { curve: Curve::P521 },
        &ALL_ECDSA,
    )
    .unwrap();
    assert_eq!(p521.request_for_data(&[1; 66]), Err(CKR_DATA_LEN_RANGE));
    assert_eq!(p521.request_for_data(&[1; 40]).unwrap().hash.len(), 48);
    let bare = plan_for(&Mechanism::new(CKM_ECDSA), P256, &[oid::EC_PUBLIC_KEY]).unwrap();
    assert_eq!(
        bare.request_for_data(&[1; 48]).unwrap().sign_algo_oid,
        oid::EC_PUBLIC_KEY
    );
}

#[test]
fn ecdsa_der_signatures_become_fixed_width() {
    use p256::ecdsa::signature::Signer;
    let key = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let (mut short_r, mut short_s) = (false, false);
    // Deterministic (RFC 6979) signatures: search the messages whose r or s has a leading zero byte, which
    // DER drops and the fixed-width form must restore.
    for i in 0u32..4000 {
        let sig: p256::ecdsa::Signature = key.sign(&i.to_be_bytes());
        let raw = sig.to_bytes().to_vec();
        let der = sig.to_der();
        assert_eq!(ecdsa_signature_to_raw(der.as_bytes(), 32).unwrap(), raw);
        assert_eq!(
            ecdsa_signature_to_raw(&raw, 32).unwrap(),
            raw,
            "raw passes through"
        );
        short_r |= raw[0] == 0;
        short_s |= raw[32] == 0;
        if short_r && short_s {
            break;
        }
    }
    assert!(short_r && short_s, "no leading-zero case exercised");

    let key = p384::ecdsa::SigningKey::from_slice(&[0x17; 48]).unwrap();
    let sig: p384::ecdsa::Signature = key.sign(b"p384");
    let raw = ecdsa_signature_to_raw(sig.to_der().as_bytes(), 48).unwrap();
    assert_eq!(raw, sig.to_bytes().to_vec());
}

#[test]
fn ecdsa_p521_and_malformed_signatures() {
    // r = 0x01 followed by 65 0xff (521 bits, a full 66-byte field element), s = 5.
    let mut der = hex("30 47 02 42 01");
    der.extend_from_slice(&[0xff; 65]);
    der.extend_from_slice(&hex("02 01 05"));
    let raw = ecdsa_signature_to_raw(&der, 66).unwrap();
    assert_eq!(raw.len(), 132);
    assert_eq!(raw[0], 1);
    assert_eq!(&raw[1..66], &[0xff; 65][..]);
    assert_eq!(&raw[66..131], &[0; 65][..]);
    assert_eq!(raw[131], 5);

    // r longer than a P-256 field element.
    let mut long = hex("30 26 02 21 01");
    long.extend_from_slice(&[0x11; 32]);
    long.extend_from_slice(&hex("02 01 05"));
    assert!(ecdsa_signature_to_raw(&long, 32).is_err());
    // r = 0.
    assert!(ecdsa_signature_to_raw(&hex("30 06 02 01 00 02 01 05"), 32).is_err());
    assert!(ecdsa_signature_to_raw(&[0u8; 64], 32).is_err());
    // Negative INTEGER, trailing bytes, wrong raw length, nothing.
    assert!(ecdsa_signature_to_raw(&hex("30 06 02 01 80 02 01 05"), 32).is_err());
    assert!(ecdsa_signature_to_raw(&hex("30 06 02 01 01 02 01 05 00"), 32).is_err());
    assert!(ecdsa_signature_to_raw(&[1u8; 63], 32).is_err());
    assert!(ecdsa_signature_to_raw(&[], 32).is_err());

    let p = plan_for(&Mechanism::new(CKM_ECDSA), P256, &ALL_ECDSA).unwrap();
    assert_eq!(p.finish_signature(&[1u8; 63]), Err(CKR_DEVICE_ERROR));
    let mut ok = vec![0u8; 64];
    ok[31] = 9;
    ok[63] = 7;
    assert_eq!(p.finish_signature(&ok), Ok(ok.clone()));
}

#[test]
fn rsa_signatures_are_padded_to_the_modulus() {
    let p = plan_for(&Mechanism::new(CKM_SHA256_RSA_PKCS), RSA2048, &ALL_RSA).unwrap();
    let full: Vec<u8> = (0..256).map(|i| (i % 251 + 1) as u8).collect();
    assert_eq!(p.finish_signature(&full), Ok(full.clone()));
    // Leading zero stripped by the service.
    let mut expected = full.clone();
    expected[0] = 0;
    assert_eq!(p.finish_signature(&full[1..]), Ok(expected.clone()));
    // An extra sign byte.
    let mut signed = vec![0u8];
    signed.extend_from_slice(&full);
    assert_eq!(p.finish_signature(&signed), Ok(full.clone()));
    let mut too_long = vec![1u8];
    too_long.extend_from_slice(&full);
    assert_eq!(p.finish_signature(&too_long), Err(CKR_DEVICE_ERROR));
    assert_eq!(p.finish_signature(&[]), Err(CKR_DEVICE_ERROR));
    assert_eq!(p.finish_signature(&[0; 256]), Err(CKR_DEVICE_ERROR));
}
