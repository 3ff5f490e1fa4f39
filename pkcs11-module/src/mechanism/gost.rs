//! GOST R 34.10-2012 signatures (256- and 512-bit keys): the TC26 key-type and mechanism codes, the
//! parameter sets, the input rule and parameter of each mechanism, the service's algorithm name per key
//! size, and the output byte order. The module never computes a GOST signature: it hashes (hash.rs) and
//! checks what the service signed (gost_check.rs).
//!
//! Codes: CKK_GOSTR3410, CKM_GOSTR3410, CKA_GOSTR3410_PARAMS and CKA_GOSTR3411_PARAMS are PKCS#11 v2.40's;
//! the 2012 additions are the vendor-defined codes of the "PKCS 11 RU team" (TC26, "Guidelines: the PKCS#11
//! extensions for implementing the GOST R 34.10-2012 and GOST R 34.11-2012 Russian standards"), as OpenSC
//! defines them in src/pkcs11/pkcs11.h and Rutoken's rtpkcs11t.h: NSSCK_VENDOR_PKCS11_RU_TEAM =
//! CKA_VENDOR_DEFINED | 0x54321000. A 256-bit 2012 key is a CKK_GOSTR3410 key whose CKA_GOSTR3411_PARAMS
//! names Streebog-256 (how pkcs11-tool tells it from a 2001 key); a 512-bit key is CKK_GOSTR3410_512.
//!
//! Signature format (PKCS#11 Current Mechanisms, "GOST R 34.10-2001 without hashing", kept by TC26 for
//! 2012; RFC 4491 §2.2.2): s then r, each big-endian in half of the signature (32 bytes each for 256-bit
//! keys, 64 for 512). The input of the raw mechanisms is the Streebog hash as the hash functions output it
//! (32 or 64 bytes).

use super::hash::HashAlg;
use super::plan::SignRequestParts;
use super::PerHash;
use cryptoki_sys::*;
use der::asn1::ObjectIdentifier;
use der::Encode;
use remote_client::oid;

/// NSSCK_VENDOR_PKCS11_RU_TEAM (CK_VENDOR_PKCS11_RU_TEAM_TC26).
pub const CK_VENDOR_PKCS11_RU_TEAM_TC26: CK_ULONG = 0x8000_0000 | 0x5432_1000;
pub const CKK_GOSTR3410_512: CK_KEY_TYPE = CK_VENDOR_PKCS11_RU_TEAM_TC26 | 0x003;
pub const CKM_GOSTR3410_512: CK_MECHANISM_TYPE = CK_VENDOR_PKCS11_RU_TEAM_TC26 | 0x006;
pub const CKM_GOSTR3410_WITH_GOSTR3411_12_256: CK_MECHANISM_TYPE =
    CK_VENDOR_PKCS11_RU_TEAM_TC26 | 0x008;
pub const CKM_GOSTR3410_WITH_GOSTR3411_12_512: CK_MECHANISM_TYPE =
    CK_VENDOR_PKCS11_RU_TEAM_TC26 | 0x009;

/// The two key sizes of GOST R 34.10-2012.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GostSize {
    Bits256,
    Bits512,
}

impl GostSize {
    pub fn bits(self) -> u32 {
        match self {
            GostSize::Bits256 => 256,
            GostSize::Bits512 => 512,
        }
    }

    /// Bytes of r and of s: half the signature.
    pub fn half_len(self) -> usize {
        self.bits() as usize / 8
    }

    /// The hash a key of this size signs with.
    pub fn hash(self) -> HashAlg {
        match self {
            GostSize::Bits256 => HashAlg::Streebog256,
            GostSize::Bits512 => HashAlg::Streebog512,
        }
    }

    /// CKA_KEY_TYPE.
    pub fn ck_key_type(self) -> CK_KEY_TYPE {
        match self {
            GostSize::Bits256 => CKK_GOSTR3410,
            GostSize::Bits512 => CKK_GOSTR3410_512,
        }
    }

    /// The SubjectPublicKeyInfo algorithm OID (RFC 9215 §3).
    pub fn key_oid(self) -> &'static str {
        match self {
            GostSize::Bits256 => oid::GOST_R3410_2012_256,
            GostSize::Bits512 => oid::GOST_R3410_2012_512,
        }
    }

    /// The service's name for "GOST R 34.10-2012 with Streebog" of this size (RFC 9215 §3).
    pub fn sign_oid(self) -> &'static str {
        match self {
            GostSize::Bits256 => oid::SIGN_WITH_STREEBOG_256,
            GostSize::Bits512 => oid::SIGN_WITH_STREEBOG_512,
        }
    }

    /// The raw mechanism of keys of this size.
    fn raw_mechanism(self) -> CK_MECHANISM_TYPE {
        match self {
            GostSize::Bits256 => CKM_GOSTR3410,
            GostSize::Bits512 => CKM_GOSTR3410_512,
        }
    }

    /// The hash-and-sign mechanism of keys of this size.
    fn hashing_mechanism(self) -> CK_MECHANISM_TYPE {
        match self {
            GostSize::Bits256 => CKM_GOSTR3410_WITH_GOSTR3411_12_256,
            GostSize::Bits512 => CKM_GOSTR3410_WITH_GOSTR3411_12_512,
        }
    }

    pub fn from_key_oid(oid: &str) -> Option<GostSize> {
        [GostSize::Bits256, GostSize::Bits512]
            .into_iter()
            .find(|s| s.key_oid() == oid.trim())
    }
}

/// The elliptic-curve parameter sets a GOST R 34.10-2012 key may name (RFC 4357 §10.8 and RFC 7836
/// appendix, as listed in RFC 9215 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamSet {
    pub name: &'static str,
    pub oid: &'static str,
    pub size: GostSize,
}

