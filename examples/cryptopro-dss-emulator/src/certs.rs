//! Certificates for GOST keys: the demo CA (csc-server's, ECDSA P-256, its key in the HSM) signs a
//! certificate over the SubjectPublicKeyInfo the GOST engine made, with x509-cert's builder (rcgen cannot
//! carry a GOST key). Key usage digitalSignature + nonRepudiation, as for document signatures; valid
//! three years.

use crate::model::ORGANIZATION;
use der::{Decode, Encode};
use hsm_store::{Signing, Store};
use p256::ecdsa::signature::{Error as SignatureError, Keypair, Signer};
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, ObjectIdentifier,
    SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef,
};
use std::str::FromStr;
use std::sync::Arc;
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

/// The CA's P-256 key in the HSM as x509-cert's signer: the builder hands over the TBSCertificate, the
/// HSM signs its SHA-256 (CKM_ECDSA, DER `Ecdsa-Sig-Value`).
pub struct CaKey {
    store: Arc<Store>,
    key: hsm_store::Key,
    public: VerifyingKey,
}

/// ecdsa-with-SHA256 (RFC 5758 §3.2).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

impl CaKey {
    pub fn new(store: Arc<Store>, key: hsm_store::Key) -> Result<CaKey, String> {
        let public = VerifyingKey::from_public_key_der(key.spki_der())
            .map_err(|e| format!("the CA key is not a P-256 key: {e}"))?;
        Ok(CaKey { store, key, public })
    }
}

impl Keypair for CaKey {
    type VerifyingKey = VerifyingKey;

    fn verifying_key(&self) -> VerifyingKey {
        self.public
    }
}

impl DynSignatureAlgorithmIdentifier for CaKey {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA256,
            parameters: None,
        })
    }
}

impl Signer<DerSignature> for CaKey {
    fn try_sign(&self, msg: &[u8]) -> Result<DerSignature, SignatureError> {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(msg);
        let der = self
            .store
            .sign(&self.key, Signing::Ecdsa, &hash)
            .map_err(|e| {
                log::error!("the CA key in the HSM: {e}");
                SignatureError::new()
            })?;
        DerSignature::from_bytes(&der)
    }
}

/// The certificate (DER) of `spki_der` for `common_name`, signed with the CA's key.
pub fn issue(
    ca_cert_der: &[u8],
    signer: &CaKey,
    common_name: &str,
    spki_der: &[u8],
) -> Result<Vec<u8>, String> {
    let e = |what: &'static str| {
        move |err: String| format!("issuing the certificate of {common_name}: {what}: {err}")
    };
    let ca = x509_cert::Certificate::from_der(ca_cert_der)
        .map_err(|x| e("CA certificate")(x.to_string()))?;
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
        .build::<_, DerSignature>(signer)
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
