//! The public key of a benchmarked credential and the check of its signatures with ring (public-key
//! operations only), so that no timing counts an answer that is not a valid signature. Keys come from
//! PKCS#11 public key objects (CKA_EC_POINT, CKA_MODULUS/CKA_PUBLIC_EXPONENT) or from the service's
//! certificate.

use crate::alg::Alg;
use crate::Result;
use der::asn1::OctetString;
use der::Decode;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

#[derive(Debug, Clone)]
pub enum PublicKey {
    /// The uncompressed point 04 || X || Y.
    Ec { point: Vec<u8> },
    /// Big-endian modulus (no leading zeros) and exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// How the signature bytes are laid out.
#[derive(Debug, Clone, Copy)]
pub enum Encoding {
    /// PKCS#11: ECDSA as r || s.
    Pkcs11,
    /// CSC signHash: ECDSA as DER Ecdsa-Sig-Value.
    Csc,
}

impl PublicKey {
    /// From CKA_EC_POINT: a DER OCTET STRING around the point (PKCS#11), or the bare point, which
    /// some modules return.
    pub fn from_ec_point(value: &[u8]) -> Result<PublicKey> {
        let point = match OctetString::from_der(value) {
            Ok(o) => o.as_bytes().to_vec(),
            Err(_) => value.to_vec(),
        };
        Ok(PublicKey::Ec { point })
    }

    pub fn rsa(n: Vec<u8>, e: Vec<u8>) -> PublicKey {
        let start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
        PublicKey::Rsa {
            n: n[start..].to_vec(),
            e,
        }
    }

    /// The subject public key of a DER X.509 certificate.
    pub fn from_certificate(cert: &[u8]) -> Result<PublicKey> {
        let cert = x509_cert::Certificate::from_der(cert)
            .map_err(|e| format!("the credential's certificate: {e}"))?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        let key = spki.subject_public_key.raw_bytes();
        match spki.algorithm.oid.to_string().as_str() {
            EC_PUBLIC_KEY => Ok(PublicKey::Ec {
                point: key.to_vec(),
            }),
            RSA_ENCRYPTION => {
                let rsa = pkcs1::RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(key)
                    .map_err(|e| format!("the certificate's RSA key: {e}"))?;
                Ok(PublicKey::rsa(
                    rsa.modulus.as_bytes().to_vec(),
                    rsa.public_exponent.as_bytes().to_vec(),
                ))
            }
            other => Err(format!("the certificate has a key of type {other}")),
        }
    }

    /// The key is of `alg`'s type and size (P-256: 65-byte point; RSA: 2048-bit modulus).
    pub fn check_size(&self, alg: Alg) -> Result<()> {
        match (alg, self) {
            (Alg::EcdsaP256, PublicKey::Ec { point }) if point.len() == 65 && point[0] == 4 => {
                Ok(())
            }
            (Alg::Rsa2048, PublicKey::Rsa { n, .. }) if n.len() == 256 => Ok(()),
            _ => Err(format!("the key is not an {} key", alg.title())),
        }
    }

    /// Whether `sig` is a valid `alg` signature of `message` (SHA-256 of it, for ECDSA).
    pub fn verifies(&self, alg: Alg, encoding: Encoding, message: &[u8], sig: &[u8]) -> bool {
        match (alg, self) {
            (Alg::EcdsaP256, PublicKey::Ec { point }) => {
                let scheme = match encoding {
                    Encoding::Pkcs11 => &signature::ECDSA_P256_SHA256_FIXED,
                    Encoding::Csc => &signature::ECDSA_P256_SHA256_ASN1,
                };
                UnparsedPublicKey::new(scheme, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (Alg::Rsa2048, PublicKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

/// Checks every signature of a run against its message; the first bad one fails the run.
pub fn check_all(
    what: &str,
    key: &PublicKey,
    alg: Alg,
    encoding: Encoding,
    signed: &[(Vec<u8>, Vec<u8>)],
) -> Result<()> {
    for (i, (message, sig)) in signed.iter().enumerate() {
        if !key.verifies(alg, encoding, message, sig) {
            return Err(format!(
                "{what}: signature {i} of {} does not verify against the public key",
                signed.len()
            ));
        }
    }
    Ok(())
}
