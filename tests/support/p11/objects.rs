//! Objects as applications find them: a credential's certificate and private key paired by CKA_ID,
//! objects by class and label, and attribute values as bytes.

use super::rv::ok;
use super::P11;
use cryptoki_sys::*;

pub fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub fn ulongs(bytes: &[u8]) -> Vec<CK_ULONG> {
    bytes
        .chunks_exact(std::mem::size_of::<CK_ULONG>())
        .map(|c| CK_ULONG::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

/// A credential's objects as an application finds them: by label, certificate and private key paired by
/// CKA_ID.
pub struct Key {
    pub private: CK_OBJECT_HANDLE,
    pub cert_der: Vec<u8>,
    pub id: Vec<u8>,
    pub mechanisms: Vec<CK_MECHANISM_TYPE>,
    pub key_type: CK_KEY_TYPE,
}

impl Key {
    /// The key's SHA-256 hashing mechanism (ECDSA or RSA PKCS#1 v1.5).
    pub fn sha256_mechanism(&self) -> CK_MECHANISM_TYPE {
        if self.key_type == CKK_EC {
            CKM_ECDSA_SHA256
        } else {
            CKM_SHA256_RSA_PKCS
        }
    }
}

/// The credential labelled `label`; needs a logged-in session (private keys are private objects) unless
/// the token is login-free.
#[track_caller]
pub fn key_of(p: P11, h: CK_SESSION_HANDLE, label: &str) -> Key {
    let certs = find_labelled(p, h, CKO_CERTIFICATE, label);
    assert_eq!(certs.len(), 1, "one certificate labelled {label}");
    let id = ok(p.attr(h, certs[0], CKA_ID), "CKA_ID");
    let cert_der = ok(p.attr(h, certs[0], CKA_VALUE), "certificate CKA_VALUE");
    let keys = ok(
        p.find(
            h,
            &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY)), (CKA_ID, id.clone())],
        ),
        "find private key",
    );
    assert_eq!(
        keys.len(),
        1,
        "one private key with the certificate's CKA_ID ({label})"
    );
    let mechanisms = ulongs(&ok(
        p.attr(h, keys[0], CKA_ALLOWED_MECHANISMS),
        "CKA_ALLOWED_MECHANISMS",
    ));
    let key_type = ulongs(&ok(p.attr(h, keys[0], CKA_KEY_TYPE), "CKA_KEY_TYPE"))[0];
    Key {
        private: keys[0],
        cert_der,
        id,
        mechanisms,
        key_type,
    }
}

/// Objects of `class` labelled `label` that the session can see.
#[track_caller]
pub fn find_labelled(
    p: P11,
    h: CK_SESSION_HANDLE,
    class: CK_OBJECT_CLASS,
    label: &str,
) -> Vec<CK_OBJECT_HANDLE> {
    ok(
        p.find(
            h,
            &[
                (CKA_CLASS, ulong(class)),
                (CKA_LABEL, label.as_bytes().to_vec()),
            ],
        ),
        "find objects",
    )
}

/// A CK_BBOOL attribute.
#[track_caller]
pub fn bool_attr(
    p: P11,
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    ty: CK_ATTRIBUTE_TYPE,
) -> bool {
    ok(p.attr(h, obj, ty), "boolean attribute") == [CK_TRUE]
}
