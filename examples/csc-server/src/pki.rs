//! The demo PKI: a CA whose key is in the HSM, the TLS server certificate, and one end-entity
//! certificate per credential, all made with rcgen (the CA signs through rcgen's remote-key
//! interface); and the certificate facts `credentials/info` reports, read back with x509-cert.

use crate::model::{KeyKind, Usage, COUNTRY, ORGANIZATION};
use der::{Decode, Encode};
use hsm_store::{Signing, Store};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
    SigningKey,
};
use sha2::Digest;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("certificate decoding: {0}")]
    Der(#[from] der::Error),
    #[error("the issued certificate does not carry the credential's public key")]
    KeyMismatch,
    #[error("the CA key is not a P-256 key")]
    CaKey,
}

pub struct Ca {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    issuer: Issuer<'static, HsmKey>,
}

/// The CA's P-256 key in the HSM, as rcgen's signer: rcgen hands over the TBSCertificate, the HSM
/// signs its SHA-256 (CKM_ECDSA, DER signature as X.509 wants it).
struct HsmKey {
    store: Arc<Store>,
    key: hsm_store::Key,
    /// The public key's point (the SubjectPublicKeyInfo's BIT STRING).
    point: Vec<u8>,
}

impl PublicKeyData for HsmKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for HsmKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let hash = sha2::Sha256::digest(msg);
        self.store
            .sign(&self.key, Signing::Ecdsa, &hash)
            .map_err(|e| {
                log::error!("the CA key in the HSM: {e}");
                rcgen::Error::RemoteKeyError
            })
    }
}

pub struct IssuedKey {
    pub cert_der: Vec<u8>,
    pub key_pkcs8: Zeroizing<Vec<u8>>,
}

fn random_serial() -> SerialNumber {
    let mut b = *crate::random::bytes::<16>();
    // Positive and non-zero as RFC 5280 §4.1.2.2 asks.
    b[0] = (b[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&b)
}

fn name(common_name: &str, unit: Option<&str>) -> DistinguishedName {
    // DER order C, O, [OU,] CN, which RFC 4514 shows as "CN=...,[OU=...,]O=...,C=...".
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, COUNTRY);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    if let Some(unit) = unit {
        dn.push(DnType::OrganizationalUnitName, unit);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

fn params(common_name: &str, now: OffsetDateTime, valid_days: i64) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(common_name, None);
    // An hour of slack for clocks a little behind ours.
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(valid_days);
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = true;
    p
}

impl Ca {
    /// A self-signed CA certificate for `key`, a P-256 key of `store`.
    pub fn create(
        store: Arc<Store>,
        key: hsm_store::Key,
        now: OffsetDateTime,
    ) -> Result<Ca, PkiError> {
        if key.spec() != crate::keys::spec(KeyKind::P256) {
            return Err(PkiError::CaKey);
        }
        let point = spki::SubjectPublicKeyInfoRef::from_der(key.spki_der())?
            .subject_public_key
            .raw_bytes()
            .to_vec();
        let key = HsmKey { store, key, point };
        let mut p = params("cloudtoken demo CA", now, 3650);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.use_authority_key_identifier_extension = false;
        let cert = p.self_signed(&key)?;
        Ok(Ca {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(p, key),
        })
    }

    /// The HTTPS server certificate for 127.0.0.1 and localhost, with a fresh P-256 key.
    pub fn issue_tls(&self, now: OffsetDateTime) -> Result<IssuedKey, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut p = params("cloudtoken demo CSC service", now, 730);
        p.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into()?),
        ];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok(IssuedKey {
            cert_der: cert.der().to_vec(),
            key_pkcs8: Zeroizing::new(key.serialize_der()),
        })
    }

    /// The certificate of a credential key (given as SubjectPublicKeyInfo DER): for document
    /// signatures key usage digitalSignature + nonRepudiation; for TLS client login digitalSignature
    /// and the clientAuth extended key usage.
    pub fn issue_credential(
        &self,
        common_name: &str,
        kind: KeyKind,
        usage: Usage,
        spki_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let subject_key = SubjectKey::from_spki(kind, spki_der)?;
        let mut p = params(common_name, now, 3 * 365);
        p.is_ca = IsCa::ExplicitNoCa;
        match usage {
            Usage::Signing => {
                p.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::ContentCommitment,
                ];
            }
            Usage::Authentication => {
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                // A person's login certificates differ in their subject, as browsers' certificate
                // selection rules (Chromium's AutoSelectCertificateForUrls) need: by the key.
                p.distinguished_name =
                    name(common_name, Some(&format!("TLS login {}", kind.name())));
            }
        }
        let der = p.signed_by(&subject_key, &self.issuer)?.der().to_vec();
        // rcgen re-encodes the key; make sure the certificate names exactly the key we hold.
        let cert = x509_cert::Certificate::from_der(&der)?;
        if cert.tbs_certificate().subject_public_key_info().to_der()? != spki_der {
            return Err(PkiError::KeyMismatch);
        }
        Ok(der)
    }
}

