//! The sign plan: what C_SignInit decided for one operation (mechanism, input rule, key, and the family's
//! parameters), and how the operation's input becomes the parts of one signature request and the service's
//! answer becomes the PKCS#11 output. The rules themselves are the family files'.

use super::hash::{HashAlg, Hasher};
use super::key::KeyKind;
use super::verify::{self, PublicKey, Rejected};
use super::{ecdsa, gost, pkcs1, pss, sign_algos, sign_mech, Family, Mechanism, PerHash};
use cryptoki_sys::*;
use remote_client::KeyInfo;

/// What C_Sign / C_SignUpdate receive for a mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// CKM_RSA_PKCS: a DER DigestInfo.
    DigestInfo,
    /// CKM_RSA_PKCS_PSS, CKM_ECDSA, CKM_GOSTR3410(_512): the hash value itself.
    BareHash,
    /// The hashed mechanisms: the message, hashed locally with this hash.
    Message(HashAlg),
}

/// The parts of a signature request for one signature.
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

/// The family's part of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    Pkcs1(PerHash),
    Pss(pss::Params),
    Ecdsa(PerHash),
    Gost(PerHash),
}

/// What C_SignInit decided; carried by the session until the operation ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignPlan {
    /// The mechanism as C_SignInit named it (kept for Debug output).
    #[allow(dead_code)]
    mechanism: CK_MECHANISM_TYPE,
    input: Input,
    key: KeyKind,
    scheme: Scheme,
}

