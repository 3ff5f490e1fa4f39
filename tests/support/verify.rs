//! Independent signature checks: every signature the tests get is verified with the `openssl` command
//! line against the credential's certificate, never with code shared with the module; GOST R 34.10-2012
//! and Streebog with OpenSSL's GOST engine (Debian: libengine-gost-openssl).

use std::path::Path;
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

/// `openssl` with Debian's GOST engine (libengine-gost-openssl) loaded by name, in `dir`.
fn openssl_gost(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .current_dir(dir)
        .args([args[0], "-engine", "gost"])
        .args(&args[1..])
        .output()
        .expect("run openssl")
}

/// GOST R 34.11-2012 (Streebog, `bits` 256 or 512) of `data`, computed by OpenSSL's GOST engine.
pub fn openssl_streebog(bits: u32, data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("data"), data).unwrap();
    let md = format!("-md_gost12_{bits}");
    let out = openssl_gost(
        dir.path(),
        &["dgst", &md, "-binary", "-out", "hash", "data"],
    );
    assert!(
        out.status.success(),
        "openssl dgst {md} (GOST engine: apt-get install libengine-gost-openssl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.path().join("hash")).unwrap()
}

/// Whether `signature` (PKCS#11 order, s || r) of the Streebog hash `digest` verifies with the GOST
/// R 34.10-2012 key of the certificate, by OpenSSL's GOST engine.
pub fn openssl_verify_gost(cert_der: &[u8], digest: &[u8], signature: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("cert.der"), cert_der).unwrap();
    std::fs::write(dir.path().join("digest"), digest).unwrap();
    std::fs::write(dir.path().join("sig"), signature).unwrap();
    let out = openssl_gost(
        dir.path(),
        &[
            "x509", "-inform", "DER", "-in", "cert.der", "-pubkey", "-noout", "-out", "pub.pem",
        ],
    );
    assert!(
        out.status.success(),
        "openssl x509 -engine gost: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = [
        "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-in", "digest", "-sigfile", "sig",
    ];
    openssl_gost(dir.path(), &args).status.success()
}

/// Checks with `openssl verify` that the certificate was issued by the CA of `ca_pem` (the GOST engine
/// reads a GOST subject key).
pub fn openssl_chains_to(ca_pem: &Path, cert_der: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let der = dir.path().join("cert.der");
    std::fs::write(&der, cert_der).unwrap();
    let out = openssl_gost(
        dir.path(),
        &[
            "x509", "-inform", "DER", "-in", "cert.der", "-out", "cert.pem",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ca = ca_pem.display().to_string();
    let out = openssl_gost(dir.path(), &["verify", "-CAfile", &ca, "cert.pem"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && said.trim().ends_with("OK") {
        Ok(())
    } else {
        Err(format!("{said}{}", String::from_utf8_lossy(&out.stderr)))
    }
}
