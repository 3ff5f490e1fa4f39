//! Debian's Chromium as the tests drive it: where it is, and how it trusts a test server's certificate
//! without a system trust store (`--ignore-certificate-errors-spki-list` takes the base64 SHA-256 of
//! the certificate's SubjectPublicKeyInfo).

use std::path::{Path, PathBuf};

/// The Chromium program (`CHROMIUM_BIN` overrides `/usr/bin/chromium`); a loud failure when missing.
pub fn chromium_path() -> PathBuf {
    let p =
        PathBuf::from(std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        p.exists(),
        "{} missing: install Debian's chromium (`apt-get install chromium`; tests/run.sh does it)",
        p.display()
    );
    p
}

/// base64 SHA-256 of the SubjectPublicKeyInfo of the first certificate in `pem_file`.
pub fn spki_pin(pem_file: &Path) -> String {
    use base64::Engine;
    use der::{Decode, Encode};
    use sha2::Digest;
    let pem =
        std::fs::read(pem_file).unwrap_or_else(|e| panic!("read {}: {e}", pem_file.display()));
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap_or_else(|| panic!("no certificate in {}", pem_file.display()))
        .expect("PEM certificate");
    let cert = x509_cert::Certificate::from_der(&der).expect("an X.509 certificate");
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .expect("SPKI");
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&spki))
}
