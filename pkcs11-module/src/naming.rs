//! What applications call a credential's objects: CKA_LABEL, CKA_ID, and the RFC 7512 `pkcs11:` URI that
//! names them. The module builds its objects with these, and `cloudtoken status` prints the URIs, so the
//! two cannot disagree.

use remote_client::CredentialInfo;
use sha2::{Digest, Sha256};

/// CKA_LABEL of a credential's certificate and keys: the service's description, else its ID.
pub fn credential_label(info: &CredentialInfo) -> String {
    info.description
        .clone()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| info.id.clone())
}

/// CKA_ID of a credential's certificate and keys: stable across sessions and machines, short enough
/// for tools that show it in hex.
pub fn credential_ckaid(credential_id: &str) -> Vec<u8> {
    Sha256::digest(credential_id.as_bytes())[..8].to_vec()
}

/// The object class part of a `pkcs11:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    PrivateKey,
    PublicKey,
    Certificate,
}

impl ObjectType {
    fn as_str(self) -> &'static str {
        match self {
            ObjectType::PrivateKey => "private",
            ObjectType::PublicKey => "public",
            ObjectType::Certificate => "cert",
        }
    }
}

/// RFC 7512 §2.3: everything outside the unreserved characters is percent-encoded, which every
/// parser accepts (the RFC allows a few more characters literally, but not every tool does).
fn pct_encode(value: &[u8], all: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &b in value {
        if !all && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkcs11:token=...;object=...;id=%..;type=...` for one object of a token.
pub fn object_uri(token_label: &str, object_label: &str, id: &[u8], kind: ObjectType) -> String {
    format!(
        "pkcs11:token={};object={};id={};type={}",
        pct_encode(token_label.as_bytes(), false),
        pct_encode(object_label.as_bytes(), false),
        pct_encode(id, true),
        kind.as_str()
    )
}

/// `pkcs11:token=...;object=...;type=...`: an object by token and label only, for a credential whose
/// CKA_ID changes (a GlobalSign DSS identity, renewed every few minutes).
pub fn label_uri(token_label: &str, object_label: &str, kind: ObjectType) -> String {
    format!(
        "pkcs11:token={};object={};type={}",
        pct_encode(token_label.as_bytes(), false),
        pct_encode(object_label.as_bytes(), false),
        kind.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encodes_labels_and_every_id_byte() {
        let uri = object_uri(
            "Alice Example",
            "Alice (RSA-2048); ü",
            &[0x01, 0xab, 0x7f],
            ObjectType::PrivateKey,
        );
        assert_eq!(
            uri,
            "pkcs11:token=Alice%20Example;object=Alice%20%28RSA-2048%29%3B%20%C3%BC;\
             id=%01%AB%7F;type=private"
        );
        assert!(object_uri("t", "o", &[], ObjectType::Certificate).ends_with(";id=;type=cert"));
    }

    #[test]
    fn a_label_uri_has_no_id() {
        assert_eq!(
            label_uri("ACME Seal", "ACME Invoices", ObjectType::PrivateKey),
            "pkcs11:token=ACME%20Seal;object=ACME%20Invoices;type=private"
        );
    }

    #[test]
    fn ckaid_is_stable_and_eight_bytes() {
        let a = credential_ckaid("alice-rsa2048");
        assert_eq!(a.len(), 8);
        assert_eq!(a, credential_ckaid("alice-rsa2048"));
        assert_ne!(a, credential_ckaid("alice-p256"));
    }
}
