//! Independent signature checks: every signature the tests get is verified with the `openssl` command
//! line against the credential's certificate, never with code shared with the module.

use std::process::Command;

/// How a signature was made, for `openssl_verify`.
#[derive(Debug, Clone, Copy)]
pub enum Scheme {
    /// RSASSA-PKCS1-v1_5 over a hash.
    RsaPkcs1,
    /// RSASSA-PSS with MGF1 using the same hash and this salt length.
    RsaPss { salt_len: usize },
    /// ECDSA; the signature is DER `Ecdsa-Sig-Value`.
    EcdsaDer,
    /// ECDSA; the signature is PKCS#11's fixed-width r||s.
    EcdsaRaw,
}

/// Verifies `signature` over the *hash* `digest` with the certificate's public key, using the `openssl`
/// command line, independently of the code that made it. `hash` is "sha1", "sha256", ...
pub fn openssl_verify(
    cert_der: &[u8],
    hash: &str,
    digest: &[u8],
    signature: &[u8],
    scheme: Scheme,
) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.der");
    std::fs::write(&cert, cert_der).unwrap();
    let pubkey = dir.path().join("pub.pem");
    let out = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&cert)
        .args(["-pubkey", "-noout", "-out"])
        .arg(&pubkey)
        .output()
        .expect("run openssl x509");
    assert!(
        out.status.success(),
        "openssl x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = match scheme {
        Scheme::EcdsaRaw => match ecdsa_raw_to_der(signature) {
            Some(der) => der,
            None => return false,
        },
        _ => signature.to_vec(),
    };
    std::fs::write(dir.path().join("sig"), &sig).unwrap();
    std::fs::write(dir.path().join("digest"), digest).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir.path())
        .args([
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-in", "digest", "-sigfile", "sig",
        ])
        .args(["-pkeyopt", &format!("digest:{hash}")]);
    if let Scheme::RsaPss { salt_len } = scheme {
        cmd.args(["-pkeyopt", "rsa_padding_mode:pss"])
            .args(["-pkeyopt", &format!("rsa_pss_saltlen:{salt_len}")])
            .args(["-pkeyopt", &format!("rsa_mgf1_md:{hash}")]);
    }
    let out = cmd.output().expect("run openssl pkeyutl");
    out.status.success()
}

/// Fixed-width r||s to DER `Ecdsa-Sig-Value`, for openssl; `None` when `raw` cannot be r||s (odd or
/// zero length).
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    use der::Encode;
    #[derive(der::Sequence)]
    struct EcdsaSigValue<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    EcdsaSigValue {
        r: der::asn1::UintRef::new(r).ok()?,
        s: der::asn1::UintRef::new(s).ok()?,
    }
    .to_der()
    .ok()
}
