//! Signature and hash algorithms by dotted OID: what each key advertises in `key.algo`, and how a
//! signHash request's `signAlgo` / `hashAlgo` / `signAlgoParams` resolve to one signing operation.

use crate::error::{CscError, CscResult};
use crate::model::KeyKind;
use der::asn1::ObjectIdentifier;
use der::{Decode, Sequence};
use spki::AlgorithmIdentifierOwned;

pub mod oid {
    pub const SHA1: &str = "1.3.14.3.2.26";
    pub const SHA224: &str = "2.16.840.1.101.3.4.2.4";
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    pub const SHA1_WITH_RSA: &str = "1.2.840.113549.1.1.5";
    pub const MGF1: &str = "1.2.840.113549.1.1.8";
    pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
    pub const SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
    pub const SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
    pub const SHA224_WITH_RSA: &str = "1.2.840.113549.1.1.14";
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const ECDSA_WITH_SHA1: &str = "1.2.840.10045.4.1";
    pub const ECDSA_WITH_SHA224: &str = "1.2.840.10045.4.3.1";
    pub const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
    pub const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";
    pub const ECDSA_WITH_SHA512: &str = "1.2.840.10045.4.3.4";
    pub const P256: &str = "1.2.840.10045.3.1.7";
    pub const P384: &str = "1.3.132.0.34";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    pub fn oid(self) -> &'static str {
        match self {
            HashAlg::Sha1 => oid::SHA1,
            HashAlg::Sha224 => oid::SHA224,
            HashAlg::Sha256 => oid::SHA256,
            HashAlg::Sha384 => oid::SHA384,
            HashAlg::Sha512 => oid::SHA512,
        }
    }

    /// The name people know it by.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "SHA-1",
            HashAlg::Sha224 => "SHA-224",
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        }
    }

    pub fn from_oid(s: &str) -> Option<HashAlg> {
        HashAlg::ALL.into_iter().find(|h| h.oid() == s)
    }

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

    pub fn from_len(len: usize) -> Option<HashAlg> {
        HashAlg::ALL.into_iter().find(|h| h.len() == len)
    }
}

const RSA_ALGOS: &[&str] = &[
    oid::SHA256_WITH_RSA,
    oid::SHA384_WITH_RSA,
    oid::SHA512_WITH_RSA,
    oid::SHA224_WITH_RSA,
    oid::SHA1_WITH_RSA,
    oid::RSASSA_PSS,
    oid::RSA_ENCRYPTION,
];

const EC_ALGOS: &[&str] = &[
    oid::ECDSA_WITH_SHA256,
    oid::ECDSA_WITH_SHA384,
    oid::ECDSA_WITH_SHA512,
    oid::ECDSA_WITH_SHA224,
    oid::ECDSA_WITH_SHA1,
];

/// `key.algo` of a credential.
pub fn key_algos(kind: KeyKind) -> &'static [&'static str] {
    if kind.is_rsa() {
        RSA_ALGOS
    } else {
        EC_ALGOS
    }
}

/// v2 `info.signAlgorithms.algos`: everything some key accepts.
pub fn service_algos() -> Vec<&'static str> {
    let mut all: Vec<&str> = RSA_ALGOS.to_vec();
    all.extend_from_slice(EC_ALGOS);
    all.push(oid::EC_PUBLIC_KEY);
    all
}

pub fn curve_oid(kind: KeyKind) -> Option<&'static str> {
    match kind {
        KeyKind::P256 => Some(oid::P256),
        KeyKind::P384 => Some(oid::P384),
        KeyKind::Rsa2048 | KeyKind::Rsa3072 => None,
    }
}

/// One signing operation over a hash value the client computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOp {
    /// RSASSA-PKCS1-v1_5 over the DigestInfo of `hash`.
    RsaPkcs1 { hash: HashAlg },
    /// RSASSA-PSS with MGF1 over the same hash.
    RsaPss { hash: HashAlg, salt_len: usize },
    /// ECDSA over the prehash; `None` when neither signAlgo nor hashAlgo names the hash.
    Ecdsa { hash: Option<HashAlg> },
}

