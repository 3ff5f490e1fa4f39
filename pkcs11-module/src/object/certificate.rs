//! X.509 certificates → CKO_CERTIFICATE objects, and the key the end-entity certificate certifies.

use super::attributes::{bool_value, date_value, ulong_value};
use super::{keys, unique_id, AttrValue, Error, Object};
use crate::mechanism::{HashAlg, KeyKind};
use cryptoki_sys::*;
use der::{Decode, Encode};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::time::Time;
use x509_cert::{Certificate, SubjectPublicKeyInfo};

/// The key a DER certificate's SubjectPublicKeyInfo holds (RSA modulus size or named curve).
pub fn key_kind_of_certificate(der: &[u8]) -> Result<KeyKind, Error> {
    let parsed = Parsed::new(0, der)?;
    Ok(keys::PublicKeyParts::from_spki(parsed.spki())?.kind)
}

/// What the token needs to know of a certificate beyond its objects: its subject's common name and when
/// it is valid (short-lived credentials are replaced before `not_after`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub common_name: Option<String>,
    pub not_before: std::time::SystemTime,
    pub not_after: std::time::SystemTime,
}

pub fn certificate_facts(der: &[u8]) -> Result<CertificateFacts, Error> {
    let parsed = Parsed::new(0, der)?;
    let validity = parsed.cert.tbs_certificate().validity();
    Ok(CertificateFacts {
        common_name: parsed.common_name(),
        not_before: validity.not_before.to_system_time(),
        not_after: validity.not_after.to_system_time(),
    })
}

/// CKA_CERTIFICATE_CATEGORY of a certificate in a credential's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    EndEntity,
    Authority,
}

/// One certificate of the chain, parsed once, with the DER pieces the attributes need.
pub(super) struct Parsed<'a> {
    der: &'a [u8],
    cert: Certificate,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
    spki: Vec<u8>,
}

fn encode_err(index: usize) -> impl Fn(der::Error) -> Error {
    move |e| Error::Certificate {
        index,
        reason: e.to_string(),
    }
}

impl<'a> Parsed<'a> {
    pub(super) fn new(index: usize, der: &'a [u8]) -> Result<Self, Error> {
        let err = encode_err(index);
        let cert = Certificate::from_der(der).map_err(&err)?;
        let tbs = cert.tbs_certificate();
        let subject = tbs.subject().to_der().map_err(&err)?;
        let issuer = tbs.issuer().to_der().map_err(&err)?;
        let serial = tbs.serial_number().to_der().map_err(&err)?;
        let spki = tbs.subject_public_key_info().to_der().map_err(&err)?;
        Ok(Parsed {
            der,
            cert,
            subject,
            issuer,
            serial,
            spki,
        })
    }

    pub(super) fn spki(&self) -> &SubjectPublicKeyInfo {
        self.cert.tbs_certificate().subject_public_key_info()
    }

    pub(super) fn subject_der(&self) -> &[u8] {
        &self.subject
    }

    pub(super) fn common_name(&self) -> Option<String> {
        let cn = self.cert.tbs_certificate().subject().common_name().ok()??;
        Some(cn.value().into_owned()).filter(|s| !s.is_empty())
    }

    /// SHA-1 of the subjectPublicKey BIT STRING contents: the key hash of RFC 5280 §4.2.1.2 method (1) and of
    /// OCSP, which is also what CKA_HASH_OF_SUBJECT_PUBLIC_KEY holds under CKA_NAME_HASH_ALGORITHM = SHA-1.
    fn public_key_hash(&self) -> Vec<u8> {
        HashAlg::Sha1.digest(self.spki().subject_public_key.raw_bytes())
    }

    /// A CA certificate's CKA_ID: its subjectKeyIdentifier, or the key hash when it has none. Never the
    /// credential's ID, so clients that pair certificates and keys by CKA_ID do not pick a CA.
    pub(super) fn key_identifier(&self) -> Vec<u8> {
        match self
            .cert
            .tbs_certificate()
            .get_extension::<SubjectKeyIdentifier>()
        {
            Ok(Some((_, ski))) if !ski.0.as_bytes().is_empty() => ski.0.as_bytes().to_vec(),
            _ => self.public_key_hash(),
        }
    }

    /// The certificate object. `chain` is every certificate of the credential, searched for this one's issuer.
    pub(super) fn object(
        &self,
        chain: &[Parsed<'_>],
        role: Role,
        id: Vec<u8>,
        label: Vec<u8>,
    ) -> Result<Object, Error> {
        let validity = self.cert.tbs_certificate().validity();
        let issuer_key_hash = chain
            .iter()
            .find(|c| c.subject == self.issuer)
            .map(Parsed::public_key_hash)
            .unwrap_or_default();
        let category = match role {
            Role::EndEntity => CK_CERTIFICATE_CATEGORY_TOKEN_USER,
            Role::Authority => CK_CERTIFICATE_CATEGORY_AUTHORITY,
        };
        let v = AttrValue::Value;
        Ok(Object::new(
            CKO_CERTIFICATE,
            vec![
                (CKA_TOKEN, v(bool_value(true))),
                (CKA_PRIVATE, v(bool_value(false))),
                (CKA_MODIFIABLE, v(bool_value(false))),
                (CKA_COPYABLE, v(bool_value(false))),
                (CKA_DESTROYABLE, v(bool_value(false))),
                (CKA_LABEL, v(label)),
                (CKA_UNIQUE_ID, v(unique_id(CKO_CERTIFICATE, self.der))),
                (CKA_CERTIFICATE_TYPE, v(ulong_value(CKC_X_509))),
                (CKA_TRUSTED, v(bool_value(false))),
                (CKA_CERTIFICATE_CATEGORY, v(ulong_value(category))),
                (
                    CKA_CHECK_VALUE,
                    v(HashAlg::Sha1.digest(self.der)[..3].to_vec()),
                ),
                (CKA_START_DATE, v(ck_date(&validity.not_before))),
                (CKA_END_DATE, v(ck_date(&validity.not_after))),
                (CKA_PUBLIC_KEY_INFO, v(self.spki.clone())),
                (CKA_SUBJECT, v(self.subject.clone())),
                (CKA_ID, v(id)),
                (CKA_ISSUER, v(self.issuer.clone())),
                (CKA_SERIAL_NUMBER, v(self.serial.clone())),
                (CKA_VALUE, v(self.der.to_vec())),
                (CKA_URL, v(Vec::new())),
                (CKA_HASH_OF_SUBJECT_PUBLIC_KEY, v(self.public_key_hash())),
                (CKA_HASH_OF_ISSUER_PUBLIC_KEY, v(issuer_key_hash)),
                (
                    CKA_JAVA_MIDP_SECURITY_DOMAIN,
                    v(ulong_value(CK_SECURITY_DOMAIN_UNSPECIFIED)),
                ),
                (CKA_NAME_HASH_ALGORITHM, v(ulong_value(CKM_SHA_1))),
            ],
        ))
    }
}

/// CK_DATE of a validity bound (UTC date); empty, which PKCS#11 allows, when the year does not fit.
fn ck_date(time: &Time) -> Vec<u8> {
    let t = time.to_date_time();
    date_value(t.year().into(), t.month().into(), t.day().into()).unwrap_or_default()
}