pub const PARAM_SETS: [ParamSet; 12] = [
    ps(
        "id-tc26-gost-3410-12-256-paramSetA",
        "1.2.643.7.1.2.1.1.1",
        GostSize::Bits256,
    ),
    ps(
        "id-tc26-gost-3410-12-256-paramSetB",
        "1.2.643.7.1.2.1.1.2",
        GostSize::Bits256,
    ),
    ps(
        "id-tc26-gost-3410-12-256-paramSetC",
        "1.2.643.7.1.2.1.1.3",
        GostSize::Bits256,
    ),
    ps(
        "id-tc26-gost-3410-12-256-paramSetD",
        "1.2.643.7.1.2.1.1.4",
        GostSize::Bits256,
    ),
    ps(
        "id-GostR3410-2001-CryptoPro-A-ParamSet",
        "1.2.643.2.2.35.1",
        GostSize::Bits256,
    ),
    ps(
        "id-GostR3410-2001-CryptoPro-B-ParamSet",
        "1.2.643.2.2.35.2",
        GostSize::Bits256,
    ),
    ps(
        "id-GostR3410-2001-CryptoPro-C-ParamSet",
        "1.2.643.2.2.35.3",
        GostSize::Bits256,
    ),
    ps(
        "id-GostR3410-2001-CryptoPro-XchA-ParamSet",
        "1.2.643.2.2.36.0",
        GostSize::Bits256,
    ),
    ps(
        "id-GostR3410-2001-CryptoPro-XchB-ParamSet",
        "1.2.643.2.2.36.1",
        GostSize::Bits256,
    ),
    ps(
        "id-tc26-gost-3410-12-512-paramSetA",
        "1.2.643.7.1.2.1.2.1",
        GostSize::Bits512,
    ),
    ps(
        "id-tc26-gost-3410-12-512-paramSetB",
        "1.2.643.7.1.2.1.2.2",
        GostSize::Bits512,
    ),
    ps(
        "id-tc26-gost-3410-12-512-paramSetC",
        "1.2.643.7.1.2.1.2.3",
        GostSize::Bits512,
    ),
];

const fn ps(name: &'static str, oid: &'static str, size: GostSize) -> ParamSet {
    ParamSet { name, oid, size }
}

impl ParamSet {
    /// The parameter set named by `oid` for a key of `size` (a 512-bit set on a 256-bit key is no key).
    pub fn find(oid: &str, size: GostSize) -> Option<ParamSet> {
        PARAM_SETS
            .into_iter()
            .find(|p| p.oid == oid.trim() && p.size == size)
    }
}

/// CKA_GOSTR3410_PARAMS / CKA_GOSTR3411_PARAMS: the DER encoding of an OBJECT IDENTIFIER.
pub fn oid_der(dotted: &str) -> Option<Vec<u8>> {
    ObjectIdentifier::new(dotted).ok()?.to_der().ok()
}

/// Whether `mech` is one a key of `size` can use: each size has its own raw and hash-and-sign mechanism.
pub(crate) fn mechanism_fits(mech: CK_MECHANISM_TYPE, size: GostSize) -> bool {
    mech == size.raw_mechanism() || mech == size.hashing_mechanism()
}

/// The algorithm the service signs a `hash` digest with, when the key's `algos` list it: only the
/// Streebog of the key's own size.
pub(crate) fn sign_algo(algos: &[String], size: GostSize, hash: HashAlg) -> Option<&'static str> {
    let name = size.sign_oid();
    (hash == size.hash() && algos.iter().any(|a| a.trim() == name)).then_some(name)
}

/// C_SignInit's check of the parameter: none for the raw mechanisms; for hash-and-sign, none or the DER
/// OID of the mechanism's own Streebog (the TC26 mechanisms may name their hash that way).
pub(crate) fn check_param(parameter: &[u8], hash: Option<HashAlg>) -> Result<(), CK_RV> {
    if parameter.is_empty() {
        return Ok(());
    }
    match hash.and_then(|h| oid_der(h.oid())) {
        Some(der) if der == parameter => Ok(()),
        _ => Err(CKR_MECHANISM_PARAM_INVALID),
    }
}

/// CKM_GOSTR3410 / CKM_GOSTR3410_512: the input is the hash itself, exactly as long as the key's
/// Streebog (else CKR_DATA_LEN_RANGE).
pub(crate) fn request_for_hash(
    algos: &PerHash,
    size: GostSize,
    data: &[u8],
) -> Result<SignRequestParts, CK_RV> {
    let hash_alg = size.hash();
    if data.len() != hash_alg.len() {
        return Err(CKR_DATA_LEN_RANGE);
    }
    Ok(SignRequestParts {
        hash: data.to_vec(),
        hash_alg,
        sign_algo_oid: algos[hash_alg.index()].ok_or(CKR_FUNCTION_FAILED)?,
        sign_algo_params: None,
    })
}

/// The byte strings the service's answer may stand for, in PKCS#11 order (s || r, big-endian): as sent
/// (the order of RFC 4491 and OpenSSL), then reversed as a whole, the little-endian form CryptoAPI's
/// CryptSignHash produces and services built on it may return (the public CryptoPro DSS documentation
/// does not state the order of its raw signatures). Whichever verifies under the key is the signature;
/// nothing else is ever returned. `None`: not a signature of a key of this size at all.
pub(crate) fn candidates(sig: &[u8], size: GostSize) -> Option<[Vec<u8>; 2]> {
    if sig.len() != 2 * size.half_len() || sig.iter().all(|&b| b == 0) {
        return None;
    }
    let mut reversed = sig.to_vec();
    reversed.reverse();
    Some([sig.to_vec(), reversed])
}
