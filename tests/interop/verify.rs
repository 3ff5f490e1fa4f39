//! Independent checks with the `openssl` command line: every signature a client made is verified against
//! the credential's certificate (which setup checked against the demo CA), never by the client that made it.

use crate::case::Ctx;
use crate::env::{Env, Hash, Key};
use crate::process::Cmd;
use std::path::Path;
use support::{openssl_verify, Scheme};

/// A bare signature over `message` (hashed here with `hash`).
pub fn signature(
    key: &Key,
    hash: Hash,
    message: &[u8],
    signature: &[u8],
    scheme: Scheme,
) -> Result<String, String> {
    if signature.is_empty() {
        return Err("the client wrote an empty signature".into());
    }
    let digest = hash.digest(message);
    if openssl_verify(&key.cert_der, hash.openssl(), &digest, signature, scheme) {
        Ok(format!(
            "openssl pkeyutl -verify {} {scheme:?} OK",
            hash.openssl()
        ))
    } else {
        Err(format!(
            "openssl rejects the {} {scheme:?} signature ({} bytes) with {}'s certificate",
            hash.openssl(),
            signature.len(),
            key.label
        ))
    }
}

/// What a CMS signature must show besides verifying.
pub struct CmsExpect {
    pub hash: Hash,
    /// RSASSA-PSS rather than PKCS#1 v1.5 (RSA keys only).
    pub pss: bool,
}

/// A detached CMS/PKCS#7 signature (DER or BER) over `content`: the signature and the chain to the demo
/// CA verify, the signer is the credential's certificate, and the digest and padding are the ones asked.
pub fn cms(
    env: &Env,
    ctx: &Ctx,
    key: &Key,
    p7s: &Path,
    content: &Path,
    expect: &CmsExpect,
) -> Result<String, String> {
    let signer = ctx.path("cms-signer.pem");
    ctx.run(
        Cmd::new("openssl")
            .args([
                "cms", "-verify", "-inform", "DER", "-binary", "-purpose", "any",
            ])
            .arg("-in")
            .arg(p7s)
            .arg("-content")
            .arg(content)
            .arg("-CAfile")
            .arg(env.svc.ca_file())
            .arg("-signer")
            .arg(&signer)
            .args(["-out", "/dev/null"]),
    )
    .ok()?;
    let signer_der = ctx.path("cms-signer.der");
    ctx.run(
        Cmd::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&signer)
            .arg("-out")
            .arg(&signer_der),
    )
    .ok()?;
    if std::fs::read(&signer_der).unwrap_or_default() != key.cert_der {
        return Err(format!("the CMS signer is not {}'s certificate", key.label));
    }
    let printed = ctx
        .run(
            Cmd::new("openssl")
                .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in"])
                .arg(p7s),
        )
        .ok()?
        .stdout;
    let digest_alg = format!("algorithm: {} (", expect.hash.openssl());
    if !printed.contains(&digest_alg) {
        return Err(format!(
            "the CMS digest algorithm is not {}",
            expect.hash.openssl()
        ));
    }
    if key.is_rsa && printed.contains("rsassaPss") != expect.pss {
        return Err(format!(
            "the CMS signature is {}RSASSA-PSS, {} was asked",
            if expect.pss { "not " } else { "" },
            if expect.pss { "PSS" } else { "PKCS#1 v1.5" }
        ));
    }
    Ok(format!(
        "openssl cms -verify OK (demo CA chain, signer = {}, {}{})",
        key.label,
        expect.hash.openssl(),
        if expect.pss { ", PSS" } else { "" }
    ))
}

/// A self-signed certificate made with the token's key (`openssl req -x509`): its signature verifies
/// and its public key is the credential's.
pub fn self_signed(ctx: &Ctx, key: &Key, cert_pem: &Path) -> Result<String, String> {
    ctx.run(
        Cmd::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(cert_pem)
            .arg(cert_pem),
    )
    .ok()?;
    let pubkey = |cert: &Path| -> Result<String, String> {
        Ok(ctx
            .run(
                Cmd::new("openssl")
                    .args(["x509", "-noout", "-pubkey", "-in"])
                    .arg(cert),
            )
            .ok()?
            .stdout)
    };
    if pubkey(cert_pem)? != pubkey(&key.cert_pem)? {
        return Err(format!(
            "the new certificate's public key is not {}'s",
            key.label
        ));
    }
    Ok("openssl verify (self-signed) OK, public key = credential's".into())
}
