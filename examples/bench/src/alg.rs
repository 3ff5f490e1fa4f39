//! The two signature schemes the benchmark compares, in the terms of each path: the PKCS#11 mechanism
//! and its input (CKM_ECDSA takes the SHA-256 hash, CKM_SHA256_RSA_PKCS the message), the CSC
//! algorithm OIDs, and the messages that are signed.

use cryptoki::mechanism::Mechanism;
use remote_client::oid;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// CKM_ECDSA over a SHA-256 hash (prehashed), P-256.
    EcdsaP256,
    /// CKM_SHA256_RSA_PKCS, RSA-2048.
    Rsa2048,
}

pub const ALGS: [Alg; 2] = [Alg::EcdsaP256, Alg::Rsa2048];

impl Alg {
    /// The key of this scheme in summary.json.
    pub fn key(self) -> &'static str {
        match self {
            Alg::EcdsaP256 => "ecdsa_p256",
            Alg::Rsa2048 => "rsa2048",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Alg::EcdsaP256 => "ECDSA P-256",
            Alg::Rsa2048 => "RSA-2048",
        }
    }

    pub fn mechanism(self) -> Mechanism<'static> {
        match self {
            Alg::EcdsaP256 => Mechanism::Ecdsa,
            Alg::Rsa2048 => Mechanism::Sha256RsaPkcs,
        }
    }

    /// What C_Sign gets: the hash for CKM_ECDSA, the message for CKM_SHA256_RSA_PKCS.
    pub fn pkcs11_input(self, m: &Message) -> &[u8] {
        match self {
            Alg::EcdsaP256 => &m.hash,
            Alg::Rsa2048 => &m.text,
        }
    }

    /// `signAlgo` of signatures/signHash.
    pub fn csc_sign_algo(self) -> &'static str {
        match self {
            Alg::EcdsaP256 => oid::ECDSA_WITH_SHA256,
            Alg::Rsa2048 => oid::SHA256_WITH_RSA,
        }
    }
}

/// A message to sign and its SHA-256 hash (what a signing application computes locally).
pub struct Message {
    pub text: Vec<u8>,
    pub hash: Vec<u8>,
}

impl Message {
    /// The `i`th message of a run; `tag` keeps the runs' messages apart.
    pub fn new(tag: &str, i: usize) -> Message {
        let text = format!("cloudtoken benchmark {tag} document {i}").into_bytes();
        let hash = Sha256::digest(&text).to_vec();
        Message { text, hash }
    }
}
