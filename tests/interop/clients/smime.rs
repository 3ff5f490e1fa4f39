//! Signed e-mail through the token (issue #12): an S/MIME message a mail client would show as signed.
//! OpenSSL with pkcs11-provider writes a clear-signed multipart/signed message (`openssl cms -sign`);
//! NSS's cmsutil signs a MIME entity into an opaque application/pkcs7-mime message. Each is checked as a
//! recipient's mail program would check it: `openssl smime -verify` against the demo CA with the S/MIME
//! signing purpose, the signer being the credential's certificate, the content coming back unchanged.

use super::{nss, provider};
use crate::case::{Case, Ctx, Login};
use crate::env::{Env, Key};
use crate::process::Cmd;
use base64::Engine;

#[derive(Clone, Copy)]
enum Signer {
    /// `openssl cms -sign` through pkcs11-provider: multipart/signed.
    OpensslProvider,
    /// NSS `cmsutil -S` with the content inside: application/pkcs7-mime.
    Nss,
}

pub fn cases(env: &Env) -> Vec<Case> {
    let mut cases = Vec::new();
    for k in 0..env.keys.len() {
        cases.push(Case::new(
            "s/mime",
            "openssl cms -sign (provider), multipart/signed",
            Some(k),
            Login::Passcode,
            move |env, ctx| run(env, ctx, &env.keys[k], Signer::OpensslProvider),
        ));
        cases.push(Case::new(
            "s/mime",
            "nss cmsutil -S, application/pkcs7-mime",
            Some(k),
            Login::Passcode,
            move |env, ctx| run(env, ctx, &env.keys[k], Signer::Nss),
        ));
    }
    cases
}

/// The MIME entity that is signed: what the recipient reads.
fn body(key: &Key) -> String {
    format!(
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob,\r\n\r\nthe contract is attached \
         to the other mail. Signed with {} in the cloud.\r\n\r\nAlice\r\n",
        key.label
    )
}

fn run(env: &Env, ctx: &Ctx, key: &Key, signer: Signer) -> Result<String, String> {
    let entity = body(key);
    let message = ctx.path("message.eml");
    let headers =
        "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: Signed with cloudtoken\r\n";
    match signer {
        Signer::OpensslProvider => {
            let content = ctx.write("entity.txt", entity.as_bytes());
            let passcode = env.passcode(key)?;
            let signed = ctx.path("signed.eml");
            ctx.run(
                provider::openssl_with(ctx, &env.module, Some(&passcode))
                    .args(["cms", "-sign", "-binary", "-md", key.hash.openssl()])
                    .args(["-inkey", &key.uri(None)])
                    .arg("-signer")
                    .arg(&key.cert_pem)
                    .arg("-in")
                    .arg(&content)
                    .arg("-out")
                    .arg(&signed),
            )
            .ok()?;
            let mime = std::fs::read(&signed).map_err(|e| format!("no signed message: {e}"))?;
            if !String::from_utf8_lossy(&mime).contains("multipart/signed") {
                return Err("openssl cms -sign did not write multipart/signed".into());
            }
            let mut full = headers.as_bytes().to_vec();
            full.extend_from_slice(&mime);
            std::fs::write(&message, full).expect("write the message");
        }
        Signer::Nss => {
            let db = nss::database(env, ctx, &ctx.config)?;
            let content = ctx.write("entity.txt", entity.as_bytes());
            let p7m = ctx.path("smime.p7m");
            let passcode = env.passcode(key)?;
            ctx.run(
                ctx.cmd("cmsutil")
                    .args([
                        "-S",
                        "-d",
                        &db,
                        "-N",
                        &key.nickname(),
                        "-H",
                        key.hash.upper(),
                    ])
                    .args(["-G", "-Y", "NONE", "-f"])
                    .arg(nss::password_file(ctx, &passcode))
                    .arg("-i")
                    .arg(&content)
                    .arg("-o")
                    .arg(&p7m),
            )
            .ok()?;
            let der = std::fs::read(&p7m).map_err(|e| format!("cmsutil wrote nothing: {e}"))?;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let mut text = format!(
                "{headers}MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; \
                 name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; \
                 filename=\"smime.p7m\"\r\n\r\n"
            );
            for line in b64.as_bytes().chunks(76) {
                text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
                text.push_str("\r\n");
            }
            std::fs::write(&message, text).expect("write the message");
        }
    }
    verify(env, ctx, key, &message, &entity)
}

/// `openssl smime -verify` as a recipient: the demo CA, the default S/MIME signing purpose.
fn verify(
    env: &Env,
    ctx: &Ctx,
    key: &Key,
    message: &std::path::Path,
    entity: &str,
) -> Result<String, String> {
    let signer = ctx.path("smime-signer.pem");
    let content = ctx.path("verified.txt");
    let out = ctx
        .run(
            Cmd::new("openssl")
                .args(["smime", "-verify", "-binary", "-in"])
                .arg(message)
                .arg("-CAfile")
                .arg(env.svc.ca_file())
                .arg("-signer")
                .arg(&signer)
                .arg("-out")
                .arg(&content),
        )
        .ok()?;
    if !out.text().contains("Verification successful") {
        return Err(format!(
            "openssl smime -verify did not report success\n{}",
            out.describe()
        ));
    }
    let same_signer = |a: &std::path::Path, b: &std::path::Path| -> Result<bool, String> {
        // openssl x509 writes the certificate alone, PEM-normalized.
        let pem = |p: &std::path::Path| -> Result<String, String> {
            Ok(ctx
                .run(Cmd::new("openssl").args(["x509", "-in"]).arg(p))
                .ok()?
                .stdout)
        };
        Ok(pem(a)? == pem(b)?)
    };
    if !same_signer(&signer, &key.cert_pem)? {
        return Err(format!("the message's signer is not {}", key.label));
    }
    let got = std::fs::read_to_string(&content).unwrap_or_default();
    if got.replace("\r\n", "\n") != entity.replace("\r\n", "\n") {
        return Err(format!(
            "the verified content differs from what was signed:\n{got}"
        ));
    }
    Ok(format!(
        "openssl smime -verify OK (demo CA, S/MIME signing purpose, signer = {})",
        key.label
    ))
}
