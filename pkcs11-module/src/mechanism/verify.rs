//! The check every signature from the service passes before it is returned: it must verify under the
//! credential's public key (from its certificate), for the hash that was sent and the scheme the plan
//! chose. A service that answers with a wrong signature (a bug, a fault on the way, a different key) gets
//! CKR_DEVICE_ERROR, never CKR_OK.
//!
//! Public-key operations of a well-kept library only: the system's OpenSSL (libcrypto) through the
//! `openssl` crate. Its prehashed P-256 check takes a fifth of the time RustCrypto's `p256` takes, and its
//! RSA check a fraction of RustCrypto `rsa`'s; every signature is checked, so this is most of the module's
//! own time per signature (issue 10). GOST R 34.10-2012, which the default OpenSSL provider lacks, goes
//! through OpenSSL's GOST engine in a child process (gost_check.rs).

use super::gost_check::{self, GostKey};
use super::hash::HashAlg;
use super::key::{Curve, KeyKind};
use der::Decode;
use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::md::{Md, MdRef};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::RsaPssSaltlen;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

/// A credential's public key, parsed once when the credential is loaded.
pub enum PublicKey {
    Rsa(PKey<Public>),
    /// A key on one of the supported curves, and the length of the curve's field in bytes.
    Ec {
        key: EcKey<Public>,
        field_len: usize,
    },
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
            PublicKey::Ec { .. } => "PublicKey::Ec",
            PublicKey::Gost(_) => "PublicKey::Gost",
        })
    }
}

fn curve_nid(curve: Curve) -> Nid {
    match curve {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::P384 => Nid::SECP384R1,
        Curve::P521 => Nid::SECP521R1,
    }
}

impl PublicKey {
    /// From a DER SubjectPublicKeyInfo of a key of `kind` (rsaEncryption, RSASSA-PSS, ecPublicKey on a
    /// supported curve, or a GOST R 34.10-2012 key).
    pub fn from_spki(der: &[u8], kind: &KeyKind) -> Option<PublicKey> {
        match kind {
            KeyKind::Rsa { .. } => {
                // The RSAPublicKey inside, whether the SPKI says rsaEncryption or RSASSA-PSS: the plan,
                // not the certificate's parameters, decides the scheme.
                let spki = SubjectPublicKeyInfoOwned::from_der(der).ok()?;
                let bits = spki.subject_public_key.as_bytes()?;
                let rsa = Rsa::public_key_from_der_pkcs1(bits).ok()?;
                Some(PublicKey::Rsa(PKey::from_rsa(rsa).ok()?))
            }
            KeyKind::Ec { curve } => {
                // OpenSSL decodes the point (compressed or not) and checks that it is on the curve.
                let key = PKey::public_key_from_der(der).ok()?.ec_key().ok()?;
                if key.group().curve_name() != Some(curve_nid(*curve)) {
                    return None;
                }
                key.check_key().ok()?;
                Some(PublicKey::Ec {
                    key,
                    field_len: curve.field_len(),
                })
            }
            KeyKind::Gost { params } => Some(PublicKey::Gost(GostKey::new(der, params.size)?)),
        }
    }

    /// The same key; a GOST key is checked with the `openssl` program at `path` (`openssl_path`).
    pub fn with_openssl(self, path: &std::path::Path) -> PublicKey {
        match self {
            PublicKey::Gost(k) => PublicKey::Gost(k.with_openssl(path)),
            other => other,
        }
    }
}

/// The SHA digest of an RSA scheme (the RSA family combines with no other).
fn md(hash: HashAlg) -> Option<&'static MdRef> {
    Some(match hash {
        HashAlg::Sha1 => Md::sha1(),
        HashAlg::Sha224 => Md::sha224(),
        HashAlg::Sha256 => Md::sha256(),
        HashAlg::Sha384 => Md::sha384(),
        HashAlg::Sha512 => Md::sha512(),
        HashAlg::Streebog256 | HashAlg::Streebog512 => return None,
    })
}

/// An RSA check of `sig` over `hash` with the padding `setup` chooses; any error is a failed check.
fn rsa_verify(
    key: &PublicKey,
    hash: &[u8],
    sig: &[u8],
    setup: impl FnOnce(&mut PkeyCtx<Public>) -> Result<(), openssl::error::ErrorStack>,
) -> bool {
    let PublicKey::Rsa(k) = key else {
        return false;
    };
    let check = || -> Result<bool, openssl::error::ErrorStack> {
        let mut ctx = PkeyCtx::new(k)?;
        ctx.verify_init()?;
        setup(&mut ctx)?;
        ctx.verify(hash, sig)
    };
    check().unwrap_or(false)
}

/// RSASSA-PKCS1-v1_5 over `hash` (RFC 8017 §8.2.2).
pub(crate) fn rsa_pkcs1(key: &PublicKey, hash_alg: HashAlg, hash: &[u8], sig: &[u8]) -> bool {
    let Some(md) = md(hash_alg) else {
        return false;
    };
    rsa_verify(key, hash, sig, |ctx| {
        ctx.set_rsa_padding(Padding::PKCS1)?;
        ctx.set_signature_md(md)
    })
}

/// RSASSA-PSS over `hash` with MGF1 of the same hash and exactly this salt length (RFC 8017 §8.1.2).
pub(crate) fn rsa_pss(
    key: &PublicKey,
    hash_alg: HashAlg,
    salt: usize,
    hash: &[u8],
    sig: &[u8],
) -> bool {
    let Ok(salt) = i32::try_from(salt) else {
        return false;
    };
    let Some(md) = md(hash_alg) else {
        return false;
    };
    rsa_verify(key, hash, sig, |ctx| {
        ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
        ctx.set_signature_md(md)?;
        ctx.set_rsa_mgf1_md(md)?;
        ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))
    })
}

/// ECDSA over `hash`; `raw` is the fixed-width r||s the module returns. OpenSSL takes the hash as SEC 1
/// §4.1.4 does: truncated when longer than the group order, otherwise the same integer.
pub(crate) fn ecdsa(key: &PublicKey, hash: &[u8], raw: &[u8]) -> bool {
    let PublicKey::Ec { key, field_len } = key else {
        return false;
    };
    if raw.len() != 2 * field_len {
        return false;
    }
    let (r, s) = raw.split_at(*field_len);
    let sig = BigNum::from_slice(r)
        .and_then(|r| BigNum::from_slice(s).map(|s| (r, s)))
        .and_then(|(r, s)| EcdsaSig::from_private_components(r, s));
    sig.and_then(|sig| sig.verify(hash, key)).unwrap_or(false)
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
