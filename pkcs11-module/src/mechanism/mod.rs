//! The one mechanism table: which PKCS#11 mechanisms a credential supports, and how each maps to a
//! signature family and a hash. The family files hold each family's input rule, parameters and output
//! encoding; `plan` ties them to one operation.
//!
//! Nothing here talks to the service or touches C memory (ffi/mechanism.rs copies a CK_MECHANISM).

mod ecdsa;
pub mod gost;
mod gost_check;
#[cfg(test)]
mod gost_tests;
mod hash;
mod key;
mod pkcs1;
mod plan;
mod pss;
#[cfg(test)]
mod tests;
mod verify;

#[cfg(test)]
use ecdsa::signature_to_raw as ecdsa_signature_to_raw_for_tests;
pub use hash::{HashAlg, Hasher, CKM_GOSTR3411_12_256, CKM_GOSTR3411_12_512};
pub use key::{Curve, KeyKind};
pub use plan::{plan, SignPlan, SignRequestParts};
pub use verify::{PublicKey, Rejected};

use cryptoki_sys::*;
use remote_client::KeyInfo;
use std::ops::RangeInclusive;

/// Per hash (indexed like [`HashAlg::ALL`]), the CSC `signAlgo` a key allows, `None` where not allowed.
pub(crate) type PerHash = [Option<&'static str>; 7];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    RsaPkcs1,
    RsaPss,
    Ecdsa,
    Gost,
}

impl Family {
    /// Whether a key of this kind belongs to the family.
    fn fits(self, key: &KeyKind) -> bool {
        matches!(
            (self, key),
            (Family::RsaPkcs1 | Family::RsaPss, KeyKind::Rsa { .. })
                | (Family::Ecdsa, KeyKind::Ec { .. })
                | (Family::Gost, KeyKind::Gost { .. })
        )
    }

    /// Whether a key this family fits can use this mechanism of the family: a GOST key only the two of
    /// its size.
    fn mechanism_fits(self, mech: CK_MECHANISM_TYPE, key: &KeyKind) -> bool {
        match key.gost_size() {
            Some(size) if self == Family::Gost => gost::mechanism_fits(mech, size),
            _ => true,
        }
    }

    /// Whether a key of this kind can make a signature of this family over a `hash` digest at all.
    fn size_allows(self, key: &KeyKind, hash: HashAlg) -> bool {
        match self {
            Family::RsaPkcs1 => pkcs1::size_allows(key, hash),
            Family::RsaPss => pss::size_allows(key, hash),
            Family::Ecdsa => matches!(key, KeyKind::Ec { .. }),
            Family::Gost => key.gost_size().is_some_and(|s| s.hash() == hash),
        }
    }

    /// The `signAlgo` for `hash` when the key's `algos` allow it.
    fn sign_algo(self, algos: &[String], key: &KeyKind, hash: HashAlg) -> Option<&'static str> {
        match self {
            Family::RsaPkcs1 => pkcs1::sign_algo(algos, hash),
            Family::RsaPss => pss::sign_algo(algos),
            Family::Ecdsa => ecdsa::sign_algo(algos, hash),
            Family::Gost => gost::sign_algo(algos, key.gost_size()?, hash),
        }
    }

    /// The hashes the family combines with.
    fn takes(self, hash: HashAlg) -> bool {
        match self {
            Family::Gost => !hash.is_sha(),
            _ => hash.is_sha(),
        }
    }
}

/// One row of the signing mechanism table: `hash` is `Some` for the mechanisms that hash the message locally.
struct SignMech {
    mech: CK_MECHANISM_TYPE,
    family: Family,
    hash: Option<HashAlg>,
}

const fn row(mech: CK_MECHANISM_TYPE, family: Family, hash: Option<HashAlg>) -> SignMech {
    SignMech { mech, family, hash }
}

use gost::{
    CKM_GOSTR3410_512, CKM_GOSTR3410_WITH_GOSTR3411_12_256, CKM_GOSTR3410_WITH_GOSTR3411_12_512,
};
use Family::{Ecdsa, Gost, RsaPkcs1, RsaPss};
use HashAlg::{Sha1, Sha224, Sha256, Sha384, Sha512, Streebog256, Streebog512};

/// Every signing mechanism the module knows, in the order C_GetMechanismList reports them.
const SIGN_MECHANISMS: [SignMech; 22] = [
    row(CKM_RSA_PKCS, RsaPkcs1, None),
    row(CKM_SHA1_RSA_PKCS, RsaPkcs1, Some(Sha1)),
    row(CKM_SHA224_RSA_PKCS, RsaPkcs1, Some(Sha224)),
    row(CKM_SHA256_RSA_PKCS, RsaPkcs1, Some(Sha256)),
    row(CKM_SHA384_RSA_PKCS, RsaPkcs1, Some(Sha384)),
    row(CKM_SHA512_RSA_PKCS, RsaPkcs1, Some(Sha512)),
    row(CKM_RSA_PKCS_PSS, RsaPss, None),
    row(CKM_SHA1_RSA_PKCS_PSS, RsaPss, Some(Sha1)),
    row(CKM_SHA224_RSA_PKCS_PSS, RsaPss, Some(Sha224)),
    row(CKM_SHA256_RSA_PKCS_PSS, RsaPss, Some(Sha256)),
    row(CKM_SHA384_RSA_PKCS_PSS, RsaPss, Some(Sha384)),
    row(CKM_SHA512_RSA_PKCS_PSS, RsaPss, Some(Sha512)),
    row(CKM_ECDSA, Ecdsa, None),
    row(CKM_ECDSA_SHA1, Ecdsa, Some(Sha1)),
    row(CKM_ECDSA_SHA224, Ecdsa, Some(Sha224)),
    row(CKM_ECDSA_SHA256, Ecdsa, Some(Sha256)),
    row(CKM_ECDSA_SHA384, Ecdsa, Some(Sha384)),
    row(CKM_ECDSA_SHA512, Ecdsa, Some(Sha512)),
    row(CKM_GOSTR3410, Gost, None),
    row(CKM_GOSTR3410_512, Gost, None),
    row(CKM_GOSTR3410_WITH_GOSTR3411_12_256, Gost, Some(Streebog256)),
    row(CKM_GOSTR3410_WITH_GOSTR3411_12_512, Gost, Some(Streebog512)),
];