/// A public key rcgen can put into a certificate without holding the private key.
struct SubjectKey {
    alg: &'static SignatureAlgorithm,
    bits: Vec<u8>,
}

impl SubjectKey {
    fn from_spki(kind: KeyKind, spki_der: &[u8]) -> Result<SubjectKey, PkiError> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)?;
        // rcgen writes the key's AlgorithmIdentifier from these (rsaEncryption / ecPublicKey + curve).
        let alg = match kind {
            KeyKind::Rsa2048 | KeyKind::Rsa3072 => &rcgen::PKCS_RSA_SHA256,
            KeyKind::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        };
        Ok(SubjectKey {
            alg,
            bits: spki.subject_public_key.raw_bytes().to_vec(),
        })
    }
}

impl PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// What `credentials/info` says about a certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// RFC 4514.
    pub subject_dn: String,
    pub issuer_dn: String,
    /// Upper-case hex.
    pub serial_hex: String,
    /// GeneralizedTime form, "YYYYMMDDHHMMSSZ".
    pub valid_from: String,
    pub valid_to: String,
    /// The certified public key (DER SubjectPublicKeyInfo).
    pub spki_der: Vec<u8>,
}

impl CertInfo {
    pub fn parse(der: &[u8]) -> Result<CertInfo, PkiError> {
        let cert = x509_cert::Certificate::from_der(der)?;
        let tbs = cert.tbs_certificate();
        let serial = tbs.serial_number().as_bytes();
        let trimmed = match serial.iter().position(|&b| b != 0) {
            Some(i) => &serial[i..],
            None => &serial[serial.len().saturating_sub(1)..],
        };
        let serial_hex = trimmed.iter().map(|b| format!("{b:02X}")).collect();
        Ok(CertInfo {
            subject_dn: tbs.subject().to_string(),
            issuer_dn: tbs.issuer().to_string(),
            serial_hex,
            valid_from: generalized_time(tbs.validity().not_before.to_unix_duration()),
            valid_to: generalized_time(tbs.validity().not_after.to_unix_duration()),
            spki_der: tbs.subject_public_key_info().to_der()?,
        })
    }
}

