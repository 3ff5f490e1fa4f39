//! A CA whose key is in the token, as rcgen signs with it (its remote-key interface): rcgen hands over
//! the TBSCertificate, this hashes it with SHA-256 and the token signs the hash (CKM_ECDSA, the DER
//! signature X.509 wants). The reference services' demo CAs (csc-server, the GlobalSign DSS emulator).

use crate::{Curve, Error, Key, KeySpec, Result, Signing, Store};
use der::Decode;
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use sha2::Digest;
use std::sync::Arc;

pub struct CaSigner {
    store: Arc<Store>,
    key: Key,
    /// The public key's point (the SubjectPublicKeyInfo's BIT STRING), rcgen's `der_bytes`.
    point: Vec<u8>,
}

impl CaSigner {
    /// `key` must be a P-256 key of `store`: rcgen then writes ecdsa-with-SHA256 as the signature
    /// algorithm.
    pub fn new(store: Arc<Store>, key: Key) -> Result<CaSigner> {
        if key.spec() != KeySpec::Ec(Curve::P256) {
            return Err(Error::Input("a CA key must be an EC P-256 key"));
        }
        let point = spki::SubjectPublicKeyInfoRef::from_der(key.spki_der())
            .map_err(|_| Error::Malformed("public key"))?
            .subject_public_key
            .raw_bytes()
            .to_vec();
        Ok(CaSigner { store, key, point })
    }
}

impl PublicKeyData for CaSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for CaSigner {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        let hash = sha2::Sha256::digest(msg);
        self.store
            .sign(&self.key, Signing::Ecdsa, &hash)
            .map_err(|e| {
                log::error!("the CA key in the HSM: {e}");
                rcgen::Error::RemoteKeyError
            })
    }
}
