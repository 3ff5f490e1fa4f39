//! The emulator's PKI, made with rcgen and signed inside the HSM: a root CA and an issuing CA (both
//! P-256 keys in the token, never outside it), the HTTPS server certificate and the account's TLS
//! client certificate (keys in files: they are handed out, as GlobalSign hands a customer its mTLS key),
//! and the short-lived certificates of the identities (RSA-2048 keys generated in the token).
//!
//! Calls hsm-store for every CA signature; x509-cert reads certificates back.

use der::{Decode, Encode};
use hsm_store::ca::CaSigner;
use hsm_store::{Curve, KeySpec, Store};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

pub const ROOT_KEY: &str = "root-ca";
pub const ISSUING_KEY: &str = "issuing-ca";
/// The organisation of every name the emulator makes.
pub const ORGANIZATION: &str = "cloudtoken demo";
/// Identity certificates start this long before they are issued, for clocks a little behind ours.
const NOT_BEFORE_SLACK: Duration = Duration::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("certificate decoding: {0}")]
    Der(#[from] der::Error),
    #[error("HSM: {0}")]
    Hsm(#[from] hsm_store::Error),
}

fn subject_public_key(spki_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)?;
    Ok(spki.subject_public_key.raw_bytes().to_vec())
}

/// A public key to certify whose private half is elsewhere (an identity's key in the HSM).
struct Subject {
    alg: &'static SignatureAlgorithm,
    bits: Vec<u8>,
}

impl PublicKeyData for Subject {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    crate::random::fill(&mut b);
    // Positive and non-zero as RFC 5280 §4.1.2.2 asks.
    b[0] = (b[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&b)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "DE");
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, common_name);
    dn
}

/// The parameters of a CA, the same at `init` (which signs its certificate) and at `serve` (which
/// signs with it): name, usages and key identifier method.
fn ca_params(common_name: &str, path_len: u8) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn root_params() -> CertificateParams {
    ca_params("cloudtoken demo DSS root CA", 1)
}

fn issuing_params() -> CertificateParams {
    ca_params("cloudtoken demo DSS issuing CA", 0)
}

fn validity(p: &mut CertificateParams, from: OffsetDateTime, to: OffsetDateTime) {
    p.not_before = from;
    p.not_after = to;
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = true;
}

/// What `init` writes: the CA certificates, and the TLS certificates with their keys.
pub struct Initial {
    pub root_pem: String,
    pub issuing_pem: String,
    pub tls_chain_pem: String,
    pub tls_key_pem: Zeroizing<String>,
    pub client_chain_pem: String,
    pub client_key_pem: Zeroizing<String>,
    /// Upper-case hex, without leading zeros.
    pub client_serial: String,
}

/// `init`: the two CA keys generated in the HSM, their certificates, and the two TLS certificates.
pub fn create(store: &Arc<Store>, now: OffsetDateTime) -> Result<Initial, PkiError> {
    let root_key = CaSigner::new(
        store.clone(),
        store.generate(ROOT_KEY, KeySpec::Ec(Curve::P256))?,
    )?;
    let mut rp = root_params();
    validity(
        &mut rp,
        now - Duration::hours(1),
        now + Duration::days(3650),
    );
    rp.use_authority_key_identifier_extension = false;
    let root_cert = rp.self_signed(&root_key)?;
    let root = Issuer::new(root_params(), root_key);

    let issuing_key = CaSigner::new(
        store.clone(),
        store.generate(ISSUING_KEY, KeySpec::Ec(Curve::P256))?,
    )?;
    let mut ip = issuing_params();
    validity(
        &mut ip,
        now - Duration::hours(1),
        now + Duration::days(1825),
    );
    let issuing_cert = ip.signed_by(&issuing_key, &root)?;

    let sans = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::DnsName("localhost".try_into()?),
    ];
    let (tls_cert, tls_key) = tls_leaf(
        "cloudtoken demo DSS API",
        sans,
        ExtendedKeyUsagePurpose::ServerAuth,
        &root,
        now,
    )?;
    let (client_cert, client_key) = tls_leaf(
        "cloudtoken demo DSS account",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
        &root,
        now,
    )?;
    let client_serial = serial_hex(client_cert.der())?;

    Ok(Initial {
        root_pem: root_cert.pem(),
        issuing_pem: issuing_cert.pem(),
        tls_chain_pem: format!("{}{}", tls_cert.pem(), root_cert.pem()),
        tls_key_pem: Zeroizing::new(tls_key.serialize_pem()),
        client_chain_pem: format!("{}{}", client_cert.pem(), root_cert.pem()),
        client_key_pem: Zeroizing::new(client_key.serialize_pem()),
        client_serial,
    })
}

