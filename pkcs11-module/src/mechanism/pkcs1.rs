//! RSA PKCS#1 v1.5 signatures (CKM_RSA_PKCS and CKM_SHA*_RSA_PKCS): the CSC algorithm per hash, the
//! input rule of the raw mechanism (a strict DER DigestInfo), which key sizes can carry which hash, and the
//! output encoding shared by every RSA signature (left-padded to the modulus length).

use super::hash::HashAlg;
use super::key::KeyKind;
use super::plan::SignRequestParts;
use super::PerHash;
use cryptoki_sys::*;
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Sequence};
use remote_client::oid;
use spki::AlgorithmIdentifierRef;

/// RSA keys below this size cannot carry any of the module's PKCS#1 v1.5 or PSS encodings.
pub(crate) const MIN_RSA_BITS: u32 = 512;

/// sha*WithRSAEncryption per hash.
pub(crate) const OIDS: [(HashAlg, &str); 5] = [
    (HashAlg::Sha1, oid::SHA1_WITH_RSA),
    (HashAlg::Sha224, oid::SHA224_WITH_RSA),
    (HashAlg::Sha256, oid::SHA256_WITH_RSA),
    (HashAlg::Sha384, oid::SHA384_WITH_RSA),
    (HashAlg::Sha512, oid::SHA512_WITH_RSA),
];

/// The CSC `signAlgo` for `hash`: the composite OID when the key lists it, else a bare rsaEncryption
/// (CSC then lets `hashAlgo` name the hash).
pub(crate) fn sign_algo(algos: &[String], hash: HashAlg) -> Option<&'static str> {
    super::composite_or_bare(algos, &OIDS, oid::RSA_ENCRYPTION, hash)
}

/// Length of the DER DigestInfo that carries this hash (EMSA-PKCS1-v1_5, NULL parameters).
pub(crate) fn digest_info_len(hash: HashAlg) -> usize {
    // SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING }: SHA-1's OID is 5 bytes, SHA-2's 9.
    let oid_len = if hash == HashAlg::Sha1 { 5 } else { 9 };
    let alg = 2 + (2 + oid_len) + 2;
    2 + 2 + alg + hash.len()
}

/// Whether the key can carry a `hash` DigestInfo: at least 8 bytes of padding plus 00 01 .. 00 around it.
pub(crate) fn size_allows(key: &KeyKind, hash: HashAlg) -> bool {
    match key {
        KeyKind::Rsa { bits } => {
            key.signature_len() >= digest_info_len(hash) + 11 && *bits >= MIN_RSA_BITS
        }
        KeyKind::Ec { .. } | KeyKind::Gost { .. } => false,
    }
}

/// CKM_RSA_PKCS: the input is a DigestInfo of at most k - 11 bytes (else CKR_DATA_LEN_RANGE), naming a
/// hash the key allows (else CKR_DATA_INVALID).
pub(crate) fn request_for_digest_info(
    algos: &PerHash,
    key: &KeyKind,
    data: &[u8],
) -> Result<SignRequestParts, CK_RV> {
    if data.len() + 11 > key.signature_len() {
        return Err(CKR_DATA_LEN_RANGE);
    }
    let (hash_alg, hash) = parse_digest_info(data)?;
    let sign_algo_oid = algos[hash_alg.index()].ok_or(CKR_DATA_INVALID)?;
    Ok(SignRequestParts {
        hash,
        hash_alg,
        sign_algo_oid,
        sign_algo_params: None,
    })
}

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
    let hash = HashAlg::from_oid(&info.digest_algorithm.oid.to_string())
        .filter(|h| h.is_sha())
        .ok_or(CKR_DATA_INVALID)?;
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

/// An RSA signature (PKCS#1 v1.5 or PSS) in PKCS#11 form: left-padded to the modulus length.
/// CKR_DEVICE_ERROR when the service's bytes cannot be a signature of this key.
pub(crate) fn finish_rsa(key: &KeyKind, sig: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let k = key.signature_len();
    // Some services send the signature as a big integer without leading zero bytes, or with an extra sign
    // byte; the value is what counts.
    let first = sig.iter().position(|&b| b != 0).ok_or(CKR_DEVICE_ERROR)?;
    let value = &sig[first..];
    if value.len() > k {
        return Err(CKR_DEVICE_ERROR);
    }
    let mut out = vec![0u8; k];
    out[k - value.len()..].copy_from_slice(value);
    Ok(out)
}
