//! Signing mechanisms and the cases that drive them: for each mechanism the module offers, what C_Sign
//! gets for a message and how `openssl` (verify.rs) checks the result, independently of the module.

use super::objects::Key;
use crate::verify::{openssl_verify, Scheme};
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr;

/// A mechanism with its parameter bytes.
#[derive(Clone, Debug)]
pub struct Mech {
    pub ty: CK_MECHANISM_TYPE,
    pub param: Vec<u8>,
}

impl Mech {
    pub fn new(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech {
            ty,
            param: Vec::new(),
        }
    }

    pub fn pss(
        ty: CK_MECHANISM_TYPE,
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt: usize,
    ) -> Mech {
        let p = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: hash,
            mgf,
            sLen: salt as CK_ULONG,
        };
        // SAFETY: a plain-old-data struct viewed as its bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                &p as *const CK_RSA_PKCS_PSS_PARAMS as *const u8,
                std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>(),
            )
        };
        Mech {
            ty,
            param: bytes.to_vec(),
        }
    }

    /// The CK_MECHANISM; `self` must outlive its use.
    pub fn raw(&self) -> CK_MECHANISM {
        CK_MECHANISM {
            mechanism: self.ty,
            pParameter: if self.param.is_empty() {
                ptr::null_mut()
            } else {
                self.param.as_ptr() as *mut c_void
            },
            ulParameterLen: self.param.len() as CK_ULONG,
        }
    }
}

pub fn sha(name: &str, data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match name {
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => panic!("unknown hash {name}"),
    }
}

/// DER DigestInfo for CKM_RSA_PKCS.
pub fn digest_info(hash: &str, digest: &[u8]) -> Vec<u8> {
    let prefix: &[u8] = match hash {
        "sha1" => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        "sha224" => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        "sha256" => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        "sha384" => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        "sha512" => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => panic!("unknown hash {hash}"),
    };
    [prefix, digest].concat()
}

pub const HASHES: [(&str, CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE); 5] = [
    ("sha1", CKM_SHA_1, CKG_MGF1_SHA1),
    ("sha224", CKM_SHA224, CKG_MGF1_SHA224),
    ("sha256", CKM_SHA256, CKG_MGF1_SHA256),
    ("sha384", CKM_SHA384, CKG_MGF1_SHA384),
    ("sha512", CKM_SHA512, CKG_MGF1_SHA512),
];

pub fn hash_by_len(len: usize) -> (&'static str, CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE) {
    HASHES[[20, 28, 32, 48, 64]
        .iter()
        .position(|l| *l == len)
        .expect("hash length")]
}

/// How to drive one signing mechanism: what to feed it and how openssl verifies the result.
pub struct Case {
    pub mech: Mech,
    pub hash: &'static str,
    /// The input C_Sign gets for `message`.
    pub input: Vec<u8>,
    /// The digest openssl verifies against.
    pub digest: Vec<u8>,
    pub scheme: Scheme,
    /// The mechanism hashes the message itself (C_SignUpdate allowed).
    pub hashing: bool,
}

impl Case {
    /// The first (SHA-256 where the mechanism hashes) case of `mech` for `message`.
    pub fn of(mech: CK_MECHANISM_TYPE, message: &[u8]) -> Case {
        let mut all = cases_for(mech, message);
        let at = all.iter().position(|c| c.hash == "sha256").unwrap_or(0);
        all.swap_remove(at)
    }

    /// Whether openssl, independently of the module, accepts `sig` as this case's signature by `key`.
    pub fn verifies(&self, key: &Key, sig: &[u8]) -> bool {
        self.verifies_for(&key.cert_der, sig)
    }

    /// Whether openssl accepts `sig` as this case's signature by the key of the certificate `cert_der`.
    pub fn verifies_for(&self, cert_der: &[u8], sig: &[u8]) -> bool {
        openssl_verify(cert_der, self.hash, &self.digest, sig, self.scheme)
    }

    /// Asserts that openssl accepts `sig` as this case's signature by `key`.
    #[track_caller]
    pub fn assert_verified(&self, key: &Key, sig: &[u8]) {
        assert!(
            self.verifies(key, sig),
            "openssl rejects the {} signature (mechanism 0x{:x})",
            self.hash,
            self.mech.ty
        );
    }
}

/// Every way the module can sign with `mech_ty`, for `message`.
pub fn cases_for(mech_ty: CK_MECHANISM_TYPE, message: &[u8]) -> Vec<Case> {
    let mut out = Vec::new();
    let hashed = |hash: &'static str, mech: Mech, scheme: Scheme| Case {
        mech,
        hash,
        input: message.to_vec(),
        digest: sha(hash, message),
        scheme,
        hashing: true,
    };
    match mech_ty {
        CKM_RSA_PKCS => {
            for (h, _, _) in HASHES {
                let d = sha(h, message);
                out.push(Case {
                    mech: Mech::new(CKM_RSA_PKCS),
                    hash: h,
                    input: digest_info(h, &d),
                    digest: d,
                    scheme: Scheme::RsaPkcs1,
                    hashing: false,
                });
            }
        }
        CKM_RSA_PKCS_PSS => {
            for (h, m, g) in HASHES {
                let d = sha(h, message);
                out.push(Case {
                    mech: Mech::pss(CKM_RSA_PKCS_PSS, m, g, d.len()),
                    hash: h,
                    input: d.clone(),
                    digest: d,
                    scheme: Scheme::RsaPss {
                        salt_len: sha(h, b"").len(),
                    },
                    hashing: false,
                });
            }
        }
        CKM_ECDSA => {
            for (h, _, _) in HASHES {
                let d = sha(h, message);
                out.push(Case {
                    mech: Mech::new(CKM_ECDSA),
                    hash: h,
                    input: d.clone(),
                    digest: d,
                    scheme: Scheme::EcdsaRaw,
                    hashing: false,
                });
            }
        }
        CKM_SHA1_RSA_PKCS => out.push(hashed("sha1", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA224_RSA_PKCS => out.push(hashed("sha224", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA256_RSA_PKCS => out.push(hashed("sha256", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA384_RSA_PKCS => out.push(hashed("sha384", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA512_RSA_PKCS => out.push(hashed("sha512", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS => {
            let (h, m, g) = match mech_ty {
                CKM_SHA1_RSA_PKCS_PSS => HASHES[0],
                CKM_SHA224_RSA_PKCS_PSS => HASHES[1],
                CKM_SHA256_RSA_PKCS_PSS => HASHES[2],
                CKM_SHA384_RSA_PKCS_PSS => HASHES[3],
                _ => HASHES[4],
            };
            let salt = sha(h, b"").len();
            out.push(hashed(
                h,
                Mech::pss(mech_ty, m, g, salt),
                Scheme::RsaPss { salt_len: salt },
            ));
        }
        CKM_ECDSA_SHA1 => out.push(hashed("sha1", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        CKM_ECDSA_SHA224 => out.push(hashed("sha224", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        CKM_ECDSA_SHA256 => out.push(hashed("sha256", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        CKM_ECDSA_SHA384 => out.push(hashed("sha384", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        CKM_ECDSA_SHA512 => out.push(hashed("sha512", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        other => panic!("the module offers an unexpected signing mechanism 0x{other:x}"),
    }
    out
}
