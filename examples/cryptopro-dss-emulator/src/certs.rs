//! Certificates for GOST keys: the demo CA (csc-server's, ECDSA P-256) signs a certificate over the
//! SubjectPublicKeyInfo the GOST engine made, with x509-cert's builder (rcgen cannot carry a GOST key).
//! Key usage digitalSignature + nonRepudiation, as for document signatures; valid three years.

use crate::model::ORGANIZATION;
use der::{Decode, Encode};
use p256::pkcs8::DecodePrivateKey;
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

/// An end-entity certificate for document signatures, issued by the CA whose certificate is `issuer`.
struct DocumentSigning {
    issuer: Name,
    subject: Name,
}

impl BuilderProfile for DocumentSigning {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        let basic = BasicConstraints {
            ca: false,
            path_len_constraint: None,
        };
        let usage = KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation);
        Ok(vec![
            (&basic).to_extension(subject, &[])?,
            (&usage).to_extension(subject, &[])?,
        ])
    }
}

/// The certificate (DER) of `spki_der` for `common_name`, signed with the CA's PKCS#8 P-256 key.
pub fn issue(
    ca_cert_der: &[u8],
    ca_key_pkcs8: &[u8],
    common_name: &str,
    spki_der: &[u8],
) -> Result<Vec<u8>, String> {
    let e = |what: &'static str| {
        move |err: String| format!("issuing the certificate of {common_name}: {what}: {err}")
    };
    let ca = x509_cert::Certificate::from_der(ca_cert_der)
        .map_err(|x| e("CA certificate")(x.to_string()))?;
    let signer = p256::ecdsa::SigningKey::from_pkcs8_der(ca_key_pkcs8)
        .map_err(|x| e("CA key")(x.to_string()))?;
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|x| e("public key")(x.to_string()))?;
    // The same name form as csc-server's certificates: "CN=<name>,O=cloudtoken demo,C=DE".
    let subject = Name::from_str(&format!("CN={common_name},O={ORGANIZATION},C=DE"))
        .map_err(|x| e("subject")(x.to_string()))?;
    let mut serial = [0u8; 16];
    csc_server::random::fill(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let serial = SerialNumber::new(&serial).map_err(|x| e("serial")(x.to_string()))?;
    let validity = Validity::from_now(Duration::from_secs(3 * 365 * 24 * 3600))
        .map_err(|x| e("validity")(x.to_string()))?;
    let profile = DocumentSigning {
        issuer: ca.tbs_certificate().subject().clone(),
        subject,
    };
    let builder = CertificateBuilder::new(profile, serial, validity, spki)
        .map_err(|x| e("builder")(x.to_string()))?;
    let cert = builder
        .build::<_, p256::ecdsa::DerSignature>(&signer)
        .map_err(|x| e("signature")(x.to_string()))?;
    cert.to_der().map_err(|x| e("encoding")(x.to_string()))
}

/// Whether `cert_der` carries exactly `spki_der` (the builder re-encodes nothing, but a mismatch would
/// certify a key nobody holds).
pub fn carries(cert_der: &[u8], spki_der: &[u8]) -> bool {
    x509_cert::Certificate::from_der(cert_der)
        .ok()
        .and_then(|c| c.tbs_certificate().subject_public_key_info().to_der().ok())
        .is_some_and(|d| d == spki_der)
}
