//! The one attribute table: the PKCS#11 objects (certificates, public and private keys) that stand for a CSC
//! credential, template matching, and C_GetAttributeValue / template copying.

mod attributes;
mod certificate;
mod keys;
#[cfg(test)]
pub(crate) mod tests;

pub use attributes::{
    bool_value, resolve_attributes, ulong_value, AttributeOutcome, AttributeRequest,
};
#[cfg(test)]
pub use attributes::{parse_ulong, ulongs_value};
pub use certificate::{certificate_facts, key_kind_of_certificate};

use crate::mechanism::KeyKind;
use cryptoki_sys::*;
use remote_client::CredentialInfo;

/// One attribute of a caller's template (C_FindObjectsInit), value copied in wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub type_: CK_ATTRIBUTE_TYPE,
    pub value: Vec<u8>,
}

impl Attribute {
    #[cfg(test)]
    pub fn new(type_: CK_ATTRIBUTE_TYPE, value: impl Into<Vec<u8>>) -> Self {
        Attribute {
            type_,
            value: value.into(),
        }
    }
}

/// What an object holds for one attribute type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// The value in wire form (CK_ULONG / CK_BBOOL in native layout, byte strings as-is).
    Value(Vec<u8>),
    /// The attribute exists but can never be revealed (private key material).
    Sensitive,
}

/// A token object: its class and its attributes in wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    class: CK_OBJECT_CLASS,
    /// Each type at most once; CKA_CLASS included.
    attributes: Vec<(CK_ATTRIBUTE_TYPE, AttrValue)>,
}

impl Object {
    /// An object of `class` with these attributes (CKA_CLASS is set from `class`; a later duplicate type
    /// replaces an earlier one).
    pub fn new(class: CK_OBJECT_CLASS, attributes: Vec<(CK_ATTRIBUTE_TYPE, AttrValue)>) -> Self {
        let mut obj = Object {
            class,
            attributes: Vec::with_capacity(attributes.len() + 1),
        };
        obj.set(CKA_CLASS, AttrValue::Value(ulong_value(class)));
        for (t, v) in attributes {
            obj.set(t, v);
        }
        obj
    }

    fn set(&mut self, type_: CK_ATTRIBUTE_TYPE, value: AttrValue) {
        match self.attributes.iter_mut().find(|(t, _)| *t == type_) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((type_, value)),
        }
    }

    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.class
    }

    /// CKA_PRIVATE: only visible to a logged-in user (core decides what that means for the token).
    pub fn is_private(&self) -> bool {
        self.flag(CKA_PRIVATE)
    }

    /// Sets CKA_PRIVATE, for a token that shows its keys without login.
    pub fn set_private(&mut self, private: bool) {
        self.set(CKA_PRIVATE, AttrValue::Value(bool_value(private)));
    }

    /// CKA_TOKEN.
    #[cfg(test)]
    pub fn is_token(&self) -> bool {
        self.flag(CKA_TOKEN)
    }

    fn flag(&self, type_: CK_ATTRIBUTE_TYPE) -> bool {
        matches!(self.value(type_), Some([b]) if *b != CK_FALSE)
    }

    /// CKA_ID (empty when absent).
    #[cfg(test)]
    pub fn id(&self) -> &[u8] {
        self.value(CKA_ID).unwrap_or_default()
    }

    /// CKA_LABEL (empty when absent).
    #[cfg(test)]
    pub fn label(&self) -> &[u8] {
        self.value(CKA_LABEL).unwrap_or_default()
    }

    /// The attribute as held: `None` for a type the object does not have.
    pub fn attribute(&self, type_: CK_ATTRIBUTE_TYPE) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(t, _)| *t == type_)
            .map(|(_, v)| v)
    }

    /// The readable value of an attribute (`None` when absent or sensitive).
    pub fn value(&self, type_: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        match self.attribute(type_)? {
            AttrValue::Value(v) => Some(v),
            AttrValue::Sensitive => None,
        }
    }

    /// C_FindObjects matching: every template attribute must be present, readable and equal (booleans compare
    /// by truth value). An empty template matches everything.
    pub fn matches(&self, template: &[Attribute]) -> bool {
        template.iter().all(|a| {
            self.value(a.type_)
                .is_some_and(|held| attributes::value_matches(a.type_, held, &a.value))
        })
    }
}

/// Why a credential cannot be turned into objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the credential has no certificate")]
    NoCertificate,
    #[error("certificate {index} cannot be parsed: {reason}")]
    Certificate { index: usize, reason: String },
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
}

/// The objects for one credential.
#[derive(Debug, Clone)]
pub struct CredentialObjects {
    /// CKO_CERTIFICATE, category "token user".
    pub certificate: Object,
    pub public_key: Object,
    pub private_key: Object,
    /// The rest of the chain, category "authority", each with its own CKA_ID.
    pub ca_certificates: Vec<Object>,
    /// The key as the end-entity certificate describes it (authoritative over `KeyInfo.len`).
    pub key_kind: KeyKind,
    /// The end-entity certificate's DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
}

/// Builds the objects of a credential from its certificates (end entity first). `label` and `id` go to the
/// end-entity certificate and both keys; `mechanisms` becomes CKA_ALLOWED_MECHANISMS.
pub fn objects_for_credential(
    cred: &CredentialInfo,
    label: &str,
    id: &[u8],
    mechanisms: &[CK_MECHANISM_TYPE],
    always_authenticate: bool,
) -> Result<CredentialObjects, Error> {
    let parsed = cred
        .certificates
        .iter()
        .enumerate()
        .map(|(index, der)| certificate::Parsed::new(index, der))
        .collect::<Result<Vec<_>, _>>()?;
    let (end_entity, cas) = parsed.split_first().ok_or(Error::NoCertificate)?;
    let key = keys::PublicKeyParts::from_spki(end_entity.spki())?;

    let certificate = end_entity.object(
        &parsed,
        certificate::Role::EndEntity,
        id.to_vec(),
        label.as_bytes().to_vec(),
    )?;
    let ca_certificates = cas
        .iter()
        .enumerate()
        .map(|(i, ca)| {
            let ca_label = ca
                .common_name()
                .unwrap_or_else(|| format!("{label} CA {}", i + 1));
            ca.object(
                &parsed,
                certificate::Role::Authority,
                ca.key_identifier(),
                ca_label.into_bytes(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;

    let common = keys::KeyCommon {
        id,
        label: label.as_bytes(),
        subject: end_entity.subject_der(),
        mechanisms,
    };
    Ok(CredentialObjects {
        certificate,
        public_key: key.public_key_object(&common),
        private_key: key.private_key_object(&common, always_authenticate),
        ca_certificates,
        key_kind: key.kind,
        spki: key.spki_der().to_vec(),
    })
}

/// CKA_UNIQUE_ID: stable across module loads and distinct per object, derived from what the object is (its
/// class and the certificate or public key it holds) rather than from a load-order counter.
fn unique_id(class: CK_OBJECT_CLASS, content: &[u8]) -> Vec<u8> {
    let mut h = crate::mechanism::HashAlg::Sha256.hasher();
    h.update(&ulong_value(class));
    h.update(content);
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}
