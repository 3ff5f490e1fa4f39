//! Credential key pairs: generation, PKCS#8 (sealed at rest by the vault), and the signature operations.

use crate::algorithms::{HashAlg, SignOp};
use crate::model::KeyKind;
use crate::random::SysRng;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::{Pkcs1v15Sign, Pss};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("key encoding failed: {0}")]
    Encode(String),
    #[error("stored key does not decode as {0}")]
    Decode(KeyKind),
    #[error("signing failed: {0}")]
    Sign(String),
}

pub struct GeneratedKey {
    /// PKCS#8 PrivateKeyInfo.
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
}

pub fn generate(kind: KeyKind) -> Result<GeneratedKey, KeyError> {
    let enc = |e: &dyn std::fmt::Display| KeyError::Encode(e.to_string());
    match kind {
        KeyKind::Rsa2048 | KeyKind::Rsa3072 => {
            let key = rsa::PrivateKey::new(&mut SysRng, kind.bits() as usize)
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            Ok(GeneratedKey {
                pkcs8: Zeroizing::new(key.to_pkcs8_der().map_err(|e| enc(&e))?.as_bytes().to_vec()),
                spki: key
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|e| enc(&e))?
                    .into_vec(),
            })
        }
        KeyKind::P256 => {
            let key =
                <p256::ecdsa::SigningKey as p256::elliptic_curve::Generate>::try_generate_from_rng(
                    &mut SysRng,
                )
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            Ok(GeneratedKey {
                pkcs8: Zeroizing::new(key.to_pkcs8_der().map_err(|e| enc(&e))?.as_bytes().to_vec()),
                spki: key
                    .verifying_key()
                    .to_public_key_der()
                    .map_err(|e| enc(&e))?
                    .into_vec(),
            })
        }
        KeyKind::P384 => {
            let key =
                <p384::ecdsa::SigningKey as p384::elliptic_curve::Generate>::try_generate_from_rng(
                    &mut SysRng,
                )
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            Ok(GeneratedKey {
                pkcs8: Zeroizing::new(key.to_pkcs8_der().map_err(|e| enc(&e))?.as_bytes().to_vec()),
                spki: key
                    .verifying_key()
                    .to_public_key_der()
                    .map_err(|e| enc(&e))?
                    .into_vec(),
            })
        }
    }
}

/// A decrypted private key. Each type zeroizes itself on drop.
pub enum PrivateKey {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl PrivateKey {
    pub fn from_pkcs8(kind: KeyKind, der: &[u8]) -> Result<PrivateKey, KeyError> {
        let bad = |_| KeyError::Decode(kind);
        Ok(match kind {
            KeyKind::Rsa2048 | KeyKind::Rsa3072 => {
                PrivateKey::Rsa(Box::new(rsa::PrivateKey::from_pkcs8_der(der).map_err(bad)?))
            }
            KeyKind::P256 => {
                PrivateKey::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(bad)?)
            }
            KeyKind::P384 => {
                PrivateKey::P384(p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(bad)?)
            }
        })
    }

