//! ECDSA signatures (CKM_ECDSA and CKM_ECDSA_SHA*): the CSC algorithm per hash, the input rule of the raw
//! mechanism (a bare hash of a length the service can name), and the output encoding (PKCS#11's
//! fixed-width r||s, from the DER `Ecdsa-Sig-Value` services return).

use super::hash::HashAlg;
use super::plan::SignRequestParts;
use super::PerHash;
use cryptoki_sys::*;
use der::asn1::UintRef;
use der::{Decode, Sequence};
use remote_client::oid;

/// ecdsa-with-SHA* per hash.
pub(crate) const OIDS: [(HashAlg, &str); 5] = [
    (HashAlg::Sha1, oid::ECDSA_WITH_SHA1),
    (HashAlg::Sha224, oid::ECDSA_WITH_SHA224),
    (HashAlg::Sha256, oid::ECDSA_WITH_SHA256),
    (HashAlg::Sha384, oid::ECDSA_WITH_SHA384),
    (HashAlg::Sha512, oid::ECDSA_WITH_SHA512),
];

/// The CSC `signAlgo` for `hash`: the composite OID when the key lists it, else a bare ecPublicKey.
pub(crate) fn sign_algo(algos: &[String], hash: HashAlg) -> Option<&'static str> {
    super::composite_or_bare(algos, &OIDS, oid::EC_PUBLIC_KEY, hash)
}

/// CKM_ECDSA: PKCS#11 accepts any hash length, but an empty one is meaningless and only the standard
/// lengths can be named to the service (CKR_DATA_LEN_RANGE otherwise).
pub(crate) fn request_for_hash(algos: &PerHash, data: &[u8]) -> Result<SignRequestParts, CK_RV> {
    if data.is_empty() || data.len() > HashAlg::Sha512.len() {
        return Err(CKR_DATA_LEN_RANGE);
    }
    let hash_alg = HashAlg::from_len(data.len()).ok_or(CKR_DATA_LEN_RANGE)?;
    let sign_algo_oid = algos[hash_alg.index()].ok_or(CKR_DATA_LEN_RANGE)?;
    Ok(SignRequestParts {
        hash: data.to_vec(),
        hash_alg,
        sign_algo_oid,
        sign_algo_params: None,
    })
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
pub fn signature_to_raw(sig: &[u8], field_len: usize) -> Result<Vec<u8>, SignatureFormatError> {
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
