//! NSS: `modutil -add` registers the module in a fresh database, `certutil -L -h all` lists every
//! token's certificates, `cmsutil -S` makes CMS signatures with the password file holding the passcode.

use super::document;
use crate::case::{Case, Ctx, Login};
use crate::env::{Env, Key};
use crate::verify::{self, CmsExpect};
use std::path::{Path, PathBuf};

const CLIENT: &str = "nss";
pub const MODULE_NAME: &str = "cloudtoken";

pub fn cases(env: &Env) -> Vec<Case> {
    let mut cases = vec![Case::new(
        CLIENT,
        "modutil -add, certutil -L -h all",
        None,
        Login::Pin,
        list,
    )];
    for k in 0..env.keys.len() {
        cases.push(Case::new(
            CLIENT,
            "cmsutil -S",
            Some(k),
            Login::Passcode,
            move |env, ctx| cmsutil(env, ctx, &env.keys[k]),
        ));
    }
    // No password file: NSS does not log in to a login-free token, and calls C_Login with a NULL PIN
    // on a protected-path one.
    for login in [Login::LoginFree, Login::ProtectedPath] {
        for k in 0..env.keys.len() {
            cases.push(Case::new(
                CLIENT,
                "cmsutil -S (no password file)",
                Some(k),
                login,
                move |env, ctx| cmsutil(env, ctx, &env.keys[k]),
            ));
        }
    }
    cases
}

/// A new NSS database in the row's folder that trusts the demo CA and has cloudtoken registered;
/// `config` is the module configuration the NSS process sees. Returns the `sql:` directory argument.
pub fn database(env: &Env, ctx: &Ctx, config: &Path) -> Result<String, String> {
    let dir = ctx.path("nssdb");
    std::fs::create_dir_all(&dir).expect("create NSS db dir");
    let db = format!("sql:{}", dir.display());
    ctx.run(
        ctx.cmd("certutil")
            .args(["-N", "-d", &db, "--empty-password"]),
    )
    .ok()?;
    // Trusted for TLS, e-mail and object signing, so that pdfsig and cmsutil validate the signer.
    ctx.run(
        ctx.cmd("certutil")
            .args([
                "-A",
                "-d",
                &db,
                "-n",
                "cloudtoken demo CA",
                "-t",
                "CT,C,C",
                "-a",
                "-i",
            ])
            .arg(env.svc.ca_file()),
    )
    .ok()?;
    let added = ctx
        .run(
            ctx.cmd("modutil")
                .env("CLOUDTOKEN_CONFIG", config)
                .args(["-dbdir", &db, "-add", MODULE_NAME, "-libfile"])
                .arg(&env.module)
                .arg("-force"),
        )
        .ok()?;
    if !added
        .text()
        .contains(&format!("Module \"{MODULE_NAME}\" added"))
    {
        return Err(format!(
            "modutil did not add the module\n{}",
            added.describe()
        ));
    }
    Ok(db)
}

/// An NSS password file (what `-f` reads) holding `secret`.
pub fn password_file(ctx: &Ctx, secret: &str) -> PathBuf {
    ctx.write("nss-password.txt", format!("{secret}\n").as_bytes())
}

fn list(env: &Env, ctx: &Ctx) -> Result<String, String> {
    let db = database(env, ctx, &env.svc.config_file())?;
    let modules = ctx
        .run(
            ctx.cmd("modutil")
                .args(["-dbdir", &db, "-list", MODULE_NAME]),
        )
        .ok()?;
    for token in &env.svc.demo.tokens {
        if !modules.stdout.contains(&token.label) {
            return Err(format!(
                "modutil -list does not show the token {}\n{}",
                token.label,
                modules.describe()
            ));
        }
    }
    let pw = password_file(ctx, &env.keys[0].pin);
    let listed = ctx
        .run(
            ctx.cmd("certutil")
                .args(["-L", "-d", &db, "-h", "all", "-f"])
                .arg(&pw),
        )
        .ok()?
        .stdout;
    let mut n = 0;
    for token in &env.svc.demo.tokens {
        for cred in &token.credentials {
            let nick = format!("{}:{}", token.label, cred.label);
            // "u,u,u": NSS found the private key that goes with the certificate.
            let line = listed.lines().find(|l| l.starts_with(&nick));
            if !line.is_some_and(|l| l.trim_end().ends_with("u,u,u")) {
                return Err(format!(
                    "certutil -L -h all lacks {nick:?} with its key (u,u,u):\n{listed}"
                ));
            }
            n += 1;
        }
    }
    Ok(format!(
        "{} tokens in modutil -list; {n} certificates with their private keys (u,u,u)",
        env.svc.demo.tokens.len()
    ))
}

fn cmsutil(env: &Env, ctx: &Ctx, key: &Key) -> Result<String, String> {
    let db = database(env, ctx, &ctx.config)?;
    let (_, doc) = document(ctx, "NSS cmsutil", key);
    let out = ctx.path("doc.p7s");
    let mut cmd = ctx.cmd("cmsutil").args(["-S", "-d", &db]);
    if !matches!(ctx.login, Login::LoginFree | Login::ProtectedPath) {
        let passcode = env.passcode(key)?;
        cmd = cmd.arg("-f").arg(password_file(ctx, &passcode));
    }
    ctx.run(
        cmd.args([
            "-N",
            &key.nickname(),
            "-H",
            key.hash.upper(),
            "-G",
            "-T",
            "-Y",
            "NONE",
            "-i",
        ])
        .arg(&doc)
        .arg("-o")
        .arg(&out),
    )
    .ok()?;
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
