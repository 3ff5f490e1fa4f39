//! CKO_PUBLIC_KEY / CKO_PRIVATE_KEY objects from a certificate's SubjectPublicKeyInfo.

use super::attributes::{bool_value, ulong_value, ulongs_value};
use super::{unique_id, AttrValue, Error, Object};
use crate::mechanism::gost::{self, GostSize, ParamSet};
use crate::mechanism::{Curve, KeyKind};
use cryptoki_sys::*;
use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Sequence};
use remote_client::oid;
use x509_cert::SubjectPublicKeyInfo;

/// The public parts of the credential's key, in attribute form.
pub(super) struct PublicKeyParts {
    pub(super) kind: KeyKind,
    /// DER SubjectPublicKeyInfo (CKA_PUBLIC_KEY_INFO).
    spki: Vec<u8>,
    material: Material,
}

enum Material {
    Rsa {
        /// Big-endian, no leading zero bytes.
        modulus: Vec<u8>,
        public_exponent: Vec<u8>,
    },
    Ec {
        /// DER namedCurve OID (CKA_EC_PARAMS).
        params: Vec<u8>,
        /// DER OCTET STRING holding the uncompressed point (CKA_EC_POINT).
        point: Vec<u8>,
    },
    Gost {
        /// DER OID of the parameter set (CKA_GOSTR3410_PARAMS).
        params: Vec<u8>,
        /// DER OID of the key size's Streebog (CKA_GOSTR3411_PARAMS), which marks a 2012 key.
        hash_params: Vec<u8>,
        /// The public key's CKA_VALUE: X || Y, each little-endian, as the certificate carries it.
        value: Vec<u8>,
    },
}

/// `GostR3410-2012-PublicKeyParameters` (RFC 9215 §4.2, RFC 4491 §2.3.2): the digest parameter set is
/// optional (absent for 512-bit keys); an encryption parameter set of 2001-era certificates is tolerated.
#[derive(Sequence)]
struct GostKeyParameters {
    public_key_param_set: ObjectIdentifier,
    digest_param_set: Option<ObjectIdentifier>,
    encryption_param_set: Option<ObjectIdentifier>,
}

/// What both key objects share.
pub(super) struct KeyCommon<'a> {
    pub(super) id: &'a [u8],
    pub(super) label: &'a [u8],
    /// DER subject of the certificate.
    pub(super) subject: &'a [u8],
    pub(super) mechanisms: &'a [CK_MECHANISM_TYPE],
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::UnsupportedKey(what.into())
}

