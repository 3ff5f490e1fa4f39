//! TLS for the tests' own HTTPS clients and servers: a client that trusts exactly one CA file (the
//! reference service's `ca.pem`, or a test CA), and a test CA with a server certificate for 127.0.0.1
//! (rcgen) for the fault proxy, which the module is told to trust through `ca_file`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS client trusting only the CAs in the PEM file `ca`, not following redirects, without proxy.
pub fn https_client(ca: &Path, timeout: Duration) -> reqwest::blocking::Client {
    let pem = std::fs::read(ca).unwrap_or_else(|e| panic!("read {}: {e}", ca.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.expect("PEM certificate"))
            .expect("add a root");
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("build the HTTPS client")
}

/// A CA of the test's own and a server certificate it issued for 127.0.0.1 and localhost.
pub struct TestCa {
    /// The CA certificate, PEM: what the module gets as `ca_file`.
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server names");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} on 127.0.0.1"));
        let cert = params
            .signed_by(&key, &issuer)
            .expect("issue the server certificate");

        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server certificate and key");
        TestCa {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        }
    }
}