/// C_SignInit's decision: CKR_MECHANISM_INVALID for a mechanism that is not a signing mechanism or that the
/// credential does not offer (`allowed`, from [`super::mechanisms_for`]), CKR_KEY_TYPE_INCONSISTENT for a
/// mechanism of the other key type, CKR_MECHANISM_PARAM_INVALID for bad or unsupported parameters.
pub fn plan(
    mech: &Mechanism,
    key: &KeyKind,
    key_info: &KeyInfo,
    allowed: &[CK_MECHANISM_TYPE],
) -> Result<SignPlan, CK_RV> {
    let spec = sign_mech(mech.mechanism).ok_or(CKR_MECHANISM_INVALID)?;
    if !spec.family.fits(key) || !spec.family.mechanism_fits(spec.mech, key) {
        return Err(CKR_KEY_TYPE_INCONSISTENT);
    }
    if !allowed.contains(&spec.mech) {
        return Err(CKR_MECHANISM_INVALID);
    }
    let algos = sign_algos(&key_info.algos, key, spec.family);
    let input = match (spec.hash, spec.family) {
        (Some(h), _) => Input::Message(h),
        (None, Family::RsaPkcs1) => Input::DigestInfo,
        (None, _) => Input::BareHash,
    };
    let scheme = match spec.family {
        Family::RsaPkcs1 | Family::Ecdsa => {
            if !mech.parameter.is_empty() {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            if let Some(h) = spec.hash {
                if algos[h.index()].is_none() {
                    return Err(CKR_MECHANISM_INVALID);
                }
            }
            if algos.iter().all(Option::is_none) {
                return Err(CKR_MECHANISM_INVALID);
            }
            if spec.family == Family::Ecdsa {
                Scheme::Ecdsa(algos)
            } else {
                Scheme::Pkcs1(algos)
            }
        }
        Family::RsaPss => {
            let KeyKind::Rsa { bits } = *key else {
                return Err(CKR_KEY_TYPE_INCONSISTENT);
            };
            Scheme::Pss(pss::check_params(&mech.parameter, spec.hash, bits, &algos)?)
        }
        Family::Gost => {
            gost::check_param(&mech.parameter, spec.hash)?;
            if algos.iter().all(Option::is_none) {
                return Err(CKR_MECHANISM_INVALID);
            }
            Scheme::Gost(algos)
        }
    };
    Ok(SignPlan {
        mechanism: spec.mech,
        input,
        key: *key,
        scheme,
    })
}

impl SignPlan {
    #[cfg(test)]
    pub fn input(&self) -> Input {
        self.input
    }

    /// Whether C_SignUpdate / C_SignFinal are allowed (only the mechanisms that hash locally).
    #[cfg(test)]
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
            (Input::DigestInfo, Scheme::Pkcs1(algos)) => {
                pkcs1::request_for_digest_info(algos, &self.key, data)
            }
            (Input::BareHash, Scheme::Pss(params)) => pss::request_for_hash(params, data),
            (Input::BareHash, Scheme::Ecdsa(algos)) => match self.key {
                KeyKind::Ec { curve } => ecdsa::request_for_hash(algos, curve, data),
                _ => Err(CKR_FUNCTION_FAILED),
            },
            (Input::BareHash, Scheme::Gost(algos)) => match self.key.gost_size() {
                Some(size) => gost::request_for_hash(algos, size, data),
                None => Err(CKR_FUNCTION_FAILED),
            },
            // `plan` never pairs these.
            _ => Err(CKR_FUNCTION_FAILED),
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
        let per_hash = |algos: &PerHash| {
            Ok(SignRequestParts {
                hash: digest.clone(),
                hash_alg,
                sign_algo_oid: algos[hash_alg.index()].ok_or(CKR_FUNCTION_FAILED)?,
                sign_algo_params: None,
            })
        };
        match &self.scheme {
            Scheme::Pkcs1(algos) | Scheme::Ecdsa(algos) | Scheme::Gost(algos) => per_hash(algos),
            Scheme::Pss(params) => Ok(pss::parts(params, digest)),
        }
    }

    /// The service's bytes in the PKCS#11 form of an RSA or ECDSA signature: RSA left-padded to the
    /// modulus length, ECDSA as fixed-width r||s. CKR_DEVICE_ERROR when they cannot be a signature of this
    /// key. (A GOST signature's form is decided by [`SignPlan::accept`], which verifies its candidates.)
    pub fn finish_signature(&self, sig: &[u8]) -> Result<Vec<u8>, CK_RV> {
        match self.key {
            KeyKind::Rsa { .. } => pkcs1::finish_rsa(&self.key, sig),
            KeyKind::Ec { curve } => {
                ecdsa::signature_to_raw(sig, curve.field_len()).map_err(|_| CKR_DEVICE_ERROR)
            }
            KeyKind::Gost { .. } => Err(CKR_DEVICE_ERROR),
        }
    }

    /// The service's signature as C_Sign returns it, once it verifies under `key` for the request that was
    /// sent: RSA and ECDSA as [`SignPlan::finish_signature`] makes them, GOST as s||r in whichever of the
    /// two byte orders services use verifies. Nothing that fails this is ever returned.
    pub fn accept(
        &self,
        key: &PublicKey,
        parts: &SignRequestParts,
        sig: &[u8],
    ) -> Result<Vec<u8>, Rejected> {
        if let KeyKind::Gost { params } = self.key {
            for candidate in gost::candidates(sig, params.size).ok_or(Rejected::Malformed)? {
                if verify::gost(key, &parts.hash, &candidate)? {
                    return Ok(candidate);
                }
            }
            return Err(Rejected::DoesNotVerify);
        }
        let candidate = self
            .finish_signature(sig)
            .map_err(|_| Rejected::Malformed)?;
        let verified = match &self.scheme {
            Scheme::Pkcs1(_) => verify::rsa_pkcs1(key, parts.hash_alg, &parts.hash, &candidate),
            Scheme::Pss(p) => verify::rsa_pss(key, p.hash, p.salt, &parts.hash, &candidate),
            Scheme::Ecdsa(_) => verify::ecdsa(key, &parts.hash, &candidate),
            Scheme::Gost(_) => false,
        };
        if verified {
            Ok(candidate)
        } else {
            Err(Rejected::DoesNotVerify)
        }
    }
}
