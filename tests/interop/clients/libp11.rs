//! OpenSSL 3 through the libp11 `pkcs11` engine, the key named by a `pkcs11:` URI carrying the passcode:
//! `dgst -sign`, `pkeyutl -sign`, `cms -sign` and `req -x509`, PKCS#1 v1.5 and PSS for RSA keys.

use super::{document, pss_salt, read};
use crate::case::{Case, Ctx, Login};
use crate::env::{Env, Key};
use crate::process::Cmd;
use crate::verify::{self, CmsExpect};
use support::Scheme;

const CLIENT: &str = "openssl+libp11";
pub const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

#[derive(Clone, Copy)]
enum Op {
    Dgst,
    Pkeyutl,
    Cms,
    Req,
}

pub fn cases(env: &Env) -> Vec<Case> {
    let mut cases = Vec::new();
    for (k, key) in env.keys.iter().enumerate() {
        let paddings: &[bool] = if key.is_rsa { &[false, true] } else { &[false] };
        for (op, name) in [
            (Op::Dgst, "dgst -sign"),
            (Op::Pkeyutl, "pkeyutl -sign"),
            (Op::Cms, "cms -sign"),
        ] {
            for &pss in paddings {
                let label = format!("{name}{}", if pss { " PSS" } else { "" });
                cases.push(Case::new(
                    CLIENT,
                    label,
                    Some(k),
                    Login::Passcode,
                    move |env, ctx| run(env, ctx, &env.keys[k], op, pss),
                ));
            }
        }
        cases.push(Case::new(
            CLIENT,
            "req -x509",
            Some(k),
            Login::Passcode,
            move |env, ctx| run(env, ctx, &env.keys[k], Op::Req, false),
        ));
    }
    // A URI without pin-value: against a login-free token the engine does not log in; against a
    // protected-path token it calls C_Login with a NULL PIN.
    for login in [Login::LoginFree, Login::ProtectedPath] {
        for k in 0..env.keys.len() {
            cases.push(Case::new(
                CLIENT,
                "dgst -sign (URI without PIN)",
                Some(k),
                login,
                move |env, ctx| run(env, ctx, &env.keys[k], Op::Dgst, false),
            ));
        }
    }
    cases
}

/// An openssl.cnf that loads the engine with `module` (cloudtoken, or p11-kit's proxy) as its module.
pub fn openssl_cnf(ctx: &Ctx, module: &std::path::Path) -> std::path::PathBuf {
    ctx.write(
        "openssl.cnf",
        format!(
            "openssl_conf = openssl_init\n\
             [openssl_init]\nengines = engine_section\n\
             [engine_section]\npkcs11 = pkcs11_section\n\
             [pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {ENGINE}\nMODULE_PATH = {}\ninit = 0\n",
            module.display()
        )
        .as_bytes(),
    )
}

fn openssl(env: &Env, ctx: &Ctx) -> Cmd {
    ctx.cmd("openssl")
        .env("OPENSSL_CONF", openssl_cnf(ctx, &env.module))
}

/// Whether the row's PIN and code come from the module's prompt, not from the URI.
fn prompted(ctx: &Ctx) -> bool {
    matches!(ctx.login, Login::LoginFree | Login::ProtectedPath)
}

fn run(env: &Env, ctx: &Ctx, key: &Key, op: Op, pss: bool) -> Result<String, String> {
    let (message, doc) = document(ctx, "openssl with the libp11 engine", key);
    let hash = key.hash;
    let salt = pss_salt(key).to_string();
    let out = ctx.path("out");
    let uri = if prompted(ctx) {
        key.uri(None)
    } else {
        key.uri(Some(&env.passcode(key)?))
    };
    let engine = ["-engine", "pkcs11"];
    let cmd = match op {
        Op::Dgst => {
            let mut c = openssl(env, ctx)
                .arg("dgst")
                .arg(format!("-{}", hash.openssl()))
                .args(engine)
                .args(["-keyform", "engine", "-sign", &uri]);
            if pss {
                c = c
                    .args(["-sigopt", "rsa_padding_mode:pss", "-sigopt"])
                    .arg(format!("rsa_pss_saltlen:{salt}"));
            }
            c.arg("-out").arg(&out).arg(&doc)
        }
        Op::Pkeyutl => {
            let digest = ctx.write("digest.bin", &hash.digest(&message));
            let mut c = openssl(env, ctx)
                .arg("pkeyutl")
                .args(engine)
                .args(["-keyform", "engine", "-sign", "-inkey", &uri])
                .arg("-pkeyopt")
                .arg(format!("digest:{}", hash.openssl()));
            if pss {
                c = c
                    .args(["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt"])
                    .arg(format!("rsa_pss_saltlen:{salt}"));
            }
            c.arg("-in").arg(&digest).arg("-out").arg(&out)
        }
        Op::Cms => {
            let mut c = openssl(env, ctx)
                .args(["cms", "-sign", "-binary", "-outform", "DER"])
                .args(engine)
                .args(["-keyform", "engine", "-inkey", &uri, "-md", hash.openssl()])
                .arg("-signer")
                .arg(&key.cert_pem);
            if pss {
                c = c
                    .args(["-keyopt", "rsa_padding_mode:pss", "-keyopt"])
                    .arg(format!("rsa_pss_saltlen:{salt}"));
            }
            c.arg("-in").arg(&doc).arg("-out").arg(&out)
        }
        Op::Req => openssl(env, ctx)
            .args(["req", "-new", "-x509", "-days", "1"])
            .arg(format!("-{}", hash.openssl()))
            .args(engine)
            .args(["-keyform", "engine", "-key", &uri])
            .arg("-subj")
            .arg(format!("/CN={} (interop self-signed)", key.label))
            .arg("-out")
            .arg(&out),
    };
    ctx.run(cmd).ok()?;
    let scheme = match (key.is_rsa, pss) {
        (false, _) => Scheme::EcdsaDer,
        (true, false) => Scheme::RsaPkcs1,
        (true, true) => Scheme::RsaPss {
            salt_len: pss_salt(key),
        },
    };
    match op {
        Op::Dgst | Op::Pkeyutl => verify::signature(key, hash, &message, &read(&out)?, scheme),
        Op::Cms => verify::cms(env, ctx, key, &out, &doc, &CmsExpect { hash, pss }),
        Op::Req => verify::self_signed(ctx, key, &out),
    }
}
