//! The one mechanism table: which PKCS#11 mechanisms a CSC credential supports, what each expects as input,
//! and how a C_Sign input becomes the parts of a CSC `signatures/signHash` request.
//!
//! Nothing here talks to the service or touches C memory except [`Mechanism::from_raw`].

use cryptoki_sys::*;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};
use remote_client::{oid, KeyInfo};
use sha2::Digest;
use spki::AlgorithmIdentifierRef;
use std::ops::RangeInclusive;

/// A hash function the module can compute locally and name to the CSC service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// Dotted OID, as CSC `hashAlgo` / `hashAlgorithmOID` wants it.
    pub fn oid(self) -> &'static str {
        match self {
            HashAlg::Sha1 => oid::SHA1,
            HashAlg::Sha224 => oid::SHA224,
            HashAlg::Sha256 => oid::SHA256,
            HashAlg::Sha384 => oid::SHA384,
            HashAlg::Sha512 => oid::SHA512,
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
            HashAlg::Sha512 => 64,
        }
    }

    /// The hash whose digest has this many bytes (20, 28, 32, 48, 64).
    pub fn from_len(len: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.len() == len)
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
        }
    }

    /// The PKCS#11 MGF1 generator over this hash (CKG_MGF1_SHA1, ...).
    pub fn ckg_mgf1(self) -> CK_RSA_PKCS_MGF_TYPE {
        match self {
            HashAlg::Sha1 => CKG_MGF1_SHA1,
            HashAlg::Sha224 => CKG_MGF1_SHA224,
            HashAlg::Sha256 => CKG_MGF1_SHA256,
            HashAlg::Sha384 => CKG_MGF1_SHA384,
            HashAlg::Sha512 => CKG_MGF1_SHA512,
        }
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
        })
    }

    /// Length of the DER DigestInfo that carries this hash (PKCS#1 v1.5 EMSA encoding, NULL parameters).
    fn digest_info_len(self) -> usize {
        // SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING }: SHA-1's OID is 5 bytes, SHA-2's 9.
        let oid_len = if self == HashAlg::Sha1 { 5 } else { 9 };
        let alg = 2 + (2 + oid_len) + 2;
        2 + 2 + alg + self.len()
    }
}

#[derive(Clone)]
enum HasherState {
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
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
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            HasherState::Sha1(h) => h.update(data),
            HasherState::Sha224(h) => h.update(data),
            HasherState::Sha256(h) => h.update(data),
            HasherState::Sha384(h) => h.update(data),
            HasherState::Sha512(h) => h.update(data),
        }
    }

    pub fn finalize(self) -> Vec<u8> {
        match self.0 {
            HasherState::Sha1(h) => h.finalize().to_vec(),
            HasherState::Sha224(h) => h.finalize().to_vec(),
            HasherState::Sha256(h) => h.finalize().to_vec(),
            HasherState::Sha384(h) => h.finalize().to_vec(),
            HasherState::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("alg", &self.alg()).finish()
    }
}

/// The module's local digest mechanisms (C_Digest*), offered on every token.
pub const DIGEST_MECHANISMS: [CK_MECHANISM_TYPE; 5] =
    [CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512];

/// A named prime curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub const ALL: [Curve; 3] = [Curve::P256, Curve::P384, Curve::P521];

    /// Bytes of one field element (and of r and s in a raw ECDSA signature): 32, 48, 66.
    pub fn field_len(self) -> usize {
        (self.bits() as usize).div_ceil(8)
    }

    /// Bits of the order / field: 256, 384, 521 (the "key size" PKCS#11 reports for EC).
    pub fn bits(self) -> u32 {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// Dotted OID of the named curve.
    pub fn oid(self) -> &'static str {
        match self {
            Curve::P256 => oid::P256,
            Curve::P384 => oid::P384,
            Curve::P521 => oid::P521,
        }
    }

    pub fn from_oid(oid: &str) -> Option<Self> {
        let oid = oid.trim();
        Self::ALL.into_iter().find(|c| c.oid() == oid)
    }

    fn from_bits(bits: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.bits() == bits)
    }

    /// CKA_EC_PARAMS: DER `ECParameters` as the namedCurve choice (an OBJECT IDENTIFIER).
    pub fn ec_params_der(self) -> Vec<u8> {
        // Constants rather than a runtime encode that could only fail on a programming error; the unit tests
        // compare them with the der crate's encoding of `oid()`.
        match self {
            Curve::P256 => vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            Curve::P384 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            Curve::P521 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
        }
    }
}