/// A TLS certificate (server or client, as `usage` says) with a fresh P-256 key, for two years.
fn tls_leaf(
    common_name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    root: &Issuer<'_, CaSigner>,
    now: OffsetDateTime,
) -> Result<(rcgen::Certificate, KeyPair), PkiError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::default();
    p.distinguished_name = name(common_name);
    validity(&mut p, now - Duration::hours(1), now + Duration::days(730));
    p.subject_alt_names = sans;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![usage];
    Ok((p.signed_by(&key, root)?, key))
}

/// A certificate's serial number as upper-case hex without leading zeros (how the API's
/// `X-SSL-Client-Serial` would carry it).
pub fn serial_hex(der: &[u8]) -> Result<String, PkiError> {
    let cert = x509_cert::Certificate::from_der(der)?;
    let bytes = cert.tbs_certificate().serial_number().as_bytes();
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    Ok(base16ct::upper::encode_string(&trimmed))
}

/// The subject of an identity's certificate, from the fields the validation policy allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityName {
    pub common_name: String,
    pub organization: Option<String>,
    pub organization_unit: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
}

/// The issuing CA at `serve`: its key in the HSM.
pub struct IdentityIssuer {
    issuer: Issuer<'static, CaSigner>,
}

impl IdentityIssuer {
    pub fn open(store: &Arc<Store>) -> Result<IdentityIssuer, PkiError> {
        let key = CaSigner::new(store.clone(), store.key(ISSUING_KEY)?)?;
        Ok(IdentityIssuer {
            issuer: Issuer::new(issuing_params(), key),
        })
    }

    /// A certificate for an identity's RSA key (`spki_der`) valid from now for `lifetime`: key usage
    /// digitalSignature and nonRepudiation, as for document signatures; no extended key usage, so
    /// that every signing application accepts it.
    pub fn issue(
        &self,
        subject: &IdentityName,
        spki_der: &[u8],
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<Vec<u8>, PkiError> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(c) = &subject.country {
            dn.push(DnType::CountryName, c.as_str());
        }
        if let Some(o) = &subject.organization {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        if let Some(ou) = &subject.organization_unit {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        dn.push(DnType::CommonName, subject.common_name.as_str());
        p.distinguished_name = dn;
        if let Some(e) = &subject.email {
            p.subject_alt_names = vec![SanType::Rfc822Name(e.as_str().try_into()?)];
        }
        validity(&mut p, now - NOT_BEFORE_SLACK, now + lifetime);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        let key = Subject {
            alg: &rcgen::PKCS_RSA_SHA256,
            bits: subject_public_key(spki_der)?,
        };
        let der = p.signed_by(&key, &self.issuer)?.der().to_vec();
        let cert = x509_cert::Certificate::from_der(&der)?;
        // rcgen re-encodes the key: the certificate must name exactly the key the HSM holds.
        if cert.tbs_certificate().subject_public_key_info().to_der()? != spki_der {
            return Err(PkiError::Rcgen(rcgen::Error::CouldNotParseKeyPair));
        }
        Ok(der)
    }
}

/// PEM of a DER certificate.
pub fn pem(der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), config)
}
