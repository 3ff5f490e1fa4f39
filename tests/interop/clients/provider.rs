//! OpenSSL 3 through pkcs11-provider (bookworm-backports), the PIN file holding the passcode:
//! `storeutl` lists the token, `dgst -sign` and `cms -sign` sign, PKCS#1 v1.5 and PSS for RSA keys.
//! pkcs11-provider signs hashed RSA mechanisms multi-part (C_SignUpdate/C_SignFinal).

use super::{document, pss_salt, read};
use crate::case::{Case, Ctx, Login};
use crate::env::{Env, Key};
use crate::process::Cmd;
use crate::verify::{self, CmsExpect};
use support::Scheme;

const CLIENT: &str = "openssl+pkcs11-provider";
pub use support::tools::PKCS11_PROVIDER as PROVIDER;

pub fn cases(env: &Env) -> Vec<Case> {
    let mut cases = vec![Case::new(CLIENT, "storeutl", None, Login::Pin, storeutl)];
    for (k, key) in env.keys.iter().enumerate() {
        let paddings: &[bool] = if key.is_rsa { &[false, true] } else { &[false] };
        for cms in [false, true] {
            for &pss in paddings {
                let label = format!(
                    "{}{}",
                    if cms { "cms -sign" } else { "dgst -sign" },
                    if pss { " PSS" } else { "" }
                );
                cases.push(Case::new(
                    CLIENT,
                    label,
                    Some(k),
                    Login::Passcode,
                    move |env, ctx| sign(env, ctx, &env.keys[k], cms, pss),
                ));
            }
        }
    }
    // No pkcs11-module-token-pin: against a login-free token the provider does not log in; against a
    // protected-path token it calls C_Login with a NULL PIN.
    for login in [Login::LoginFree, Login::ProtectedPath] {
        for k in 0..env.keys.len() {
            cases.push(Case::new(
                CLIENT,
                "cms -sign (no PIN configured)",
                Some(k),
                login,
                move |env, ctx| sign(env, ctx, &env.keys[k], true, false),
            ));
        }
    }
    cases
}

/// openssl.cnf activating the default provider and pkcs11-provider over cloudtoken, with the PIN (if
/// any) in a file (0600) as a service account would configure it.
fn openssl(env: &Env, ctx: &Ctx, pin: Option<&str>) -> Cmd {
    openssl_with(ctx, &env.module, pin)
}

/// `openssl` with pkcs11-provider loading `module` (cloudtoken, or pkcs11-spy in front of it).
pub fn openssl_with(ctx: &Ctx, module: &std::path::Path, pin: Option<&str>) -> Cmd {
    let pin_file = pin.map(|pin| {
        let pin_file = ctx.path("pin.txt");
        crate::env::write_private(&pin_file, pin);
        pin_file
    });
    let cnf =
        support::tools::pkcs11_provider_conf(&ctx.path("openssl.cnf"), module, pin_file.as_deref());
    ctx.cmd("openssl").env("OPENSSL_CONF", cnf)
}

fn storeutl(env: &Env, ctx: &Ctx) -> Result<String, String> {
    let key0 = &env.keys[0];
    let out = ctx
        .run(
            openssl(env, ctx, Some(&key0.pin))
                .arg("storeutl")
                .arg(key0.token_uri()),
        )
        .ok()?;
    let text = out.stdout;
    let pkeys = text.lines().filter(|l| l.ends_with(": Pkey")).count();
    // The token shows every credential of the user, also the approval ones that env.keys leaves out.
    let want = env.svc.demo.token_of(&key0.user).credentials.len();
    if pkeys != want {
        return Err(format!(
            "storeutl found {pkeys} private keys, not {want}:\n{text}"
        ));
    }
    for key in &env.keys {
        let pem = std::fs::read_to_string(&key.cert_pem).expect("read certificate");
        if !text.contains(pem.trim()) {
            return Err(format!(
                "storeutl did not return {}'s certificate:\n{text}",
                key.label
            ));
        }
    }
    Ok(format!(
        "every credential's certificate and {pkeys} private keys through the provider's store"
    ))
}

fn sign(env: &Env, ctx: &Ctx, key: &Key, cms: bool, pss: bool) -> Result<String, String> {
    let (message, doc) = document(ctx, "openssl with pkcs11-provider", key);
    let hash = key.hash;
    let salt = pss_salt(key).to_string();
    let out = ctx.path("out");
    let passcode = match ctx.login {
        Login::LoginFree | Login::ProtectedPath => None,
        _ => Some(env.passcode(key)?),
    };
    let passcode = passcode.as_deref();
    let uri = key.uri(None);
    let cmd = if cms {
        let mut c = openssl(env, ctx, passcode)
            .args([
                "cms",
                "-sign",
                "-binary",
                "-outform",
                "DER",
                "-inkey",
                &uri,
                "-md",
                hash.openssl(),
            ])
            .arg("-signer")
            .arg(&key.cert_pem);
        if pss {
            c = c
                .args(["-keyopt", "rsa_padding_mode:pss", "-keyopt"])
                .arg(format!("rsa_pss_saltlen:{salt}"));
        }
        c.arg("-in").arg(&doc).arg("-out").arg(&out)
    } else {
        let mut c = openssl(env, ctx, passcode)
            .arg("dgst")
            .arg(format!("-{}", hash.openssl()))
            .args(["-sign", &uri]);
        if pss {
            c = c
                .args(["-sigopt", "rsa_padding_mode:pss", "-sigopt"])
                .arg(format!("rsa_pss_saltlen:{salt}"));
        }
        c.arg("-out").arg(&out).arg(&doc)
    };
    ctx.run(cmd).ok()?;
    if cms {
        return verify::cms(env, ctx, key, &out, &doc, &CmsExpect { hash, pss });
    }
    let scheme = match (key.is_rsa, pss) {
        (false, _) => Scheme::EcdsaDer,
        (true, false) => Scheme::RsaPkcs1,
        (true, true) => Scheme::RsaPss {
            salt_len: pss_salt(key),
        },
    };
    verify::signature(key, hash, &message, &read(&out)?, scheme)
}
