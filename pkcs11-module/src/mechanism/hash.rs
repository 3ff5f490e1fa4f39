//! The hash functions the module computes locally and names to the service: SHA-1 and SHA-2 (the CSC
//! families), and GOST R 34.11-2012 "Streebog" 256 and 512 (the GOST R 34.10-2012 family), each with a
//! well-kept RustCrypto implementation.
//!
//! Owns the hash table (OIDs, lengths, PKCS#11 digest and MGF1 codes) and the incremental hasher. Calls
//! nothing else of the crate.

use cryptoki_sys::*;
use remote_client::oid;
use sha2::Digest;

/// The TC26 digest mechanisms of GOST R 34.11-2012 (vendor-defined, OpenSC's pkcs11.h; see gost.rs).
pub const CKM_GOSTR3411_12_256: CK_MECHANISM_TYPE =
    super::gost::CK_VENDOR_PKCS11_RU_TEAM_TC26 | 0x012;
pub const CKM_GOSTR3411_12_512: CK_MECHANISM_TYPE =
    super::gost::CK_VENDOR_PKCS11_RU_TEAM_TC26 | 0x013;

/// A hash function the module can compute locally and name to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    /// GOST R 34.11-2012 with a 256-bit result.
    Streebog256,
    /// GOST R 34.11-2012 with a 512-bit result.
    Streebog512,
}

impl HashAlg {
    pub const ALL: [HashAlg; 7] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Streebog256,
        HashAlg::Streebog512,
    ];

    /// The hashes the RSA and ECDSA families combine with (CSC's `hashAlgo` values).
    pub const SHA: [HashAlg; 5] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// SHA-1 or SHA-2.
    pub fn is_sha(self) -> bool {
        !matches!(self, HashAlg::Streebog256 | HashAlg::Streebog512)
    }

    /// Dotted OID, as CSC `hashAlgo` / `hashAlgorithmOID` wants it.
    pub fn oid(self) -> &'static str {
        match self {
            HashAlg::Sha1 => oid::SHA1,
            HashAlg::Sha224 => oid::SHA224,
            HashAlg::Sha256 => oid::SHA256,
            HashAlg::Sha384 => oid::SHA384,
            HashAlg::Sha512 => oid::SHA512,
            HashAlg::Streebog256 => oid::STREEBOG_256,
            HashAlg::Streebog512 => oid::STREEBOG_512,
        }
    }

    /// Digest length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 | HashAlg::Streebog512 => 64,
            HashAlg::Streebog256 => 32,
        }
    }

    /// Position in [`HashAlg::ALL`], for tables indexed by hash.
    pub(crate) fn index(self) -> usize {
        match self {
            HashAlg::Sha1 => 0,
            HashAlg::Sha224 => 1,
            HashAlg::Sha256 => 2,
            HashAlg::Sha384 => 3,
            HashAlg::Sha512 => 4,
            HashAlg::Streebog256 => 5,
            HashAlg::Streebog512 => 6,
        }
    }

    /// The SHA hash whose digest has this many bytes (20, 28, 32, 48, 64): what a bare hash handed to a
    /// raw RSA-PSS or ECDSA mechanism is taken to be.
    pub fn from_len(len: usize) -> Option<Self> {
        Self::SHA.into_iter().find(|h| h.len() == len)
    }

    /// The hash named by a dotted OID.
    pub fn from_oid(oid: &str) -> Option<Self> {
        let oid = oid.trim();
        Self::ALL.into_iter().find(|h| h.oid() == oid)
    }

    /// The hash computed by a PKCS#11 digest mechanism (CKM_SHA_1, CKM_SHA224, ...).
    pub fn from_ckm_digest(mech: CK_MECHANISM_TYPE) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.ckm_digest() == mech)
    }

    /// The PKCS#11 digest mechanism of this hash (CKM_SHA_1, ...).
    pub fn ckm_digest(self) -> CK_MECHANISM_TYPE {
        match self {
            HashAlg::Sha1 => CKM_SHA_1,
            HashAlg::Sha224 => CKM_SHA224,
            HashAlg::Sha256 => CKM_SHA256,
            HashAlg::Sha384 => CKM_SHA384,
            HashAlg::Sha512 => CKM_SHA512,
            HashAlg::Streebog256 => CKM_GOSTR3411_12_256,
            HashAlg::Streebog512 => CKM_GOSTR3411_12_512,
        }
    }

    /// The PKCS#11 MGF1 generator over this hash (CKG_MGF1_SHA1, ...); PKCS#11 defines none for Streebog.
    pub fn ckg_mgf1(self) -> Option<CK_RSA_PKCS_MGF_TYPE> {
        Some(match self {
            HashAlg::Sha1 => CKG_MGF1_SHA1,
            HashAlg::Sha224 => CKG_MGF1_SHA224,
            HashAlg::Sha256 => CKG_MGF1_SHA256,
            HashAlg::Sha384 => CKG_MGF1_SHA384,
            HashAlg::Sha512 => CKG_MGF1_SHA512,
            HashAlg::Streebog256 | HashAlg::Streebog512 => return None,
        })
    }

    /// One-shot digest.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finalize()
    }

    /// A fresh incremental hasher (C_DigestUpdate, C_SignUpdate).
    pub fn hasher(self) -> Hasher {
        Hasher(match self {
            HashAlg::Sha1 => HasherState::Sha1(sha1::Sha1::new()),
            HashAlg::Sha224 => HasherState::Sha224(sha2::Sha224::new()),
            HashAlg::Sha256 => HasherState::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => HasherState::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => HasherState::Sha512(sha2::Sha512::new()),
            HashAlg::Streebog256 => HasherState::Streebog256(streebog::Streebog256::new()),
            HashAlg::Streebog512 => HasherState::Streebog512(streebog::Streebog512::new()),
        })
    }
}

#[derive(Clone)]
enum HasherState {
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Streebog256(streebog::Streebog256),
    Streebog512(streebog::Streebog512),
}

/// Incremental hash state for multi-part operations.
#[derive(Clone)]
pub struct Hasher(HasherState);

impl Hasher {
    pub fn alg(&self) -> HashAlg {
        match self.0 {
            HasherState::Sha1(_) => HashAlg::Sha1,
            HasherState::Sha224(_) => HashAlg::Sha224,
            HasherState::Sha256(_) => HashAlg::Sha256,
            HasherState::Sha384(_) => HashAlg::Sha384,
            HasherState::Sha512(_) => HashAlg::Sha512,
            HasherState::Streebog256(_) => HashAlg::Streebog256,
            HasherState::Streebog512(_) => HashAlg::Streebog512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            HasherState::Sha1(h) => h.update(data),
            HasherState::Sha224(h) => h.update(data),
            HasherState::Sha256(h) => h.update(data),
            HasherState::Sha384(h) => h.update(data),
            HasherState::Sha512(h) => h.update(data),
            HasherState::Streebog256(h) => h.update(data),
            HasherState::Streebog512(h) => h.update(data),
        }
    }

    pub fn finalize(self) -> Vec<u8> {
        match self.0 {
            HasherState::Sha1(h) => h.finalize().to_vec(),
            HasherState::Sha224(h) => h.finalize().to_vec(),
            HasherState::Sha256(h) => h.finalize().to_vec(),
            HasherState::Sha384(h) => h.finalize().to_vec(),
            HasherState::Sha512(h) => h.finalize().to_vec(),
            HasherState::Streebog256(h) => h.finalize().to_vec(),
            HasherState::Streebog512(h) => h.finalize().to_vec(),
        }
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("alg", &self.alg()).finish()
    }
}
