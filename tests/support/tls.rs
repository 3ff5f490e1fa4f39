//! TLS for the tests' own HTTPS clients: a client that trusts exactly one CA file (the reference
//! service's `ca.pem`).

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