/// What kind of key a credential holds, as far as signing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        bits: u32,
    },
    Ec {
        curve: Curve,
    },
}

impl KeyKind {
    /// From the service's key description alone (used when no certificate is available; the certificate's
    /// SPKI, see `object::key_kind_of_certificate`, is authoritative otherwise). `None` when the key is
    /// neither a recognisable RSA key nor an EC key on a supported curve.
    pub fn from_key_info(key: &KeyInfo) -> Option<Self> {
        let listed = |o: &str| key.algos.iter().any(|a| a.trim() == o);
        let is_rsa = listed(oid::RSA_ENCRYPTION)
            || listed(oid::RSASSA_PSS)
            || RSA_PKCS1_OIDS.iter().any(|(_, o)| listed(o));
        let is_ec = listed(oid::EC_PUBLIC_KEY)
            || ECDSA_OIDS.iter().any(|(_, o)| listed(o))
            || key.curve.is_some();
        match (is_rsa, is_ec) {
            (true, false) if key.len >= MIN_RSA_BITS => Some(KeyKind::Rsa { bits: key.len }),
            (false, true) => {
                let curve = match key.curve.as_deref() {
                    Some(c) => Curve::from_oid(c)?,
                    // CSC v1 makes `curve` optional; the key length then names the curve.
                    None => Curve::from_bits(key.len)?,
                };
                Some(KeyKind::Ec { curve })
            }
            _ => None,
        }
    }

    /// The key size PKCS#11 reports: modulus bits for RSA, field bits for EC.
    pub fn bits(&self) -> u32 {
        match self {
            KeyKind::Rsa { bits } => *bits,
            KeyKind::Ec { curve } => curve.bits(),
        }
    }

    /// CKA_KEY_TYPE.
    pub fn ck_key_type(&self) -> CK_KEY_TYPE {
        match self {
            KeyKind::Rsa { .. } => CKK_RSA,
            KeyKind::Ec { .. } => CKK_EC,
        }
    }

    /// Length of every signature this key makes, in PKCS#11 form: modulus bytes for RSA, 2 × field bytes for
    /// ECDSA (r||s).
    pub fn signature_len(&self) -> usize {
        match self {
            KeyKind::Rsa { bits } => (*bits as usize).div_ceil(8),
            KeyKind::Ec { curve } => 2 * curve.field_len(),
        }
    }
}

/// RSA keys below this size cannot carry any of the module's PKCS#1 v1.5 or PSS encodings.
const MIN_RSA_BITS: u32 = 512;

const RSA_PKCS1_OIDS: [(HashAlg, &str); 5] = [
    (HashAlg::Sha1, oid::SHA1_WITH_RSA),
    (HashAlg::Sha224, oid::SHA224_WITH_RSA),
    (HashAlg::Sha256, oid::SHA256_WITH_RSA),
    (HashAlg::Sha384, oid::SHA384_WITH_RSA),
    (HashAlg::Sha512, oid::SHA512_WITH_RSA),
];

const ECDSA_OIDS: [(HashAlg, &str); 5] = [
    (HashAlg::Sha1, oid::ECDSA_WITH_SHA1),
    (HashAlg::Sha224, oid::ECDSA_WITH_SHA224),
    (HashAlg::Sha256, oid::ECDSA_WITH_SHA256),
    (HashAlg::Sha384, oid::ECDSA_WITH_SHA384),
    (HashAlg::Sha512, oid::ECDSA_WITH_SHA512),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    RsaPkcs1,
    RsaPss,
    Ecdsa,
}

