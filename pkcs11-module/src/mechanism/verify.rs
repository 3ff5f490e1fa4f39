//! The check every signature from the service passes before it is returned: it must verify under the
//! credential's public key (from its certificate), for the hash that was sent and the scheme the plan
//! chose. A service that answers with a wrong signature (a bug, a fault on the way, a different key) gets
//! CKR_DEVICE_ERROR, never CKR_OK.
//!
//! Public-key operations of well-kept implementations only: RustCrypto `rsa`, `p256`/`p384`/`p521`, and for
//! GOST R 34.10-2012, which has no well-kept Rust implementation, OpenSSL's GOST engine in a child process
//! (gost_check.rs).

use super::gost_check::{self, GostKey};
use super::hash::HashAlg;
use super::key::{Curve, KeyKind};
use der::Decode;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, Pss};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

/// A credential's public key, parsed once when the credential is loaded.
pub enum PublicKey {
    Rsa(rsa::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Gost(GostKey),
}

/// Why the service's signature is not returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The bytes cannot be a signature of this key (length, encoding).
    Malformed,
    /// A well-formed signature that does not verify for the hash that was sent.
    DoesNotVerify,
    /// The signature could not be checked at all: what to install or fix, in plain words.
    Unverifiable(String),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PublicKey::Rsa(_) => "PublicKey::Rsa",
            PublicKey::P256(_) => "PublicKey::P256",
            PublicKey::P384(_) => "PublicKey::P384",
            PublicKey::P521(_) => "PublicKey::P521",
            PublicKey::Gost(_) => "PublicKey::Gost",
        })
    }
}

impl PublicKey {
    /// From a DER SubjectPublicKeyInfo of a key of `kind` (rsaEncryption, RSASSA-PSS, ecPublicKey on a
    /// supported curve, or a GOST R 34.10-2012 key).
    pub fn from_spki(der: &[u8], kind: &KeyKind) -> Option<PublicKey> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der).ok()?;
        let bits = spki.subject_public_key.as_bytes()?;
        Some(match kind {
            KeyKind::Rsa { .. } => PublicKey::Rsa(rsa::PublicKey::from_pkcs1_der(bits).ok()?),
            KeyKind::Ec { curve: Curve::P256 } => {
                PublicKey::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(bits).ok()?)
            }
            KeyKind::Ec { curve: Curve::P384 } => {
                PublicKey::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(bits).ok()?)
            }
            KeyKind::Ec { curve: Curve::P521 } => {
                PublicKey::P521(p521::ecdsa::VerifyingKey::from_sec1_bytes(bits).ok()?)
            }
            KeyKind::Gost { params } => PublicKey::Gost(GostKey::new(der, params.size)?),
        })
    }

    /// The same key; a GOST key is checked with the `openssl` program at `path` (`openssl_path`).
    pub fn with_openssl(self, path: &std::path::Path) -> PublicKey {
        match self {
            PublicKey::Gost(k) => PublicKey::Gost(k.with_openssl(path)),
            other => other,
        }
    }
}

/// The PKCS#1 v1.5 scheme of a SHA hash (the RSA family combines with no other).
fn pkcs1_scheme(hash: HashAlg) -> Option<Pkcs1v15Sign> {
    Some(match hash {
        HashAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashAlg::Sha224 => Pkcs1v15Sign::new::<sha2::Sha224>(),
        HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashAlg::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
        HashAlg::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        HashAlg::Streebog256 | HashAlg::Streebog512 => return None,
    })
}

/// RSASSA-PKCS1-v1_5 over `hash` (RFC 8017 §8.2.2).
pub(crate) fn rsa_pkcs1(key: &PublicKey, hash_alg: HashAlg, hash: &[u8], sig: &[u8]) -> bool {
    match (key, pkcs1_scheme(hash_alg)) {
        (PublicKey::Rsa(k), Some(scheme)) => k.verify(scheme, hash, sig).is_ok(),
        _ => false,
    }
}

/// RSASSA-PSS over `hash` with MGF1 of the same hash and this salt length (RFC 8017 §8.1.2).
pub(crate) fn rsa_pss(
    key: &PublicKey,
    hash_alg: HashAlg,
    salt: usize,
    hash: &[u8],
    sig: &[u8],
) -> bool {
    let PublicKey::Rsa(k) = key else {
        return false;
    };
    let ok = match hash_alg {
        HashAlg::Sha1 => k.verify(Pss::<sha1::Sha1>::new_with_salt(salt), hash, sig),
        HashAlg::Sha224 => k.verify(Pss::<sha2::Sha224>::new_with_salt(salt), hash, sig),
        HashAlg::Sha256 => k.verify(Pss::<sha2::Sha256>::new_with_salt(salt), hash, sig),
        HashAlg::Sha384 => k.verify(Pss::<sha2::Sha384>::new_with_salt(salt), hash, sig),
        HashAlg::Sha512 => k.verify(Pss::<sha2::Sha512>::new_with_salt(salt), hash, sig),
        HashAlg::Streebog256 | HashAlg::Streebog512 => return false,
    };
    ok.is_ok()
}

/// The hash as ECDSA takes it: a hash shorter than half the field is left-padded with zero bytes, which
/// is the same integer (SEC 1 §4.1.4 converts the hash to an integer, truncated only when longer), and
/// what the `ecdsa` crate accepts.
fn ecdsa_prehash(hash: &[u8], field_len: usize) -> Vec<u8> {
    if hash.len() >= field_len {
        return hash.to_vec();
    }
    let mut padded = vec![0u8; field_len - hash.len()];
    padded.extend_from_slice(hash);
    padded
}