fn generalized_time(since_epoch: std::time::Duration) -> String {
    let t = OffsetDateTime::from_unix_timestamp(since_epoch.as_secs() as i64)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    t.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage};

    /// Whether the P-256 key of the certificate `issuer_der` made `cert`'s signature.
    fn signed_by(cert: &x509_cert::Certificate, issuer_der: &[u8]) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        use p256::pkcs8::DecodePublicKey;
        let issuer = x509_cert::Certificate::from_der(issuer_der).unwrap();
        let spki = issuer
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap();
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
        let tbs = cert.tbs_certificate().to_der().unwrap();
        let Some(sig) = cert.signature().as_bytes() else {
            return false;
        };
        let Ok(sig) = p256::ecdsa::DerSignature::try_from(sig) else {
            return false;
        };
        key.verify_prehash(&sha2::Sha256::digest(&tbs), &sig)
            .is_ok()
    }

    #[test]
    fn ca_issues_signing_authentication_and_tls_certificates() {
        let t = hsm_store::testing::scratch_token().unwrap();
        let store = Arc::new(Store::open(t.module, &t.label, &t.pin, 2).unwrap());
        let now = OffsetDateTime::now_utc();
        let ca_key = crate::keys::generate(&store, "ca", KeyKind::P256).unwrap();
        let ca = Ca::create(store.clone(), ca_key, now).unwrap();
        let ca_info = CertInfo::parse(&ca.cert_der).unwrap();
        let ca_cert = x509_cert::Certificate::from_der(&ca.cert_der).unwrap();
        assert!(signed_by(&ca_cert, &ca.cert_der));
        assert_eq!(
            ca_info.subject_dn,
            "CN=cloudtoken demo CA,O=cloudtoken demo,C=DE"
        );
        assert_eq!(ca_info.subject_dn, ca_info.issuer_dn);
        let rsa_ca = crate::keys::generate(&store, "rsa ca", KeyKind::Rsa2048).unwrap();
        assert!(matches!(
            Ca::create(store.clone(), rsa_ca, now),
            Err(PkiError::CaKey)
        ));

        for (kind, usage) in [
            (KeyKind::Rsa2048, Usage::Signing),
            (KeyKind::P256, Usage::Signing),
            (KeyKind::P384, Usage::Signing),
            (KeyKind::P256, Usage::Authentication),
            (KeyKind::Rsa2048, Usage::Authentication),
        ] {
            let key = crate::keys::generate(&store, &format!("{kind} {usage:?}"), kind).unwrap();
            let der = ca
                .issue_credential("Alice Example", kind, usage, key.spki_der(), now)
                .unwrap();
            let info = CertInfo::parse(&der).unwrap();
            let subject = match usage {
                Usage::Signing => "CN=Alice Example,O=cloudtoken demo,C=DE".to_owned(),
                Usage::Authentication => format!(
                    "CN=Alice Example,OU=TLS login {},O=cloudtoken demo,C=DE",
                    kind.name()
                ),
            };
            assert_eq!(info.subject_dn, subject);
            assert_eq!(info.issuer_dn, ca_info.subject_dn);
            assert_eq!(info.valid_from.len(), 15);
            assert!(info.valid_from < info.valid_to);
            assert!(!info.serial_hex.is_empty() && info.serial_hex.len() <= 32);
            let cert = x509_cert::Certificate::from_der(&der).unwrap();
            assert!(signed_by(&cert, &ca.cert_der), "{kind} {usage:?}");
            let tbs = cert.tbs_certificate();
            let ku = tbs
                .get_extension::<KeyUsage>()
                .unwrap()
                .expect("key usage present")
                .1;
            assert!(ku.digital_signature());
            assert!(!ku.key_cert_sign());
            let eku = tbs.get_extension::<ExtendedKeyUsage>().unwrap();
            match usage {
                Usage::Signing => {
                    assert!(ku.non_repudiation());
                    assert!(eku.is_none());
                }
                Usage::Authentication => {
                    assert!(!ku.non_repudiation());
                    let eku = eku.expect("extended key usage present").1;
                    assert_eq!(eku.0, [const_oid::db::rfc5280::ID_KP_CLIENT_AUTH]);
                }
            }
        }
        let tls = ca.issue_tls(now).unwrap();
        assert!(CertInfo::parse(&tls.cert_der).is_ok());
        let tls_cert = x509_cert::Certificate::from_der(&tls.cert_der).unwrap();
        assert!(signed_by(&tls_cert, &ca.cert_der));
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