impl Family {
    fn is_rsa(self) -> bool {
        matches!(self, Family::RsaPkcs1 | Family::RsaPss)
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

/// Every signing mechanism the module knows, in the order C_GetMechanismList reports them.
const SIGN_MECHANISMS: [SignMech; 18] = [
    row(CKM_RSA_PKCS, Family::RsaPkcs1, None),
    row(CKM_SHA1_RSA_PKCS, Family::RsaPkcs1, Some(HashAlg::Sha1)),
    row(CKM_SHA224_RSA_PKCS, Family::RsaPkcs1, Some(HashAlg::Sha224)),
    row(CKM_SHA256_RSA_PKCS, Family::RsaPkcs1, Some(HashAlg::Sha256)),
    row(CKM_SHA384_RSA_PKCS, Family::RsaPkcs1, Some(HashAlg::Sha384)),
    row(CKM_SHA512_RSA_PKCS, Family::RsaPkcs1, Some(HashAlg::Sha512)),
    row(CKM_RSA_PKCS_PSS, Family::RsaPss, None),
    row(CKM_SHA1_RSA_PKCS_PSS, Family::RsaPss, Some(HashAlg::Sha1)),
    row(
        CKM_SHA224_RSA_PKCS_PSS,
        Family::RsaPss,
        Some(HashAlg::Sha224),
    ),
    row(
        CKM_SHA256_RSA_PKCS_PSS,
        Family::RsaPss,
        Some(HashAlg::Sha256),
    ),
    row(
        CKM_SHA384_RSA_PKCS_PSS,
        Family::RsaPss,
        Some(HashAlg::Sha384),
    ),
    row(
        CKM_SHA512_RSA_PKCS_PSS,
        Family::RsaPss,
        Some(HashAlg::Sha512),
    ),
    row(CKM_ECDSA, Family::Ecdsa, None),
    row(CKM_ECDSA_SHA1, Family::Ecdsa, Some(HashAlg::Sha1)),
    row(CKM_ECDSA_SHA224, Family::Ecdsa, Some(HashAlg::Sha224)),
    row(CKM_ECDSA_SHA256, Family::Ecdsa, Some(HashAlg::Sha256)),
    row(CKM_ECDSA_SHA384, Family::Ecdsa, Some(HashAlg::Sha384)),
    row(CKM_ECDSA_SHA512, Family::Ecdsa, Some(HashAlg::Sha512)),
];

fn sign_mech(mech: CK_MECHANISM_TYPE) -> Option<&'static SignMech> {
    SIGN_MECHANISMS.iter().find(|m| m.mech == mech)
}

/// The CSC `signAlgo` to use with `hash` in `family`, when the key's `algos` allow it at all. A composite OID
/// wins; a bare key-type OID (rsaEncryption, ecPublicKey) is what some services list instead, and CSC lets
/// `hashAlgo` then name the hash.
fn sign_algo_oid(algos: &[String], family: Family, hash: HashAlg) -> Option<&'static str> {
    let listed = |o: &str| algos.iter().any(|a| a.trim() == o);
    let composite = |table: &[(HashAlg, &'static str)]| {
        table
            .iter()
            .find(|(h, _)| *h == hash)
            .map(|(_, o)| *o)
            .filter(|o| listed(o))
    };
    match family {
        Family::RsaPkcs1 => composite(&RSA_PKCS1_OIDS)
            .or_else(|| listed(oid::RSA_ENCRYPTION).then_some(oid::RSA_ENCRYPTION)),
        Family::RsaPss => listed(oid::RSASSA_PSS).then_some(oid::RSASSA_PSS),
        Family::Ecdsa => composite(&ECDSA_OIDS)
            .or_else(|| listed(oid::EC_PUBLIC_KEY).then_some(oid::EC_PUBLIC_KEY)),
    }
}

/// RFC 8017 emLen for PSS: the encoded message is one bit shorter than the modulus.
fn pss_em_len(bits: u32) -> usize {
    (bits.saturating_sub(1) as usize).div_ceil(8)
}

/// Whether a key of this kind can make a `family` signature over a `hash` digest at all.
fn size_allows(kind: &KeyKind, family: Family, hash: HashAlg) -> bool {
    match (kind, family) {
        // PKCS#1 v1.5: at least 8 bytes of padding plus 00 01 .. 00 around the DigestInfo.
        (KeyKind::Rsa { bits }, Family::RsaPkcs1) => {
            kind.signature_len() >= hash.digest_info_len() + 11 && *bits >= MIN_RSA_BITS
        }
        // PSS with the smallest salt (0): emLen >= hLen + 2.
        (KeyKind::Rsa { bits }, Family::RsaPss) => pss_em_len(*bits) >= hash.len() + 2,
        (KeyKind::Ec { .. }, Family::Ecdsa) => true,
        _ => false,
    }
}

fn family_matches(kind: &KeyKind, family: Family) -> bool {
    family.is_rsa() == matches!(kind, KeyKind::Rsa { .. })
}

/// Per hash, the `signAlgo` a key allows in a family, already filtered by key size.
fn sign_algos(algos: &[String], kind: &KeyKind, family: Family) -> [Option<&'static str>; 5] {
    HashAlg::ALL.map(|h| {
        if family_matches(kind, family) && size_allows(kind, family, h) {
            sign_algo_oid(algos, family, h)
        } else {
            None
        }
    })
}

fn hash_index(hash: HashAlg) -> usize {
    match hash {
        HashAlg::Sha1 => 0,
        HashAlg::Sha224 => 1,
        HashAlg::Sha256 => 2,
        HashAlg::Sha384 => 3,
        HashAlg::Sha512 => 4,
    }
}

/// The signing mechanisms (no digests) a credential supports, in a stable order: only those its `key.algos`
/// list and its key size allow. The raw mechanisms (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA) are included
/// when a matching composite algorithm is listed; a bare rsaEncryption / ecPublicKey entry counts as "any hash".
pub fn mechanisms_for(key: &KeyInfo, kind: &KeyKind) -> Vec<CK_MECHANISM_TYPE> {
    SIGN_MECHANISMS
        .iter()
        .filter(|m| {
            let per_hash = sign_algos(&key.algos, kind, m.family);
            match m.hash {
                Some(h) => per_hash[hash_index(h)].is_some(),
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

/// No mechanism the module supports takes a parameter anywhere near this size.
const MAX_PARAMETER_LEN: usize = 4096;

/// A CK_MECHANISM copied out of C memory.
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
    pub fn rsa_pss(mechanism: CK_MECHANISM_TYPE, params: CK_RSA_PKCS_PSS_PARAMS) -> Self {
        let parameter = [params.hashAlg, params.mgf, params.sLen]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        Mechanism {
            mechanism,
            parameter,
        }
    }

    /// Copies a caller's CK_MECHANISM. CKR_ARGUMENTS_BAD for a NULL pointer, CKR_MECHANISM_PARAM_INVALID for
    /// a NULL parameter with a non-zero length or an absurd length.
    ///
    /// # Safety
    /// `ptr` is NULL or points to a readable CK_MECHANISM whose `pParameter`, when non-NULL, points to
    /// `ulParameterLen` readable bytes.
    pub unsafe fn from_raw(ptr: *const CK_MECHANISM) -> Result<Self, CK_RV> {
        if ptr.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: non-NULL and readable per the caller's contract; read_unaligned because C callers do not
        // always align what they allocate.
        let raw = unsafe { ptr.read_unaligned() };
        let len = usize::try_from(raw.ulParameterLen).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
        if len == 0 {
            return Ok(Mechanism::new(raw.mechanism));
        }
        if raw.pParameter.is_null() || len > MAX_PARAMETER_LEN {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        // SAFETY: pParameter points to ulParameterLen readable bytes per the caller's contract.
        let parameter =
            unsafe { std::slice::from_raw_parts(raw.pParameter as *const u8, len) }.to_vec();
        Ok(Mechanism {
            mechanism: raw.mechanism,
            parameter,
        })
    }

    /// The parameter as CK_RSA_PKCS_PSS_PARAMS, when it has exactly that size.
    fn pss_params(&self) -> Option<CK_RSA_PKCS_PSS_PARAMS> {
        const WORD: usize = std::mem::size_of::<CK_ULONG>();
        if self.parameter.len() != std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
            return None;
        }
        let mut words = self
            .parameter
            .chunks_exact(WORD)
            .map(|c| c.try_into().map(CK_ULONG::from_ne_bytes));
        Some(CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: words.next()?.ok()?,
            mgf: words.next()?.ok()?,
            sLen: words.next()?.ok()?,
        })
    }
}

/// What C_Sign / C_SignUpdate receive for a mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// CKM_RSA_PKCS: a DER DigestInfo.
    DigestInfo,
    /// CKM_RSA_PKCS_PSS, CKM_ECDSA: the hash value itself.
    BareHash,
    /// The hashed mechanisms: the message, hashed locally with this hash.
    Message(HashAlg),
}

/// The parts of a CSC signHash request for one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequestParts {
    /// The raw hash to send.
    pub hash: Vec<u8>,
    pub hash_alg: HashAlg,
    /// Dotted OID for `signAlgo`.
    pub sign_algo_oid: &'static str,
    /// DER `signAlgoParams` (RSASSA-PSS-params) when the algorithm needs them.
    pub sign_algo_params: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    /// PKCS#1 v1.5 or ECDSA: the `signAlgo` per hash (indexed like `HashAlg::ALL`), `None` where not allowed.
    PerHash([Option<&'static str>; 5]),
    /// RSASSA-PSS: the hash is fixed by the parameters, the DER RSASSA-PSS-params are ready.
    Pss { hash: HashAlg, params_der: Vec<u8> },
}

/// What C_SignInit decided; carried by the session until the operation ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignPlan {
    mechanism: CK_MECHANISM_TYPE,
    input: Input,
    key: KeyKind,
    scheme: Scheme,
}

impl SignPlan {
    pub fn mechanism(&self) -> CK_MECHANISM_TYPE {
        self.mechanism
    }

    pub fn input(&self) -> Input {
        self.input
    }

    /// The key the plan was made for.
    pub fn key(&self) -> KeyKind {
        self.key
    }

    /// Whether C_SignUpdate / C_SignFinal are allowed (only the mechanisms that hash locally).
    pub fn supports_multipart(&self) -> bool {
        matches!(self.input, Input::Message(_))
    }

    /// Length of the signature C_Sign returns, known before anything is sent.
    pub fn signature_len(&self) -> usize {
        self.key.signature_len()
    }

    /// A fresh hasher for multi-part signing (`Some` only for [`Input::Message`]).
    pub fn hasher(&self) -> Option<Hasher> {
        match self.input {
            Input::Message(h) => Some(h.hasher()),
            _ => None,
        }
    }

    /// Single-part C_Sign: checks `data` against the mechanism's input rules and builds the request parts.
    /// CKR_DATA_LEN_RANGE / CKR_DATA_INVALID as PKCS#11 specifies for the mechanism.
    pub fn request_for_data(&self, data: &[u8]) -> Result<SignRequestParts, CK_RV> {
        match (self.input, &self.scheme) {
            (Input::Message(h), _) => self.request_for_digest(h.digest(data)),
            (Input::DigestInfo, Scheme::PerHash(oids)) => {
                // PKCS#11 CKM_RSA_PKCS: input of at most k - 11 bytes, else CKR_DATA_LEN_RANGE.
                if data.len() + 11 > self.key.signature_len() {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                let (hash_alg, hash) = parse_digest_info(data)?;
                let sign_algo_oid = oids[hash_index(hash_alg)].ok_or(CKR_DATA_INVALID)?;
                Ok(SignRequestParts {
                    hash,
                    hash_alg,
                    sign_algo_oid,
                    sign_algo_params: None,
                })
            }
            (Input::BareHash, Scheme::Pss { hash, params_der }) => {
                if data.len() != hash.len() {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                Ok(SignRequestParts {
                    hash: data.to_vec(),
                    hash_alg: *hash,
                    sign_algo_oid: oid::RSASSA_PSS,
                    sign_algo_params: Some(params_der.clone()),
                })
            }
            (Input::BareHash, Scheme::PerHash(oids)) => {
                check_ecdsa_hash_len(data)?;
                // The service names the hash it signs; only the standard lengths can be named.
                let hash_alg = HashAlg::from_len(data.len()).ok_or(CKR_DATA_LEN_RANGE)?;
                let sign_algo_oid = oids[hash_index(hash_alg)].ok_or(CKR_DATA_LEN_RANGE)?;
                Ok(SignRequestParts {
                    hash: data.to_vec(),
                    hash_alg,
                    sign_algo_oid,
                    sign_algo_params: None,
                })
            }
            (Input::DigestInfo, Scheme::Pss { .. }) => Err(CKR_FUNCTION_FAILED),
        }
    }

    /// Multi-part C_SignFinal: `digest` is the output of [`SignPlan::hasher`]. CKR_FUNCTION_FAILED when the
    /// plan does not hash locally or the digest has the wrong length (a caller bug, not a client error).
    pub fn request_for_digest(&self, digest: Vec<u8>) -> Result<SignRequestParts, CK_RV> {
        let Input::Message(hash_alg) = self.input else {
            return Err(CKR_FUNCTION_FAILED);
        };
        if digest.len() != hash_alg.len() {
            return Err(CKR_FUNCTION_FAILED);
        }
        match &self.scheme {
            Scheme::PerHash(oids) => Ok(SignRequestParts {
                hash: digest,
                hash_alg,
                sign_algo_oid: oids[hash_index(hash_alg)].ok_or(CKR_FUNCTION_FAILED)?,
                sign_algo_params: None,
            }),
            Scheme::Pss { params_der, .. } => Ok(SignRequestParts {
                hash: digest,
                hash_alg,
                sign_algo_oid: oid::RSASSA_PSS,
                sign_algo_params: Some(params_der.clone()),
            }),
        }
    }

    /// Turns the service's signature into the PKCS#11 form: RSA left-padded to the modulus length, ECDSA as
    /// fixed-width r||s. CKR_DEVICE_ERROR when the service's bytes cannot be a signature of this key.
    pub fn finish_signature(&self, sig: &[u8]) -> Result<Vec<u8>, CK_RV> {
        match self.key {
            KeyKind::Rsa { .. } => {
                let k = self.key.signature_len();
                // Some services send the signature as a big integer without leading zero bytes, or with an
                // extra sign byte; the value is what counts.
                let first = sig.iter().position(|&b| b != 0).ok_or(CKR_DEVICE_ERROR)?;
                let value = &sig[first..];
                if value.len() > k {
                    return Err(CKR_DEVICE_ERROR);
                }
                let mut out = vec![0u8; k];
                out[k - value.len()..].copy_from_slice(value);
                Ok(out)
            }
            KeyKind::Ec { curve } => {
                ecdsa_signature_to_raw(sig, curve.field_len()).map_err(|_| CKR_DEVICE_ERROR)
            }
        }
    }
}

/// PKCS#11 CKM_ECDSA accepts any hash length, but an empty one is meaningless and nothing above SHA-512 is
/// nameable to the service.
fn check_ecdsa_hash_len(data: &[u8]) -> Result<(), CK_RV> {
    if data.is_empty() || data.len() > HashAlg::Sha512.len() {
        return Err(CKR_DATA_LEN_RANGE);
    }
    Ok(())
}

/// C_SignInit's decision: CKR_MECHANISM_INVALID for a mechanism that is not a signing mechanism or that the
/// credential does not offer (`allowed`, from [`mechanisms_for`]), CKR_KEY_TYPE_INCONSISTENT for a mechanism of
/// the other key type, CKR_MECHANISM_PARAM_INVALID for bad or unsupported parameters.
///
/// RSASSA-PSS: the MGF must be MGF1 over the same hash as `hashAlg` (the only combination CSC services are
/// known to accept), and sLen must fit the key (RFC 8017: emLen >= hLen + sLen + 2).
pub fn plan(
    mech: &Mechanism,
    key: &KeyKind,
    key_info: &KeyInfo,
    allowed: &[CK_MECHANISM_TYPE],
) -> Result<SignPlan, CK_RV> {
    let spec = sign_mech(mech.mechanism).ok_or(CKR_MECHANISM_INVALID)?;
    if !family_matches(key, spec.family) {
        return Err(CKR_KEY_TYPE_INCONSISTENT);
    }
    if !allowed.contains(&spec.mech) {
        return Err(CKR_MECHANISM_INVALID);
    }
    let oids = sign_algos(&key_info.algos, key, spec.family);
    let (input, scheme) = match spec.family {
        Family::RsaPkcs1 | Family::Ecdsa => {
            if !mech.parameter.is_empty() {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            let input = match (spec.hash, spec.family) {
                (Some(h), _) => {
                    if oids[hash_index(h)].is_none() {
                        return Err(CKR_MECHANISM_INVALID);
                    }
                    Input::Message(h)
                }
                (None, Family::RsaPkcs1) => Input::DigestInfo,
                (None, _) => Input::BareHash,
            };
            if oids.iter().all(Option::is_none) {
                return Err(CKR_MECHANISM_INVALID);
            }
            (input, Scheme::PerHash(oids))
        }
        Family::RsaPss => {
            let params = mech.pss_params().ok_or(CKR_MECHANISM_PARAM_INVALID)?;
            let hash =
                HashAlg::from_ckm_digest(params.hashAlg).ok_or(CKR_MECHANISM_PARAM_INVALID)?;
            if spec.hash.is_some_and(|h| h != hash) || params.mgf != hash.ckg_mgf1() {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            let KeyKind::Rsa { bits } = *key else {
                return Err(CKR_KEY_TYPE_INCONSISTENT);
            };
            // RFC 8017 §9.1.1: emLen >= hLen + sLen + 2.
            let max_salt = pss_em_len(bits)
                .checked_sub(hash.len() + 2)
                .ok_or(CKR_MECHANISM_PARAM_INVALID)?;
            let salt = usize::try_from(params.sLen).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
            if salt > max_salt {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            let salt = u32::try_from(salt).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
            if oids[hash_index(hash)].is_none() {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            let params_der = pss_params_der(hash, salt).map_err(|_| CKR_GENERAL_ERROR)?;
            let input = match spec.hash {
                Some(h) => Input::Message(h),
                None => Input::BareHash,
            };
            (input, Scheme::Pss { hash, params_der })
        }
    };
    Ok(SignPlan {
        mechanism: spec.mech,
        input,
        key: *key,
        scheme,
    })
}

fn object_identifier(dotted: &str) -> der::Result<ObjectIdentifier> {
    ObjectIdentifier::new(dotted).map_err(|_| der::Tag::ObjectIdentifier.value_error().into())
}

/// `RSASSA-PSS-params` (RFC 8017 A.2.3). The pkcs1 crate's type holds the salt length in a u8; PKCS#11 and
/// RFC 8017 allow any length the key fits, so the module carries its own, with the same DER.
#[derive(Sequence)]
struct RsaPssParams<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierRef<'a>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<spki::AlgorithmIdentifier<AlgorithmIdentifierRef<'a>>>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// DER RSASSA-PSS-params for MGF1 over the same hash, written the way OpenSSL writes them: hash
/// AlgorithmIdentifiers with NULL parameters, and the fields equal to their DEFAULT (SHA-1, MGF1-SHA-1, salt
/// 20, trailer 1) omitted as DER requires.
fn pss_params_der(hash: HashAlg, salt_len: u32) -> der::Result<Vec<u8>> {
    let hash_ai = AlgorithmIdentifierRef {
        oid: object_identifier(hash.oid())?,
        parameters: Some(AnyRef::NULL),
    };
    let default_hash = hash == HashAlg::Sha1;
    let mask_gen = spki::AlgorithmIdentifier {
        oid: object_identifier(MGF1_OID)?,
        parameters: Some(hash_ai),
    };
    RsaPssParams {
        hash: (!default_hash).then_some(hash_ai),
        mask_gen: (!default_hash).then_some(mask_gen),
        salt_len: (salt_len != 20).then_some(salt_len),
        trailer_field: None,
    }
    .to_der()
}

const MGF1_OID: &str = "1.2.840.113549.1.1.8";

/// `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }` (RFC 8017 §9.2).
#[derive(Sequence)]
struct DigestInfo<'a> {
    digest_algorithm: AlgorithmIdentifierRef<'a>,
    digest: &'a OctetStringRef,
}

/// Strict DER DigestInfo parse (hash OID with NULL parameters, digest of exactly that hash's length, no
/// trailing bytes). CKR_DATA_INVALID for anything else.
pub fn parse_digest_info(data: &[u8]) -> Result<(HashAlg, Vec<u8>), CK_RV> {
    let info = DigestInfo::from_der(data).map_err(|_| CKR_DATA_INVALID)?;
    let hash = HashAlg::from_oid(&info.digest_algorithm.oid.to_string()).ok_or(CKR_DATA_INVALID)?;
    // PKCS#1 v1.5 encodes NULL parameters; the service rebuilds the DigestInfo that way, so any other form
    // would be signed as something the caller did not give.
    if info.digest_algorithm.parameters != Some(AnyRef::NULL) {
        return Err(CKR_DATA_INVALID);
    }
    let digest = info.digest.as_bytes();
    if digest.len() != hash.len() {
        return Err(CKR_DATA_INVALID);
    }
    Ok((hash, digest.to_vec()))
}

/// The service returned bytes that are not an ECDSA signature for the curve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed ECDSA signature from the service: {0}")]
pub struct SignatureFormatError(pub &'static str);

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 §2.2.3).
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// DER Ecdsa-Sig-Value (or an already raw r||s of `2 * field_len` bytes) → fixed-width r||s, leading zeros kept.
pub fn ecdsa_signature_to_raw(
    sig: &[u8],
    field_len: usize,
) -> Result<Vec<u8>, SignatureFormatError> {
    if field_len == 0 {
        return Err(SignatureFormatError("unknown field size"));
    }
    let (r, s) = match EcdsaSigValue::from_der(sig) {
        Ok(v) => (v.r.as_bytes(), v.s.as_bytes()),
        Err(_) if sig.len() == 2 * field_len => sig.split_at(field_len),
        Err(_) => {
            return Err(SignatureFormatError(
                "neither DER Ecdsa-Sig-Value nor raw r||s",
            ))
        }
    };
    let mut out = vec![0u8; 2 * field_len];
    let (out_r, out_s) = out.split_at_mut(field_len);
    for (value, slot) in [(strip_zeros(r), out_r), (strip_zeros(s), out_s)] {
        if value.is_empty() {
            return Err(SignatureFormatError("r or s is zero"));
        }
        if value.len() > field_len {
            return Err(SignatureFormatError(
                "r or s is longer than the curve's field",
            ));
        }
        slot[field_len - value.len()..].copy_from_slice(value);
    }
    Ok(out)
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    &v[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
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
            assert_eq!(HashAlg::from_len(h.len()), Some(h));
            assert_eq!(HashAlg::from_oid(h.oid()), Some(h));
            assert_eq!(HashAlg::from_ckm_digest(h.ckm_digest()), Some(h));
            assert_eq!(h.digest(b"").len(), h.len());
            assert_eq!(h.digest_info_len(), digest_info(h, &h.digest(b"x")).len());
        }
        assert_eq!(HashAlg::from_len(16), None);
        assert_eq!(HashAlg::from_oid("1.2.840.113549.2.5"), None); // MD5
        assert_eq!(HashAlg::from_ckm_digest(CKM_MD5), None);
        assert_eq!(HashAlg::Sha256.ckg_mgf1(), CKG_MGF1_SHA256);
        assert_eq!(HashAlg::Sha224.ckg_mgf1(), CKG_MGF1_SHA224);
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
        for h in HashAlg::ALL {
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
        for (h, o) in RSA_PKCS1_OIDS {
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
                pss_params_der(h, salt).unwrap(),
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
        for (h, o) in ECDSA_OIDS {
            let hash = h.digest(b"x");
            let parts = p.request_for_data(&hash).unwrap();
            assert_eq!(
                (parts.hash, parts.hash_alg, parts.sign_algo_oid),
                (hash, h, o)
            );
        }
        for len in [0, 16, 33, 65, 1000] {
            assert_eq!(
                p.request_for_data(&vec![1; len]),
                Err(CKR_DATA_LEN_RANGE),
                "{len}"
            );
        }
        // Only SHA-256 allowed: a 48-byte hash cannot be named to the service.
        let only256 =
            plan_for(&Mechanism::new(CKM_ECDSA), P256, &[oid::ECDSA_WITH_SHA256]).unwrap();
        assert_eq!(only256.request_for_data(&[1; 48]), Err(CKR_DATA_LEN_RANGE));
        assert!(only256.request_for_data(&[1; 32]).is_ok());
        let bare = plan_for(&Mechanism::new(CKM_ECDSA), P256, &[oid::EC_PUBLIC_KEY]).unwrap();
        assert_eq!(
            bare.request_for_data(&[1; 48]).unwrap().sign_algo_oid,
            oid::EC_PUBLIC_KEY
        );
    }

    #[test]
    fn mechanism_from_raw_copies_parameters() {
        assert_eq!(
            unsafe { Mechanism::from_raw(std::ptr::null()) },
            Err(CKR_ARGUMENTS_BAD)
        );
        let mut params = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            sLen: 32,
        };
        let raw = CK_MECHANISM {
            mechanism: CKM_RSA_PKCS_PSS,
            pParameter: &mut params as *mut _ as *mut std::ffi::c_void,
            ulParameterLen: std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
        };
        let copied = unsafe { Mechanism::from_raw(&raw) }.unwrap();
        assert_eq!(copied, Mechanism::rsa_pss(CKM_RSA_PKCS_PSS, params));
        assert!(plan_for(&copied, RSA2048, &ALL_RSA).is_ok());

        let null_param = CK_MECHANISM {
            pParameter: std::ptr::null_mut(),
            ..raw
        };
        assert_eq!(
            unsafe { Mechanism::from_raw(&null_param) },
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        let none = CK_MECHANISM {
            mechanism: CKM_ECDSA,
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(
            unsafe { Mechanism::from_raw(&none) },
            Ok(Mechanism::new(CKM_ECDSA))
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
}