/// ECDSA over `hash`; `raw` is the fixed-width r||s the module returns.
pub(crate) fn ecdsa(key: &PublicKey, hash: &[u8], raw: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    match key {
        PublicKey::P256(k) => p256::ecdsa::Signature::from_slice(raw)
            .is_ok_and(|s| k.verify_prehash(&ecdsa_prehash(hash, 32), &s).is_ok()),
        PublicKey::P384(k) => p384::ecdsa::Signature::from_slice(raw)
            .is_ok_and(|s| k.verify_prehash(&ecdsa_prehash(hash, 48), &s).is_ok()),
        PublicKey::P521(k) => p521::ecdsa::Signature::from_slice(raw)
            .is_ok_and(|s| k.verify_prehash(&ecdsa_prehash(hash, 66), &s).is_ok()),
        PublicKey::Rsa(_) | PublicKey::Gost(_) => false,
    }
}

/// GOST R 34.10-2012 over `hash` (the Streebog of the key's size); `sig` in PKCS#11 order (s || r).
/// `Err` when no verifier could say yes or no.
pub(crate) fn gost(key: &PublicKey, hash: &[u8], sig: &[u8]) -> Result<bool, Rejected> {
    match key {
        PublicKey::Gost(k) => gost_check::verify(k, hash, sig).map_err(Rejected::Unverifiable),
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::ecdsa_signature_to_raw_for_tests as to_raw;

    const RSA2048: KeyKind = KeyKind::Rsa { bits: 2048 };

    macro_rules! vector {
        ($name:literal) => {
            include_bytes!(concat!("../../tests-data/verify/", $name))
        };
    }

    fn flip(sig: &[u8]) -> Vec<u8> {
        let mut s = sig.to_vec();
        let last = s.len() - 1;
        s[last] ^= 1;
        s
    }

    #[test]
    fn rsa_signatures_made_by_openssl_verify_and_altered_ones_do_not() {
        let key = PublicKey::from_spki(vector!("rsa2048.spki.der"), &RSA2048).unwrap();
        let h256 = HashAlg::Sha256.digest(b"abc");
        let h384 = HashAlg::Sha384.digest(b"abc");
        let pkcs1 = vector!("rsa2048-pkcs1-sha256.sig");
        assert!(rsa_pkcs1(&key, HashAlg::Sha256, &h256, pkcs1));
        assert!(!rsa_pkcs1(&key, HashAlg::Sha256, &h256, &flip(pkcs1)));
        assert!(!rsa_pkcs1(
            &key,
            HashAlg::Sha256,
            &HashAlg::Sha256.digest(b"abd"),
            pkcs1
        ));
        assert!(
            !rsa_pss(&key, HashAlg::Sha256, 32, &h256, pkcs1),
            "not a PSS signature"
        );

        let pss = vector!("rsa2048-pss-sha256-salt32.sig");
        assert!(rsa_pss(&key, HashAlg::Sha256, 32, &h256, pss));
        assert!(
            !rsa_pss(&key, HashAlg::Sha256, 20, &h256, pss),
            "other salt length"
        );
        assert!(!rsa_pss(&key, HashAlg::Sha256, 32, &h256, &flip(pss)));
        let pss0 = vector!("rsa2048-pss-sha384-salt0.sig");
        assert!(rsa_pss(&key, HashAlg::Sha384, 0, &h384, pss0));
        assert!(!rsa_pkcs1(&key, HashAlg::Sha384, &h384, pss0));
        // Random bytes are no signature.
        assert!(!rsa_pkcs1(&key, HashAlg::Sha256, &h256, &[0x5a; 256]));
    }

    #[test]
    fn ecdsa_signatures_verify_on_every_curve_including_short_hashes() {
        let cases: [(&[u8], &[u8], Curve, HashAlg); 3] = [
            (
                vector!("p256.spki.der"),
                vector!("p256-sha512.sig"),
                Curve::P256,
                HashAlg::Sha512,
            ),
            (
                vector!("p384.spki.der"),
                vector!("p384-sha384.sig"),
                Curve::P384,
                HashAlg::Sha384,
            ),
            // SHA-1 on P-521: shorter than half the field.
            (
                vector!("p521.spki.der"),
                vector!("p521-sha1.sig"),
                Curve::P521,
                HashAlg::Sha1,
            ),
        ];
        for (spki, der, curve, hash) in cases {
            let key = PublicKey::from_spki(spki, &KeyKind::Ec { curve }).unwrap();
            let raw = to_raw(der, curve.field_len()).unwrap();
            let h = hash.digest(b"abc");
            assert!(ecdsa(&key, &h, &raw), "{curve:?}");
            assert!(!ecdsa(&key, &h, &flip(&raw)), "{curve:?} altered");
            assert!(
                !ecdsa(&key, &hash.digest(b"abd"), &raw),
                "{curve:?} other hash"
            );
            assert!(!ecdsa(&key, &h, &raw[1..]), "{curve:?} truncated");
        }
    }

    #[test]
    fn a_key_of_the_other_kind_verifies_nothing() {
        let rsa = PublicKey::from_spki(vector!("rsa2048.spki.der"), &RSA2048).unwrap();
        let p256 = PublicKey::from_spki(
            vector!("p256.spki.der"),
            &KeyKind::Ec { curve: Curve::P256 },
        )
        .unwrap();
        let h = HashAlg::Sha256.digest(b"abc");
        assert!(!ecdsa(&rsa, &h, &[1; 64]));
        assert!(!rsa_pkcs1(
            &p256,
            HashAlg::Sha256,
            &h,
            vector!("rsa2048-pkcs1-sha256.sig")
        ));
        assert!(PublicKey::from_spki(vector!("p256.spki.der"), &RSA2048).is_none());
        assert!(PublicKey::from_spki(b"garbage", &RSA2048).is_none());
    }
}
