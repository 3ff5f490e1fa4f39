//! The rustls configuration: which CAs the client trusts and which certificate it presents.
//!
//! Built here rather than by reqwest so that the crypto provider is fixed (ring), the roots are exactly
//! the configured ones, and a bad CA or key file is a configuration error at start-up instead of a
//! handshake failure at the first signature.

use crate::error::{Error, Result};
use crate::types::ClientIdentity;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

pub(crate) fn client_config(
    ca_file: Option<&Path>,
    identity: Option<&ClientIdentity>,
) -> Result<ClientConfig> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    };
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain = read_certs(&id.cert_file)?;
            if chain.is_empty() {
                return Err(Error::Config(format!(
                    "client certificate file {} holds no certificate",
                    id.cert_file.display()
                )));
            }
            let key = read_key(&id.key_file)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("client certificate or key unusable: {e}")))?
        }
    };
    // reqwest is built without HTTP/2; say so in ALPN so a server never picks h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// For a plain-http endpoint, which never handshakes: trusts nothing.
pub(crate) fn unused_client_config() -> Result<ClientConfig> {
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn roots_from_file(path: &Path) -> Result<RootCertStore> {
    let certs = read_certs(path)?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::Config(format!(
            "CA file {} holds no usable certificate",
            path.display()
        )));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore> {
    let loaded = rustls_native_certs::load_native_certs();
    for e in &loaded.errors {
        log::warn!("system CA store: {e}");
    }
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(loaded.certs);
    if roots.is_empty() {
        return Err(Error::Config(
            "no system CA certificates found: set a CA file".into(),
        ));
    }
    Ok(roots)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("{} is not valid PEM: {e}", path.display())))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?,
    );
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| Error::Config(format!("{} is not valid PEM: {e}", path.display())))?
        .ok_or_else(|| Error::Config(format!("{} holds no private key", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, data: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn config_error(r: Result<ClientConfig>) -> String {
        match r {
            Err(Error::Config(m)) => m,
            Err(e) => panic!("expected a configuration error, got {e:?}"),
            Ok(_) => panic!("expected a configuration error, got a TLS configuration"),
        }
    }

    #[test]
    fn ca_file_and_client_identity() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let ca_path = write(dir.path(), "ca.pem", &ca.cert.pem());
        let cfg = client_config(Some(&ca_path), None).unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(!cfg.client_auth_cert_resolver.has_certs());

        let client = rcgen::generate_simple_self_signed(vec!["client.test".into()]).unwrap();
        let id = ClientIdentity {
            cert_file: write(dir.path(), "client.pem", &client.cert.pem()),
            key_file: write(
                dir.path(),
                "client.key",
                &client.signing_key.serialize_pem(),
            ),
        };
        let cfg = client_config(Some(&ca_path), Some(&id)).unwrap();
        assert!(cfg.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn bad_files_are_configuration_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(config_error(client_config(Some(&missing), None)).contains("cannot read"));
        let empty = write(dir.path(), "empty.pem", "no PEM here\n");
        assert!(config_error(client_config(Some(&empty), None)).contains("no usable certificate"));

        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let ca_path = write(dir.path(), "ca.pem", &ca.cert.pem());
        let id = ClientIdentity {
            cert_file: ca_path.clone(),
            key_file: write(dir.path(), "nokey.pem", &ca.cert.pem()),
        };
        assert!(config_error(client_config(Some(&ca_path), Some(&id))).contains("no private key"));
        let id = ClientIdentity {
            cert_file: empty,
            key_file: ca_path.clone(),
        };
        assert!(config_error(client_config(Some(&ca_path), Some(&id))).contains("no certificate"));
    }

    #[test]
    fn key_that_does_not_match_the_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.test".into()]).unwrap();
        let ca_path = write(dir.path(), "ca.pem", &a.cert.pem());
        let id = ClientIdentity {
            cert_file: ca_path.clone(),
            key_file: write(dir.path(), "b.key", &b.signing_key.serialize_pem()),
        };
        let m = config_error(client_config(Some(&ca_path), Some(&id)));
        assert!(m.contains("client certificate or key unusable"), "{m}");
        assert!(!m.contains("PRIVATE KEY"), "{m}");
    }
}
