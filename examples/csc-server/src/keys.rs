//! Credential keys, all in the HSM (`hsm_store`): generating one per credential, finding them again
//! by the label the database names, and the mapping of a signing operation (`algorithms::SignOp`)
//! onto the HSM's mechanisms. No private key is ever outside the HSM.

use crate::algorithms::{HashAlg, SignOp};
use crate::model::KeyKind;
use hsm_store::{Curve, Hash, KeySpec, Signing, Store};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("generating the key {label:?} in the HSM: {source}")]
    Generate {
        label: String,
        source: hsm_store::Error,
    },
    #[error("the HSM key {label:?}: {message}")]
    Load { label: String, message: String },
    #[error("no key for credential {0}")]
    Unknown(String),
    #[error("signing in the HSM: {0}")]
    Sign(hsm_store::Error),
}

pub fn spec(kind: KeyKind) -> KeySpec {
    match kind {
        KeyKind::Rsa2048 | KeyKind::Rsa3072 => KeySpec::Rsa { bits: kind.bits() },
        KeyKind::P256 => KeySpec::Ec(Curve::P256),
        KeyKind::P384 => KeySpec::Ec(Curve::P384),
    }
}

fn hash(h: HashAlg) -> Hash {
    match h {
        HashAlg::Sha1 => Hash::Sha1,
        HashAlg::Sha224 => Hash::Sha224,
        HashAlg::Sha256 => Hash::Sha256,
        HashAlg::Sha384 => Hash::Sha384,
        HashAlg::Sha512 => Hash::Sha512,
    }
}

fn signing(op: SignOp) -> Signing {
    match op {
        SignOp::RsaPkcs1 { hash: h } => Signing::RsaPkcs1(hash(h)),
        SignOp::RsaPss { hash: h, salt_len } => Signing::RsaPss {
            hash: hash(h),
            salt_len,
        },
        SignOp::Ecdsa { .. } => Signing::Ecdsa,
    }
}

/// Generates the key pair of a credential (or the CA) in the HSM under `label`.
pub fn generate(store: &Store, label: &str, kind: KeyKind) -> Result<hsm_store::Key, KeyError> {
    store
        .generate(label, spec(kind))
        .map_err(|source| KeyError::Generate {
            label: label.to_owned(),
            source,
        })
}

/// The HSM key under `label`, which must be of `kind`.
pub fn find(store: &Store, label: &str, kind: KeyKind) -> Result<hsm_store::Key, KeyError> {
    let load = |message: String| KeyError::Load {
        label: label.to_owned(),
        message,
    };
    let key = store.key(label).map_err(|e| load(e.to_string()))?;
    if key.spec() != spec(kind) {
        return Err(load(format!("is a {:?}, not {kind}", key.spec())));
    }
    Ok(key)
}

/// The keys of the service's credentials, by credential ID.
pub struct Keys {
    store: Arc<Store>,
    by_credential: HashMap<String, hsm_store::Key>,
}

impl Keys {
    /// Finds every credential's key: `(credential ID, HSM label, kind)`.
    pub fn load<'a>(
        store: Arc<Store>,
        credentials: impl IntoIterator<Item = (&'a str, &'a str, KeyKind)>,
    ) -> Result<Keys, KeyError> {
        let mut by_credential = HashMap::new();
        for (id, label, kind) in credentials {
            by_credential.insert(id.to_owned(), find(&store, label, kind)?);
        }
        Ok(Keys {
            store,
            by_credential,
        })
    }

    /// The public key of a credential (DER SubjectPublicKeyInfo).
    pub fn spki_der(&self, credential: &str) -> Option<&[u8]> {
        self.by_credential.get(credential).map(|k| k.spki_der())
    }

    /// Signs one hash value. The caller has checked the operation against the key type and the hash
    /// length (`algorithms::resolve`, `SignOp::check_hashes`); a mismatch here is an error, not a
    /// panic. ECDSA signatures come back as DER `Ecdsa-Sig-Value`.
    pub fn sign(&self, credential: &str, op: SignOp, hash: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self
            .by_credential
            .get(credential)
            .ok_or_else(|| KeyError::Unknown(credential.to_owned()))?;
        self.store
            .sign(key, signing(op), hash)
            .map_err(KeyError::Sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use rsa::pkcs8::DecodePublicKey;
    use sha2::{Digest, Sha256, Sha384};

    #[test]
    fn every_kind_generates_signs_and_verifies() {
        let t = hsm_store::testing::scratch_token().unwrap();
        let store = Arc::new(Store::open(t.module, &t.label, &t.pin, 2).unwrap());
        let kinds = [KeyKind::Rsa2048, KeyKind::P256, KeyKind::P384];
        for kind in kinds {
            generate(&store, &format!("key {kind}"), kind).unwrap();
        }
        let labels: Vec<String> = kinds.iter().map(|k| format!("key {k}")).collect();
        let keys = Keys::load(
            store.clone(),
            kinds
                .iter()
                .zip(&labels)
                .map(|(k, l)| (k.name(), l.as_str(), *k)),
        )
        .unwrap();
        let digest = Sha256::digest(b"message").to_vec();

        let spki = keys.spki_der("rsa-2048").unwrap();
        let public = rsa::PublicKey::from_public_key_der(spki).unwrap();
        let op = SignOp::RsaPkcs1 {
            hash: HashAlg::Sha256,
        };
        let sig = keys.sign("rsa-2048", op, &digest).unwrap();
        assert_eq!(sig.len(), 256);
        public
            .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
            .unwrap();
        let op = SignOp::RsaPss {
            hash: HashAlg::Sha256,
            salt_len: 32,
        };
        let sig = keys.sign("rsa-2048", op, &digest).unwrap();
        public
            .verify(rsa::Pss::<Sha256>::new_with_salt(32), &digest, &sig)
            .unwrap();
        // Wrong length for the hash algorithm, and an ECDSA operation on an RSA key.
        let sha384 = SignOp::RsaPkcs1 {
            hash: HashAlg::Sha384,
        };
        assert!(keys.sign("rsa-2048", sha384, &digest).is_err());
        let ecdsa = SignOp::Ecdsa { hash: None };
        assert!(keys.sign("rsa-2048", ecdsa, &digest).is_err());

        let public =
            p256::ecdsa::VerifyingKey::from_public_key_der(keys.spki_der("ec-p256").unwrap())
                .unwrap();
        let der = keys.sign("ec-p256", ecdsa, &digest).unwrap();
        let sig = p256::ecdsa::DerSignature::try_from(der.as_slice()).unwrap();
        public.verify_prehash(&digest, &sig).unwrap();

        let public =
            p384::ecdsa::VerifyingKey::from_public_key_der(keys.spki_der("ec-p384").unwrap())
                .unwrap();
        let d384 = Sha384::digest(b"message").to_vec();
        let der = keys.sign("ec-p384", ecdsa, &d384).unwrap();
        let sig = p384::ecdsa::DerSignature::try_from(der.as_slice()).unwrap();
        public.verify_prehash(&d384, &sig).unwrap();

        assert!(matches!(
            keys.sign("nobody", ecdsa, &digest),
            Err(KeyError::Unknown(_))
        ));
        // A key of another kind than the database says is refused when the service loads.
        let wrong = Keys::load(store, [("x", labels[1].as_str(), KeyKind::Rsa2048)]);
        assert!(matches!(wrong, Err(KeyError::Load { .. })));
    }
}
