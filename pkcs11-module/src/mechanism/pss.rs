//! RSASSA-PSS signatures (CKM_RSA_PKCS_PSS and CKM_SHA*_RSA_PKCS_PSS): the mechanism parameters and their
//! rules, the DER `RSASSA-PSS-params` sent as the CSC `signAlgoParams`, and the input rule of the raw
//! mechanism (the bare hash of the parameters' hash). The output is an RSA signature (pkcs1::finish_rsa).

use super::hash::HashAlg;
use super::key::KeyKind;
use super::plan::SignRequestParts;
use cryptoki_sys::*;
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Encode, Sequence};
use remote_client::oid;
use spki::AlgorithmIdentifierRef;

/// What C_SignInit fixed for a PSS operation: the hash (from the parameters) and the DER parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) hash: HashAlg,
    pub(crate) salt: usize,
    pub(crate) der: Vec<u8>,
}

/// The CSC `signAlgo` for PSS: RSASSA-PSS, when the key lists it.
pub(crate) fn sign_algo(algos: &[String]) -> Option<&'static str> {
    algos
        .iter()
        .any(|a| a.trim() == oid::RSASSA_PSS)
        .then_some(oid::RSASSA_PSS)
}

/// RFC 8017 emLen for PSS: the encoded message is one bit shorter than the modulus.
pub(crate) fn em_len(bits: u32) -> usize {
    (bits.saturating_sub(1) as usize).div_ceil(8)
}

/// Whether a key can make a PSS signature over `hash` with the smallest salt (0): emLen >= hLen + 2.
pub(crate) fn size_allows(key: &KeyKind, hash: HashAlg) -> bool {
    match key {
        KeyKind::Rsa { bits } => em_len(*bits) >= hash.len() + 2,
        KeyKind::Ec { .. } | KeyKind::Gost { .. } => false,
    }
}

/// The mechanism parameter as CK_RSA_PKCS_PSS_PARAMS, when it has exactly that size (native layout).
fn read_params(parameter: &[u8]) -> Option<CK_RSA_PKCS_PSS_PARAMS> {
    const WORD: usize = std::mem::size_of::<CK_ULONG>();
    if parameter.len() != std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
        return None;
    }
    let mut words = parameter
        .chunks_exact(WORD)
        .map(|c| c.try_into().map(CK_ULONG::from_ne_bytes));
    Some(CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: words.next()?.ok()?,
        mgf: words.next()?.ok()?,
        sLen: words.next()?.ok()?,
    })
}

/// The parameters in the native layout a C caller gives them (for tests that build a mechanism in Rust).
#[cfg(test)]
pub(crate) fn params_bytes(params: CK_RSA_PKCS_PSS_PARAMS) -> Vec<u8> {
    [params.hashAlg, params.mgf, params.sLen]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect()
}

/// C_SignInit's checks of the parameters (CKR_MECHANISM_PARAM_INVALID for every failure): the MGF must be
/// MGF1 over the same hash as `hashAlg` (the only combination CSC services are known to accept), a hashed
/// mechanism's own hash must be that hash, the key must allow it, and sLen must fit the key (RFC 8017
/// §9.1.1: emLen >= hLen + sLen + 2).
pub(crate) fn check_params(
    parameter: &[u8],
    mechanism_hash: Option<HashAlg>,
    bits: u32,
    allowed: &super::PerHash,
) -> Result<Params, CK_RV> {
    let params = read_params(parameter).ok_or(CKR_MECHANISM_PARAM_INVALID)?;
    let hash = HashAlg::from_ckm_digest(params.hashAlg).ok_or(CKR_MECHANISM_PARAM_INVALID)?;
    if mechanism_hash.is_some_and(|h| h != hash) || Some(params.mgf) != hash.ckg_mgf1() {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    let max_salt = em_len(bits)
        .checked_sub(hash.len() + 2)
        .ok_or(CKR_MECHANISM_PARAM_INVALID)?;
    let salt = usize::try_from(params.sLen).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
    if salt > max_salt {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    let salt_u32 = u32::try_from(salt).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
    if allowed[hash.index()].is_none() {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    let der = params_der(hash, salt_u32).map_err(|_| CKR_GENERAL_ERROR)?;
    Ok(Params { hash, salt, der })
}

/// CKM_RSA_PKCS_PSS: the input is the hash the parameters name, of exactly its length.
pub(crate) fn request_for_hash(params: &Params, data: &[u8]) -> Result<SignRequestParts, CK_RV> {
    if data.len() != params.hash.len() {
        return Err(CKR_DATA_LEN_RANGE);
    }
    Ok(parts(params, data.to_vec()))
}

pub(crate) fn parts(params: &Params, hash: Vec<u8>) -> SignRequestParts {
    SignRequestParts {
        hash,
        hash_alg: params.hash,
        sign_algo_oid: oid::RSASSA_PSS,
        sign_algo_params: Some(params.der.clone()),
    }
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

const MGF1_OID: &str = "1.2.840.113549.1.1.8";

/// DER RSASSA-PSS-params for MGF1 over the same hash, written the way OpenSSL writes them: hash
/// AlgorithmIdentifiers with NULL parameters, and the fields equal to their DEFAULT (SHA-1, MGF1-SHA-1, salt
/// 20, trailer 1) omitted as DER requires.
pub(crate) fn params_der(hash: HashAlg, salt_len: u32) -> der::Result<Vec<u8>> {
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