/// The module's local digest mechanisms (C_Digest*), offered on every token.
pub const DIGEST_MECHANISMS: [CK_MECHANISM_TYPE; 7] = [
    CKM_SHA_1,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_GOSTR3411_12_256,
    CKM_GOSTR3411_12_512,
];

fn sign_mech(mech: CK_MECHANISM_TYPE) -> Option<&'static SignMech> {
    SIGN_MECHANISMS.iter().find(|m| m.mech == mech)
}

/// A composite OID of `table` for `hash` when listed in `algos`, else `bare` (a key-type OID such as
/// rsaEncryption, which some services list instead; CSC then lets `hashAlgo` name the hash).
fn composite_or_bare(
    algos: &[String],
    table: &[(HashAlg, &'static str)],
    bare: &'static str,
    hash: HashAlg,
) -> Option<&'static str> {
    let listed = |o: &str| algos.iter().any(|a| a.trim() == o);
    table
        .iter()
        .find(|(h, _)| *h == hash)
        .map(|(_, o)| *o)
        .filter(|o| listed(o))
        .or_else(|| listed(bare).then_some(bare))
}

/// Per hash, the `signAlgo` a key allows in a family, already filtered by key size. The RSA and ECDSA
/// families combine with SHA hashes only, GOST with Streebog only.
fn sign_algos(algos: &[String], key: &KeyKind, family: Family) -> PerHash {
    HashAlg::ALL.map(|h| {
        if family.takes(h) && family.fits(key) && family.size_allows(key, h) {
            family.sign_algo(algos, key, h)
        } else {
            None
        }
    })
}

/// The signing mechanisms (no digests) a credential supports, in a stable order: only those its `key.algos`
/// list and its key size allow. The raw mechanisms (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA) are included
/// when a matching composite algorithm is listed; a bare rsaEncryption / ecPublicKey entry counts as "any hash".
pub fn mechanisms_for(key: &KeyInfo, kind: &KeyKind) -> Vec<CK_MECHANISM_TYPE> {
    SIGN_MECHANISMS
        .iter()
        .filter(|m| m.family.mechanism_fits(m.mech, kind))
        .filter(|m| {
            let per_hash = sign_algos(&key.algos, kind, m.family);
            match m.hash {
                Some(h) => per_hash[h.index()].is_some(),
                None => per_hash.iter().any(Option::is_some),
            }
        })
        .map(|m| m.mech)
        .collect()
}

/// C_GetMechanismInfo for one of the module's mechanisms; `key_bits` is the range of key sizes (as
/// [`KeyKind::bits`]) of the keys that offer it. `None` for a mechanism the module never offers.
pub fn mechanism_info(
    mech: CK_MECHANISM_TYPE,
    key_bits: RangeInclusive<u32>,
) -> Option<CK_MECHANISM_INFO> {
    if DIGEST_MECHANISMS.contains(&mech) {
        return Some(CK_MECHANISM_INFO {
            ulMinKeySize: 0,
            ulMaxKeySize: 0,
            flags: CKF_DIGEST,
        });
    }
    let m = sign_mech(mech)?;
    let mut flags = CKF_SIGN | CKF_HW;
    if m.family == Family::Ecdsa {
        flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    }
    Some(CK_MECHANISM_INFO {
        ulMinKeySize: CK_ULONG::from(*key_bits.start()),
        ulMaxKeySize: CK_ULONG::from(*key_bits.end()),
        flags,
    })
}

/// A CK_MECHANISM copied out of C memory (ffi/mechanism.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    pub mechanism: CK_MECHANISM_TYPE,
    /// The parameter bytes in native layout; empty when the caller gave none.
    pub parameter: Vec<u8>,
}

impl Mechanism {
    pub fn new(mechanism: CK_MECHANISM_TYPE) -> Self {
        Mechanism {
            mechanism,
            parameter: Vec::new(),
        }
    }

    /// A CKM_*_RSA_PKCS_PSS mechanism with its CK_RSA_PKCS_PSS_PARAMS, as a C caller would lay it out.
    #[cfg(test)]
    pub fn rsa_pss(mechanism: CK_MECHANISM_TYPE, params: CK_RSA_PKCS_PSS_PARAMS) -> Self {
        Mechanism {
            mechanism,
            parameter: pss::params_bytes(params),
        }
    }
}