impl PublicKeyParts {
    pub(super) fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    pub(super) fn from_spki(spki: &SubjectPublicKeyInfo) -> Result<Self, Error> {
        let der = spki
            .to_der()
            .map_err(|e| unsupported(format!("SubjectPublicKeyInfo: {e}")))?;
        let algorithm = spki.algorithm.oid.to_string();
        let key_bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| unsupported("subjectPublicKey has unused bits"))?;
        match algorithm.as_str() {
            // An RSASSA-PSS SPKI restricts how the key is used but holds the same RSAPublicKey.
            oid::RSA_ENCRYPTION | oid::RSASSA_PSS => {
                let key = pkcs1::RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(key_bits)
                    .map_err(|e| unsupported(format!("RSAPublicKey: {e}")))?;
                let modulus = key.modulus.as_bytes();
                let bits = match modulus.first() {
                    Some(&top) if top != 0 => {
                        (modulus.len() as u32 * 8).saturating_sub(top.leading_zeros())
                    }
                    _ => return Err(unsupported("RSA modulus is zero")),
                };
                Ok(PublicKeyParts {
                    kind: KeyKind::Rsa { bits },
                    spki: der,
                    material: Material::Rsa {
                        modulus: modulus.to_vec(),
                        public_exponent: key.public_exponent.as_bytes().to_vec(),
                    },
                })
            }
            oid::EC_PUBLIC_KEY => {
                let curve_oid = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or_else(|| unsupported("EC key without a named curve"))?;
                let curve = Curve::from_oid(&curve_oid.to_string())
                    .ok_or_else(|| unsupported(format!("EC curve {curve_oid}")))?;
                // Only the uncompressed form can be handed to PKCS#11 clients without EC arithmetic.
                if key_bits.len() != 1 + 2 * curve.field_len() || key_bits[0] != 0x04 {
                    return Err(unsupported(
                        "EC point is not an uncompressed point of its curve",
                    ));
                }
                let point = OctetStringRef::new(key_bits)
                    .and_then(|os| os.to_der())
                    .map_err(|e| unsupported(format!("EC point: {e}")))?;
                Ok(PublicKeyParts {
                    kind: KeyKind::Ec { curve },
                    spki: der,
                    material: Material::Ec {
                        params: curve.ec_params_der(),
                        point,
                    },
                })
            }
            other => match GostSize::from_key_oid(other) {
                Some(size) => Self::gost(spki, der, size, key_bits),
                None => Err(unsupported(format!("algorithm {other}"))),
            },
        }
    }

    /// A GOST R 34.10-2012 key: its parameter set, and the public key (a DER OCTET STRING of X || Y in the
    /// subjectPublicKey, RFC 9215 §4.3).
    fn gost(
        spki: &SubjectPublicKeyInfo,
        der: Vec<u8>,
        size: GostSize,
        key_bits: &[u8],
    ) -> Result<Self, Error> {
        let parameters = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<GostKeyParameters>().ok())
            .ok_or_else(|| unsupported("GOST key without its parameters"))?;
        let set_oid = parameters.public_key_param_set.to_string();
        let set = ParamSet::find(&set_oid, size)
            .ok_or_else(|| unsupported(format!("GOST parameter set {set_oid}")))?;
        let value = <&OctetStringRef>::from_der(key_bits)
            .map_err(|e| unsupported(format!("GOST public key: {e}")))?
            .as_bytes()
            .to_vec();
        if value.len() != 2 * size.half_len() {
            return Err(unsupported("GOST public key of the wrong length"));
        }
        let oid = |o: &str| gost::oid_der(o).ok_or_else(|| unsupported(format!("OID {o}")));
        Ok(PublicKeyParts {
            kind: KeyKind::Gost { params: set },
            spki: der,
            material: Material::Gost {
                params: oid(set.oid)?,
                hash_params: oid(size.hash().oid())?,
                value,
            },
        })
    }

    /// Attributes every key object has (PKCS#11 3.0 §4.4, §4.7).
    fn common_attributes(
        &self,
        class: CK_OBJECT_CLASS,
        c: &KeyCommon<'_>,
    ) -> Vec<(CK_ATTRIBUTE_TYPE, AttrValue)> {
        let v = AttrValue::Value;
        vec![
            (CKA_TOKEN, v(bool_value(true))),
            (CKA_PRIVATE, v(bool_value(class == CKO_PRIVATE_KEY))),
            (CKA_MODIFIABLE, v(bool_value(false))),
            (CKA_COPYABLE, v(bool_value(false))),
            (CKA_DESTROYABLE, v(bool_value(false))),
            (CKA_LABEL, v(c.label.to_vec())),
            (CKA_UNIQUE_ID, v(unique_id(class, &self.spki))),
            (CKA_KEY_TYPE, v(ulong_value(self.kind.ck_key_type()))),
            (CKA_ID, v(c.id.to_vec())),
            (CKA_START_DATE, v(Vec::new())),
            (CKA_END_DATE, v(Vec::new())),
            (CKA_DERIVE, v(bool_value(false))),
            (CKA_LOCAL, v(bool_value(false))),
            (
                CKA_KEY_GEN_MECHANISM,
                v(ulong_value(CK_UNAVAILABLE_INFORMATION)),
            ),
            (CKA_ALLOWED_MECHANISMS, v(ulongs_value(c.mechanisms))),
            (CKA_SUBJECT, v(c.subject.to_vec())),
            (CKA_PUBLIC_KEY_INFO, v(self.spki.clone())),
        ]
    }

    /// The public key attributes of the key type, which both objects carry: clients read the modulus or the EC
    /// point from the private key as often as from the public one.
    fn public_material(&self, with_modulus_bits: bool) -> Vec<(CK_ATTRIBUTE_TYPE, AttrValue)> {
        let v = AttrValue::Value;
        match &self.material {
            Material::Rsa {
                modulus,
                public_exponent,
            } => {
                let mut attrs = vec![
                    (CKA_MODULUS, v(modulus.clone())),
                    (CKA_PUBLIC_EXPONENT, v(public_exponent.clone())),
                ];
                if with_modulus_bits {
                    attrs.push((
                        CKA_MODULUS_BITS,
                        v(ulong_value(CK_ULONG::from(self.kind.bits()))),
                    ));
                }
                attrs
            }
            Material::Ec { params, point } => vec![
                (CKA_EC_PARAMS, v(params.clone())),
                (CKA_EC_POINT, v(point.clone())),
            ],
            Material::Gost {
                params,
                hash_params,
                ..
            } => vec![
                (CKA_GOSTR3410_PARAMS, v(params.clone())),
                (CKA_GOSTR3411_PARAMS, v(hash_params.clone())),
            ],
        }
    }

    pub(super) fn public_key_object(&self, c: &KeyCommon<'_>) -> Object {
        let v = AttrValue::Value;
        let mut attrs = self.common_attributes(CKO_PUBLIC_KEY, c);
        attrs.extend([
            (CKA_ENCRYPT, v(bool_value(false))),
            (CKA_VERIFY, v(bool_value(true))),
            (CKA_VERIFY_RECOVER, v(bool_value(false))),
            (CKA_WRAP, v(bool_value(false))),
            (CKA_TRUSTED, v(bool_value(false))),
        ]);
        attrs.extend(self.public_material(true));
        if let Material::Gost { value, .. } = &self.material {
            // A GOST public key's CKA_VALUE is public; the private key's is the secret scalar.
            attrs.push((CKA_VALUE, v(value.clone())));
        }
        Object::new(CKO_PUBLIC_KEY, attrs)
    }

    pub(super) fn private_key_object(
        &self,
        c: &KeyCommon<'_>,
        always_authenticate: bool,
    ) -> Object {
        let v = AttrValue::Value;
        let mut attrs = self.common_attributes(CKO_PRIVATE_KEY, c);
        attrs.extend([
            (CKA_SENSITIVE, v(bool_value(true))),
            (CKA_DECRYPT, v(bool_value(false))),
            // A key the service offers no signature for (e.g. an RSA key at a service that signs hashes
            // with GOST only) is listed with its certificate but cannot sign.
            (CKA_SIGN, v(bool_value(!c.mechanisms.is_empty()))),
            (CKA_SIGN_RECOVER, v(bool_value(false))),
            (CKA_UNWRAP, v(bool_value(false))),
            (CKA_EXTRACTABLE, v(bool_value(false))),
            (CKA_ALWAYS_SENSITIVE, v(bool_value(true))),
            (CKA_NEVER_EXTRACTABLE, v(bool_value(true))),
            (CKA_WRAP_WITH_TRUSTED, v(bool_value(false))),
            (CKA_ALWAYS_AUTHENTICATE, v(bool_value(always_authenticate))),
        ]);
        // CKA_MODULUS_BITS is a public-key attribute only (PKCS#11 3.0 §2.1.2/2.1.3).
        attrs.extend(self.public_material(false));
        let secret: &[CK_ATTRIBUTE_TYPE] = match self.material {
            Material::Rsa { .. } => &[
                CKA_PRIVATE_EXPONENT,
                CKA_PRIME_1,
                CKA_PRIME_2,
                CKA_EXPONENT_1,
                CKA_EXPONENT_2,
                CKA_COEFFICIENT,
            ],
            Material::Ec { .. } | Material::Gost { .. } => &[CKA_VALUE],
        };
        attrs.extend(secret.iter().map(|&t| (t, AttrValue::Sensitive)));
        Object::new(CKO_PRIVATE_KEY, attrs)
    }
}