impl SignOp {
    /// The hash algorithm the operation is bound to, if any.
    pub fn hash(&self) -> Option<HashAlg> {
        match *self {
            SignOp::RsaPkcs1 { hash } | SignOp::RsaPss { hash, .. } => Some(hash),
            SignOp::Ecdsa { hash } => hash,
        }
    }

    /// Refuses hash values whose length does not fit the operation.
    pub fn check_hashes(&self, hashes: &[Vec<u8>]) -> CscResult<()> {
        let ok = |h: &Vec<u8>| match self.hash() {
            Some(alg) => h.len() == alg.len(),
            None => HashAlg::from_len(h.len()).is_some(),
        };
        if hashes.iter().all(ok) {
            Ok(())
        } else {
            Err(CscError::invalid_param("hashes"))
        }
    }
}

/// The request fields that choose the algorithm. `hash_field` is the name of the hash algorithm field in
/// the API version at hand (`hashAlgo` in v1, `hashAlgorithmOID` in v2), for error messages.
pub struct AlgorithmRequest<'a> {
    pub sign_algo: &'a str,
    pub hash_algo: Option<&'a str>,
    pub hash_field: &'a str,
    pub params: Option<&'a [u8]>,
}

pub fn resolve(kind: KeyKind, req: &AlgorithmRequest<'_>) -> CscResult<SignOp> {
    let given_hash = match req.hash_algo {
        Some(s) => {
            Some(HashAlg::from_oid(s).ok_or_else(|| CscError::invalid_param(req.hash_field))?)
        }
        None => None,
    };
    // A composite OID names its hash; a hashAlgo that says otherwise is a client error.
    let implied = |hash: HashAlg| -> CscResult<HashAlg> {
        match given_hash {
            Some(g) if g != hash => Err(CscError::invalid_param(req.hash_field)),
            _ => Ok(hash),
        }
    };
    let composite_hash = match req.sign_algo {
        oid::SHA1_WITH_RSA | oid::ECDSA_WITH_SHA1 => Some(HashAlg::Sha1),
        oid::SHA224_WITH_RSA | oid::ECDSA_WITH_SHA224 => Some(HashAlg::Sha224),
        oid::SHA256_WITH_RSA | oid::ECDSA_WITH_SHA256 => Some(HashAlg::Sha256),
        oid::SHA384_WITH_RSA | oid::ECDSA_WITH_SHA384 => Some(HashAlg::Sha384),
        oid::SHA512_WITH_RSA | oid::ECDSA_WITH_SHA512 => Some(HashAlg::Sha512),
        _ => None,
    };
    let accepted = key_algos(kind).contains(&req.sign_algo)
        || (!kind.is_rsa() && req.sign_algo == oid::EC_PUBLIC_KEY);
    if !accepted {
        return Err(CscError::invalid_param("signAlgo"));
    }
    if kind.is_rsa() {
        match req.sign_algo {
            oid::RSASSA_PSS => {
                let params = req
                    .params
                    .ok_or_else(|| CscError::invalid_param("signAlgoParams"))?;
                let (hash, salt_len) = decode_pss_params(params)?;
                if given_hash.is_some_and(|g| g != hash) {
                    return Err(CscError::invalid_param("signAlgoParams"));
                }
                // RFC 8017 §9.1.1: emLen >= hLen + sLen + 2, emLen = ceil((modBits - 1) / 8).
                let em_len = (kind.bits() as usize - 1).div_ceil(8);
                if hash.len() + salt_len + 2 > em_len {
                    return Err(CscError::invalid_param("signAlgoParams"));
                }
                Ok(SignOp::RsaPss { hash, salt_len })
            }
            oid::RSA_ENCRYPTION => {
                let hash = given_hash.ok_or_else(|| CscError::missing("string", req.hash_field))?;
                Ok(SignOp::RsaPkcs1 { hash })
            }
            _ => {
                let hash = composite_hash.ok_or_else(|| CscError::invalid_param("signAlgo"))?;
                Ok(SignOp::RsaPkcs1 {
                    hash: implied(hash)?,
                })
            }
        }
    } else {
        match composite_hash {
            Some(hash) => Ok(SignOp::Ecdsa {
                hash: Some(implied(hash)?),
            }),
            None => Ok(SignOp::Ecdsa { hash: given_hash }),
        }
    }
}

