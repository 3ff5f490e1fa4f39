//! One token of a module, logged in: generating key pairs inside it (sensitive, non-extractable,
//! token objects), finding them again by label, and signing with them through the session pool.

use crate::encoding;
use crate::module::Module;
use crate::pool::Pool;
use crate::{Curve, Error, KeySpec, Result, Signing};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::sync::{Arc, RwLock};

/// A private key in the token, with what signing needs to know about it.
#[derive(Debug, Clone)]
pub struct Key {
    label: String,
    spec: KeySpec,
    handle: ObjectHandle,
    spki: Vec<u8>,
}

impl Key {
    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn spec(&self) -> KeySpec {
        self.spec
    }
    /// The public key as DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
}

/// How the session pool has been used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub sessions: usize,
    /// The most sessions that signed (or generated) at the same time.
    pub peak_in_use: usize,
}

pub struct Store {
    pool: Pool,
    /// Generation takes it for writing, everything else for reading: SoftHSM's file object store is
    /// not safe while one thread of the process creates objects in a token another thread uses
    /// (SoftHSMv2 issue 573: CKR_GENERAL_ERROR from concurrent C_GenerateKeyPair).
    objects: RwLock<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("sessions", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// Attributes every private key gets: only the token can use it, only for signing.
fn private_template(id: &[u8], label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn public_template(id: &[u8], label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn find_one(s: &Session, class: ObjectClass, label: &str) -> Result<Option<ObjectHandle>> {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(Error::pkcs11("C_FindObjects"))?;
    Ok(found.into_iter().next())
}

fn get(s: &Session, object: ObjectHandle, types: &[AttributeType]) -> Result<Vec<Attribute>> {
    s.get_attributes(object, types)
        .map_err(Error::pkcs11("C_GetAttributeValue"))
}

/// The spec and SubjectPublicKeyInfo of a public key object.
fn public_key(s: &Session, public: ObjectHandle) -> Result<(KeySpec, Vec<u8>)> {
    let attrs = get(
        s,
        public,
        &[
            AttributeType::KeyType,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
            AttributeType::EcPoint,
        ],
    )?;
    let (mut kind, mut n, mut e, mut params, mut point) = (None, None, None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kind = Some(k),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    match (kind, n, e, params, point) {
        (Some(KeyType::RSA), Some(n), Some(e), _, _) => {
            let significant = n.iter().skip_while(|b| **b == 0).count();
            let bits = (significant * 8) as u32;
            Ok((KeySpec::Rsa { bits }, encoding::rsa_spki(&n, &e)?))
        }
        (Some(KeyType::EC), _, _, Some(params), Some(point)) => {
            let curve = encoding::curve_of(&params).ok_or(Error::Malformed("EC curve"))?;
            Ok((KeySpec::Ec(curve), encoding::ec_spki(curve, &point)?))
        }
        _ => Err(Error::Malformed("public key")),
    }
}

/// Refuses a private key the token does not keep sensitive and non-extractable (a module may
/// ignore a template attribute).
fn check_protected(s: &Session, private: ObjectHandle, label: &str) -> Result<()> {
    let attrs = get(
        s,
        private,
        &[
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::Token,
        ],
    )?;
    let protected = attrs.len() == 5
        && attrs.iter().all(|a| match a {
            Attribute::Sensitive(v)
            | Attribute::AlwaysSensitive(v)
            | Attribute::NeverExtractable(v)
            | Attribute::Token(v) => *v,
            Attribute::Extractable(v) => !*v,
            _ => false,
        });
    if protected {
        Ok(())
    } else {
        Err(Error::KeyNotProtected(label.to_owned()))
    }
}

fn hash_mechanism(hash: crate::Hash) -> (MechanismType, PkcsMgfType) {
    use crate::Hash::*;
    match hash {
        Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        Sha224 => (MechanismType::SHA224, PkcsMgfType::MGF1_SHA224),
        Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    }
}

impl Store {
    /// Logs in to the token labelled `token` with `pin`; up to `sessions` sessions sign at once.
    /// PKCS#11 logs a whole process in to a token: while another store of the same token is open
    /// in this process, the PIN is not checked again.
    pub fn open(module: Arc<Module>, token: &str, pin: &str, sessions: usize) -> Result<Store> {
        let slot = module.token_slot(token)?;
        Ok(Store {
            pool: Pool::open(module, slot, pin, sessions)?,
            objects: RwLock::new(()),
        })
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            sessions: self.pool.size(),
            peak_in_use: self.pool.peak(),
        }
    }

    /// Generates a key pair inside the token, labelled `label` (which must be new).
    pub fn generate(&self, label: &str, spec: KeySpec) -> Result<Key> {
        let _creating = self.objects.write().unwrap_or_else(|p| p.into_inner());
        self.pool.with(|s| {
            if find_one(s, ObjectClass::PRIVATE_KEY, label)?.is_some() {
                return Err(Error::KeyExists(label.to_owned()));
            }
            let mut id = [0u8; 16];
            s.generate_random_slice(&mut id)
                .map_err(Error::pkcs11("C_GenerateRandom"))?;
            let mut public = public_template(&id, label);
            let private = private_template(&id, label);
            let mechanism = match spec {
                KeySpec::Rsa { bits } => {
                    public.push(Attribute::ModulusBits(u64::from(bits).into()));
                    public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                    Mechanism::RsaPkcsKeyPairGen
                }
                KeySpec::Ec(curve) => {
                    public.push(Attribute::EcParams(encoding::ec_params(curve)));
                    Mechanism::EccKeyPairGen
                }
            };
            let (public, private) = s
                .generate_key_pair(&mechanism, &public, &private)
                .map_err(Error::pkcs11("C_GenerateKeyPair"))?;
            check_protected(s, private, label)?;
            let (made, spki) = public_key(s, public)?;
            if made != spec {
                return Err(Error::Malformed("generated key"));
            }
            Ok(Key {
                label: label.to_owned(),
                spec,
                handle: private,
                spki,
            })
        })
    }

    /// The key labelled `label`. Object handles are valid in every session of the process, so the
    /// caller keeps the `Key` and signs with it from any thread.
    pub fn key(&self, label: &str) -> Result<Key> {
        let _using = self.objects.read().unwrap_or_else(|p| p.into_inner());
        self.pool.with(|s| {
            let private = find_one(s, ObjectClass::PRIVATE_KEY, label)?
                .ok_or_else(|| Error::NoKey(label.to_owned()))?;
            let public = find_one(s, ObjectClass::PUBLIC_KEY, label)?
                .ok_or_else(|| Error::NoKey(label.to_owned()))?;
            check_protected(s, private, label)?;
            let (spec, spki) = public_key(s, public)?;
            Ok(Key {
                label: label.to_owned(),
                spec,
                handle: private,
                spki,
            })
        })
    }

    /// Signs one hash value. ECDSA signatures come back as DER `Ecdsa-Sig-Value`.
    pub fn sign(&self, key: &Key, op: Signing, hash: &[u8]) -> Result<Vec<u8>> {
        let wrong = || Error::Input("the operation does not fit the key type");
        let (mechanism, input) = match (op, key.spec) {
            (Signing::RsaPkcs1(h), KeySpec::Rsa { .. }) => {
                (Mechanism::RsaPkcs, encoding::digest_info(h, hash)?)
            }
            (Signing::RsaPss { hash: h, salt_len }, KeySpec::Rsa { .. }) => {
                if hash.len() != h.size() {
                    return Err(Error::Input(
                        "the hash value does not have the hash algorithm's length",
                    ));
                }
                let (hash_alg, mgf) = hash_mechanism(h);
                let params = PkcsPssParams {
                    hash_alg,
                    mgf,
                    s_len: (salt_len as u64).into(),
                };
                (Mechanism::RsaPkcsPss(params), hash.to_vec())
            }
            (Signing::Ecdsa, KeySpec::Ec(_)) => (Mechanism::Ecdsa, hash.to_vec()),
            _ => return Err(wrong()),
        };
        let _using = self.objects.read().unwrap_or_else(|p| p.into_inner());
        let signature = self.pool.with(|s| {
            s.sign(&mechanism, key.handle, &input)
                .map_err(Error::pkcs11("C_Sign"))
        })?;
        match key.spec {
            KeySpec::Ec(curve) => {
                let width = match curve {
                    Curve::P256 => 64,
                    Curve::P384 => 96,
                };
                if signature.len() != width {
                    return Err(Error::Malformed("ECDSA signature"));
                }
                encoding::ecdsa_der(&signature)
            }
            KeySpec::Rsa { .. } => Ok(signature),
        }
    }
}
