//! ECDSA signatures (CKM_ECDSA and CKM_ECDSA_SHA*): the CSC algorithm per hash, the input rule of the raw
//! mechanism (a bare hash of a length the service can name), and the output encoding (PKCS#11's
//! fixed-width r||s, from the DER `Ecdsa-Sig-Value` services return).

use super::hash::HashAlg;
use super::key::Curve;
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

/// CKM_ECDSA takes a hash of any length (PKCS#11 3.0 §2.3.6): ECDSA uses its leftmost bits, as many as
/// the curve order has (SEC 1 §4.1.3 step 5). The service must be told a hash algorithm, so the input is
/// sent as a hash of a standard length the key allows, holding the same number: cut to the order's
/// size when longer, and left-padded with zero bytes up to a standard length that is not longer than
/// the order (so that the service truncates nothing). CKR_DATA_LEN_RANGE for an empty input or one that
/// no such hash can carry.
pub(crate) fn request_for_hash(
    algos: &PerHash,
    curve: Curve,
    data: &[u8],
) -> Result<SignRequestParts, CK_RV> {
    let allowed = |len: usize| HashAlg::from_len(len).filter(|h| algos[h.index()].is_some());
    if data.is_empty() {
        return Err(CKR_DATA_LEN_RANGE);
    }
    let order_bits = curve.bits() as usize;
    let (hash_alg, hash) = if let Some(h) = allowed(data.len()) {
        (h, data.to_vec())
    } else {
        let value = if data.len() * 8 > order_bits {
            if !order_bits.is_multiple_of(8) {
                // P-521: the leftmost 521 bits of a longer input fit no standard hash.
                return Err(CKR_DATA_LEN_RANGE);
            }
            &data[..order_bits / 8]
        } else {
            data
        };
        let h = HashAlg::ALL
            .into_iter()
            .filter(|h| h.len() >= value.len() && h.len() * 8 <= order_bits)
            .find(|h| algos[h.index()].is_some())
            .ok_or(CKR_DATA_LEN_RANGE)?;
        let mut padded = vec![0u8; h.len() - value.len()];
        padded.extend_from_slice(value);
        (h, padded)
    };
    Ok(SignRequestParts {
        sign_algo_oid: algos[hash_alg.index()].ok_or(CKR_DATA_LEN_RANGE)?,
        hash,
        hash_alg,
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