    /// Signs one hash value. The caller has checked the operation against the key type and the hash
    /// length (`algorithms::resolve`, `SignOp::check_hashes`); a mismatch here is an error, not a panic.
    /// ECDSA signatures come back as DER `Ecdsa-Sig-Value`.
    pub fn sign(&self, op: SignOp, hash: &[u8]) -> Result<Vec<u8>, KeyError> {
        let err = |e: &dyn std::fmt::Display| KeyError::Sign(e.to_string());
        match (self, op) {
            (PrivateKey::Rsa(key), SignOp::RsaPkcs1 { hash: alg }) => {
                // The OS RNG blinds the private-key operation.
                let padding = match alg {
                    HashAlg::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
                    HashAlg::Sha224 => Pkcs1v15Sign::new::<Sha224>(),
                    HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
                    HashAlg::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
                    HashAlg::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
                };
                key.sign_with_rng(&mut SysRng, padding, hash)
                    .map_err(|e| err(&e))
            }
            (
                PrivateKey::Rsa(key),
                SignOp::RsaPss {
                    hash: alg,
                    salt_len,
                },
            ) => {
                let r = match alg {
                    HashAlg::Sha1 => {
                        key.sign_with_rng(&mut SysRng, Pss::<Sha1>::new_with_salt(salt_len), hash)
                    }
                    HashAlg::Sha224 => {
                        key.sign_with_rng(&mut SysRng, Pss::<Sha224>::new_with_salt(salt_len), hash)
                    }
                    HashAlg::Sha256 => {
                        key.sign_with_rng(&mut SysRng, Pss::<Sha256>::new_with_salt(salt_len), hash)
                    }
                    HashAlg::Sha384 => {
                        key.sign_with_rng(&mut SysRng, Pss::<Sha384>::new_with_salt(salt_len), hash)
                    }
                    HashAlg::Sha512 => {
                        key.sign_with_rng(&mut SysRng, Pss::<Sha512>::new_with_salt(salt_len), hash)
                    }
                };
                r.map_err(|e| err(&e))
            }
            (PrivateKey::P256(key), SignOp::Ecdsa { .. }) => {
                let sig: p256::ecdsa::Signature = key.sign_prehash(hash).map_err(|e| err(&e))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            (PrivateKey::P384(key), SignOp::Ecdsa { .. }) => {
                let sig: p384::ecdsa::Signature = key.sign_prehash(hash).map_err(|e| err(&e))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            _ => Err(KeyError::Sign("operation does not fit the key type".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::HashAlg;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use rsa::pkcs8::DecodePublicKey;
    use sha2::Digest;

    #[test]
    fn every_kind_generates_signs_and_verifies() {
        let digest = Sha256::digest(b"message").to_vec();
        for kind in [KeyKind::Rsa2048, KeyKind::P256, KeyKind::P384] {
            let g = generate(kind).unwrap();
            let key = PrivateKey::from_pkcs8(kind, &g.pkcs8).unwrap();
            match kind {
                KeyKind::Rsa2048 => {
                    let public = rsa::PublicKey::from_public_key_der(&g.spki).unwrap();
                    let op = SignOp::RsaPkcs1 {
                        hash: HashAlg::Sha256,
                    };
                    let sig = key.sign(op, &digest).unwrap();
                    assert_eq!(sig.len(), 256);
                    public
                        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
                        .unwrap();
                    let op = SignOp::RsaPss {
                        hash: HashAlg::Sha256,
                        salt_len: 32,
                    };
                    let sig = key.sign(op, &digest).unwrap();
                    public
                        .verify(Pss::<Sha256>::new_with_salt(32), &digest, &sig)
                        .unwrap();
                    // Wrong length for the hash algorithm.
                    assert!(key
                        .sign(
                            SignOp::RsaPkcs1 {
                                hash: HashAlg::Sha384
                            },
                            &digest
                        )
                        .is_err());
                    // An ECDSA operation on an RSA key.
                    assert!(key.sign(SignOp::Ecdsa { hash: None }, &digest).is_err());
                }
                KeyKind::P256 => {
                    let public = p256::ecdsa::VerifyingKey::from_public_key_der(&g.spki).unwrap();
                    let der = key
                        .sign(
                            SignOp::Ecdsa {
                                hash: Some(HashAlg::Sha256),
                            },
                            &digest,
                        )
                        .unwrap();
                    let sig = p256::ecdsa::DerSignature::try_from(der.as_slice()).unwrap();
                    public.verify_prehash(&digest, &sig).unwrap();
                }
                KeyKind::P384 => {
                    let public = p384::ecdsa::VerifyingKey::from_public_key_der(&g.spki).unwrap();
                    let d384 = Sha384::digest(b"message").to_vec();
                    let der = key.sign(SignOp::Ecdsa { hash: None }, &d384).unwrap();
                    let sig = p384::ecdsa::DerSignature::try_from(der.as_slice()).unwrap();
                    public.verify_prehash(&d384, &sig).unwrap();
                }
                KeyKind::Rsa3072 => unreachable!(),
            }
            // The wrong key type does not decode.
            let other = if kind.is_rsa() {
                KeyKind::P256
            } else {
                KeyKind::Rsa2048
            };
            assert!(PrivateKey::from_pkcs8(other, &g.pkcs8).is_err());
        }
    }
}