/// RSASSA-PSS-params (RFC 8017 A.2.3). The absent fields take their ASN.1 DEFAULTs (SHA-1, MGF1-SHA-1,
/// salt 20, trailer 1). The salt length is an INTEGER, not limited to a byte.
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

/// The hash and salt length. The signer uses one hash for the message digest and MGF1, so parameters
/// naming two different hashes are refused.
fn decode_pss_params(der: &[u8]) -> CscResult<(HashAlg, usize)> {
    let bad = || CscError::invalid_param("signAlgoParams");
    let p = PssParams::from_der(der).map_err(|_| bad())?;
    let hash_of = |alg: &AlgorithmIdentifierOwned| -> CscResult<HashAlg> {
        // Parameters of a SHA AlgorithmIdentifier are NULL or absent (RFC 5754 §2).
        if alg.parameters.as_ref().is_some_and(|p| !p.is_null()) {
            return Err(bad());
        }
        HashAlg::from_oid(&alg.oid.to_string()).ok_or_else(bad)
    };
    let hash = match &p.hash {
        Some(alg) => hash_of(alg)?,
        None => HashAlg::Sha1,
    };
    let mgf_hash = match &p.mask_gen {
        Some(mgf) => {
            if mgf.oid != ObjectIdentifier::new_unwrap(oid::MGF1) {
                return Err(bad());
            }
            let inner = mgf
                .parameters
                .as_ref()
                .ok_or_else(bad)?
                .decode_as::<AlgorithmIdentifierOwned>()
                .map_err(|_| bad())?;
            hash_of(&inner)?
        }
        None => HashAlg::Sha1,
    };
    if mgf_hash != hash || p.trailer.unwrap_or(1) != 1 {
        return Err(bad());
    }
    let salt_len = usize::try_from(p.salt_len.unwrap_or(20)).map_err(|_| bad())?;
    Ok((hash, salt_len))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use der::asn1::Any;
    use der::Encode;

    /// DER RSASSA-PSS-params, built with the der crate (as a client would).
    pub fn pss_params(hash: HashAlg, mgf_hash: HashAlg, salt_len: Option<u32>) -> Vec<u8> {
        let alg = |h: HashAlg| AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(h.oid()),
            parameters: Some(Any::null()),
        };
        let mgf_inner = alg(mgf_hash).to_der().unwrap();
        PssParams {
            hash: Some(alg(hash)),
            mask_gen: Some(AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap(oid::MGF1),
                parameters: Some(Any::from_der(&mgf_inner).unwrap()),
            }),
            salt_len,
            trailer: None,
        }
        .to_der()
        .unwrap()
    }

    fn req<'a>(
        sign: &'a str,
        hash: Option<&'a str>,
        params: Option<&'a [u8]>,
    ) -> AlgorithmRequest<'a> {
        AlgorithmRequest {
            sign_algo: sign,
            hash_algo: hash,
            hash_field: "hashAlgo",
            params,
        }
    }

    #[test]
    fn composite_and_generic_oids() {
        let k = KeyKind::Rsa2048;
        assert_eq!(
            resolve(k, &req(oid::SHA256_WITH_RSA, None, None)).unwrap(),
            SignOp::RsaPkcs1 {
                hash: HashAlg::Sha256
            }
        );
        assert_eq!(
            resolve(k, &req(oid::SHA512_WITH_RSA, Some(oid::SHA512), None)).unwrap(),
            SignOp::RsaPkcs1 {
                hash: HashAlg::Sha512
            }
        );
        // Composite OID and hashAlgo disagree.
        assert_eq!(
            resolve(k, &req(oid::SHA256_WITH_RSA, Some(oid::SHA384), None)).unwrap_err(),
            CscError::invalid_param("hashAlgo")
        );
        assert_eq!(
            resolve(k, &req(oid::RSA_ENCRYPTION, Some(oid::SHA384), None)).unwrap(),
            SignOp::RsaPkcs1 {
                hash: HashAlg::Sha384
            }
        );
        assert!(resolve(k, &req(oid::RSA_ENCRYPTION, None, None)).is_err());
        // An EC algorithm on an RSA key and the reverse.
        assert_eq!(
            resolve(k, &req(oid::ECDSA_WITH_SHA256, None, None)).unwrap_err(),
            CscError::invalid_param("signAlgo")
        );
        assert_eq!(
            resolve(KeyKind::P256, &req(oid::SHA256_WITH_RSA, None, None)).unwrap_err(),
            CscError::invalid_param("signAlgo")
        );
        assert_eq!(
            resolve(KeyKind::P384, &req(oid::EC_PUBLIC_KEY, None, None)).unwrap(),
            SignOp::Ecdsa { hash: None }
        );
        assert_eq!(
            resolve(KeyKind::P256, &req(oid::ECDSA_WITH_SHA384, None, None)).unwrap(),
            SignOp::Ecdsa {
                hash: Some(HashAlg::Sha384)
            }
        );
        assert_eq!(
            resolve(KeyKind::P256, &req(oid::EC_PUBLIC_KEY, Some("1.2.3"), None)).unwrap_err(),
            CscError::invalid_param("hashAlgo")
        );
    }

    #[test]
    fn pss_parameters() {
        let k = KeyKind::Rsa2048;
        let p = pss_params(HashAlg::Sha256, HashAlg::Sha256, Some(32));
        assert_eq!(
            resolve(k, &req(oid::RSASSA_PSS, Some(oid::SHA256), Some(&p))).unwrap(),
            SignOp::RsaPss {
                hash: HashAlg::Sha256,
                salt_len: 32
            }
        );
        // Salt lengths beyond a byte are fine while they fit the modulus: 256 - 32 - 2 = 222 is the max.
        let p = pss_params(HashAlg::Sha256, HashAlg::Sha256, Some(222));
        assert!(resolve(k, &req(oid::RSASSA_PSS, None, Some(&p))).is_ok());
        let p = pss_params(HashAlg::Sha256, HashAlg::Sha256, Some(223));
        assert!(resolve(k, &req(oid::RSASSA_PSS, None, Some(&p))).is_err());
        let p = pss_params(HashAlg::Sha512, HashAlg::Sha512, Some(300));
        assert!(resolve(KeyKind::Rsa3072, &req(oid::RSASSA_PSS, None, Some(&p))).is_ok());
        // Defaults: SHA-1, salt 20.
        let defaults = PssParams {
            hash: None,
            mask_gen: None,
            salt_len: None,
            trailer: None,
        }
        .to_der()
        .unwrap();
        assert_eq!(
            resolve(k, &req(oid::RSASSA_PSS, None, Some(&defaults))).unwrap(),
            SignOp::RsaPss {
                hash: HashAlg::Sha1,
                salt_len: 20
            }
        );
        let bad = CscError::invalid_param("signAlgoParams");
        // Mismatched MGF1 hash, mismatched hashAlgo, missing and garbage parameters.
        let p = pss_params(HashAlg::Sha256, HashAlg::Sha1, Some(32));
        assert_eq!(
            resolve(k, &req(oid::RSASSA_PSS, None, Some(&p))).unwrap_err(),
            bad
        );
        let p = pss_params(HashAlg::Sha256, HashAlg::Sha256, Some(32));
        assert_eq!(
            resolve(k, &req(oid::RSASSA_PSS, Some(oid::SHA384), Some(&p))).unwrap_err(),
            bad
        );
        assert_eq!(
            resolve(k, &req(oid::RSASSA_PSS, None, None)).unwrap_err(),
            bad
        );
        assert_eq!(
            resolve(k, &req(oid::RSASSA_PSS, None, Some(b"\x30\x03abc"))).unwrap_err(),
            bad
        );
    }

    #[test]
    fn hash_lengths() {
        let op = SignOp::RsaPkcs1 {
            hash: HashAlg::Sha256,
        };
        assert!(op.check_hashes(&[vec![0; 32], vec![1; 32]]).is_ok());
        assert_eq!(
            op.check_hashes(&[vec![0; 32], vec![1; 48]]).unwrap_err(),
            CscError::invalid_param("hashes")
        );
        let any = SignOp::Ecdsa { hash: None };
        assert!(any.check_hashes(&[vec![0; 20], vec![0; 64]]).is_ok());
        assert!(any.check_hashes(&[vec![0; 33]]).is_err());
    }
}
