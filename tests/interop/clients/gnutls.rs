//! GnuTLS 3.7 (Debian 12) loading the module directly (`--provider`), which calls C_Initialize with
//! CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK (issue #12): `p11tool --test-sign` (GnuTLS
//! signs and checks the signature itself), and certtool's detached PKCS#7 signature and self-signed
//! certificate, both verified with openssl. The PIN goes in GNUTLS_PIN, as in a script.

use super::{document, read};
use crate::case::{Case, Ctx, Login};
use crate::env::{Env, Key};
use crate::verify::{self, CmsExpect};

const CLIENT: &str = "gnutls";

#[derive(Clone, Copy)]
enum Op {
    TestSign,
    P7DetachedSign,
    SelfSigned,
}

pub fn cases(env: &Env) -> Vec<Case> {
    let mut cases = Vec::new();
    for k in 0..env.keys.len() {
        for (op, name) in [
            (Op::TestSign, "p11tool --test-sign"),
            (Op::P7DetachedSign, "certtool --p7-detached-sign"),
            (Op::SelfSigned, "certtool --generate-self-signed"),
        ] {
            cases.push(Case::new(
                CLIENT,
                name,
                Some(k),
                Login::Passcode,
                move |env, ctx| run(env, ctx, &env.keys[k], op),
            ));
        }
    }
    // No GNUTLS_PIN: against a login-free token GnuTLS signs without logging in.
    for k in 0..env.keys.len() {
        cases.push(Case::new(
            CLIENT,
            "certtool --p7-detached-sign (no PIN)",
            Some(k),
            Login::LoginFree,
            move |env, ctx| run(env, ctx, &env.keys[k], Op::P7DetachedSign),
        ));
    }
    cases
}

fn run(env: &Env, ctx: &Ctx, key: &Key, op: Op) -> Result<String, String> {
    let program = match op {
        Op::TestSign => "p11tool",
        Op::P7DetachedSign | Op::SelfSigned => "certtool",
    };
    let mut cmd = ctx
        .cmd(program)
        .arg("--provider")
        .arg(&env.module)
        .env_remove("GNUTLS_PIN");
    if ctx.login == Login::Passcode {
        cmd = cmd.env("GNUTLS_PIN", env.passcode(key)?);
    }
    let uri = key.uri(None);
    let hash = key.hash.upper();
    match op {
        Op::TestSign => {
            let out = ctx
                .run(cmd.args(["--login", "--batch", "--test-sign", &uri]))
                .ok()?;
            // GnuTLS checks the signature against the key's parameters and against the public key it
            // finds on the token: both must pass.
            let text = out.text();
            for check in [
                "Verifying against private key parameters... ok",
                "Verifying against public key in the token... ok",
            ] {
                if !text.contains(check) {
                    return Err(format!(
                        "p11tool did not report {check:?}\n{}",
                        out.describe()
                    ));
                }
            }
            Ok("p11tool signed and verified (key parameters, token public key)".into())
        }
        Op::P7DetachedSign => {
            let (_, doc) = document(ctx, "GnuTLS certtool", key);
            let out = ctx.path("doc.p7s");
            ctx.run(
                cmd.args(["--p7-detached-sign", "--outder", "--hash", hash])
                    .arg("--load-privkey")
                    .arg(&uri)
                    .arg("--load-certificate")
                    .arg(&key.cert_pem)
                    .arg("--infile")
                    .arg(&doc)
                    .arg("--outfile")
                    .arg(&out),
            )
            .ok()?;
            read(&out)?;
            verify::cms(
                env,
                ctx,
                key,
                &out,
                &doc,
                &CmsExpect {
                    hash: key.hash,
                    pss: false,
                },
            )
        }
        Op::SelfSigned => {
            let template = ctx.write(
                "template.cfg",
                format!(
                    "cn = \"GnuTLS self-signed with {}\"\nexpiration_days = 1\nsigning_key\n",
                    key.label
                )
                .as_bytes(),
            );
            let cert = ctx.path("self-signed.pem");
            ctx.run(
                cmd.args(["--generate-self-signed", "--hash", hash])
                    .arg("--load-privkey")
                    .arg(&uri)
                    .arg("--template")
                    .arg(&template)
                    .arg("--outfile")
                    .arg(&cert),
            )
            .ok()?;
            verify::self_signed(ctx, key, &cert)
        }
    }
}
