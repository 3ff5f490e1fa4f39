//! PDF signing as an EDM client does it: poppler's `pdfsig -add-signature` (NSS underneath) signs a
//! generated PDF through the module; `pdfsig` validates it, and `openssl cms` checks the embedded
//! signature over the PDF's signed byte ranges.

use super::read;
use crate::case::{Case, Ctx, Login};
use crate::clients::nss;
use crate::env::{Env, Hash, Key};
use crate::verify::{self, CmsExpect};
use support::pdf;

const CLIENT: &str = "pdfsig";
/// poppler 22.12 (Debian 12): "Only digest SHA256 is supported at the moment with -add-signature".
const HASH: Hash = Hash::Sha256;
/// poppler 22.12 sizes the /Contents placeholder with a first signature and then requires the real one
/// to have exactly that length. A DER ECDSA signature's length depends on the values of r and s, so the
/// second one often differs and pdfsig fails with this message, whatever the token (pkcs11-spy: both
/// C_Sign calls return CKR_OK with fixed-width r||s; upstream poppler now pads the placeholder). Measured
/// here: 1 attempt in 3 to 5 succeeds, for P-256 and P-384 alike. Such attempts are repeated, each with a
/// fresh one-time code, up to MAX_ECDSA_ATTEMPTS (all failing: below 0.8^40 = 0.013%).
const POPPLER_ECDSA_LENGTH: &str = "signDocument: unable update signature";
const MAX_ECDSA_ATTEMPTS: u32 = 40;
/// The password pdfsig is given against a protected-path token (see `sign`).
const PLACEHOLDER: &str = "not-the-pin";

pub fn cases(env: &Env) -> Vec<Case> {
    let mut cases = Vec::new();
    for (login, operation) in [
        (Login::Passcode, "-add-signature"),
        (Login::LoginFree, "-add-signature (no password)"),
        (
            Login::ProtectedPath,
            "-add-signature (placeholder password)",
        ),
    ] {
        for k in 0..env.keys.len() {
            cases.push(Case::new(
                CLIENT,
                operation,
                Some(k),
                login,
                move |env, ctx| sign(env, ctx, &env.keys[k]),
            ));
        }
    }
    cases
}

fn sign(env: &Env, ctx: &Ctx, key: &Key) -> Result<String, String> {
    // pdfsig's password callback answers once: only the signing user's token may ask for a login.
    let config = &ctx.single_token_config;
    let db = nss::database(env, ctx, config)?;
    let input = ctx.write(
        "invoice.pdf",
        &pdf::one_page(&format!("Invoice 2026-0042, signed with {}", key.label)),
    );
    let signed = ctx.path("invoice-signed.pdf");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut cmd = ctx
            .cmd("pdfsig")
            .env("CLOUDTOKEN_CONFIG", config)
            .args(["-nssdir", &db]);
        match ctx.login {
            // No token of the single-token configuration needs a login: NSS asks for no password.
            Login::LoginFree => {}
            // pdfsig cannot start a login without a password to hand its callback, and NSS logs in to a
            // protected-path token with a NULL PIN whatever the callback answers: the placeholder is
            // not the PIN, so a signature shows that the PIN came from the prompt.
            Login::ProtectedPath => {
                cmd = cmd.args(["-nss-pwd", PLACEHOLDER, "-kpw", PLACEHOLDER]);
            }
            _ => {
                let passcode = env.passcode(key)?;
                cmd = cmd.args(["-nss-pwd", &passcode, "-kpw", &passcode]);
            }
        }
        let out = ctx.run(
            cmd.args(["-add-signature", "-nick"])
                .arg(key.nickname())
                .args(["-digest", HASH.upper()])
                .arg(&input)
                .arg(&signed),
        );
        if out.success() {
            break;
        }
        if key.is_rsa
            || !out.stderr.contains(POPPLER_ECDSA_LENGTH)
            || attempts == MAX_ECDSA_ATTEMPTS
        {
            return Err(format!("attempt {attempts}: {}", out.describe()));
        }
    }

    let report = ctx
        .run(
            ctx.cmd("pdfsig")
                .env("CLOUDTOKEN_CONFIG", config)
                .args(["-nssdir", &db])
                .arg(&signed),
        )
        .ok()?;
    let text = report.stdout.clone();
    for expected in [
        "Signature Validation: Signature is Valid.",
        "Certificate Validation: Certificate is Trusted.",
        "Total document signed",
        "Signing Hash Algorithm: SHA-256",
    ] {
        if !text.contains(expected) {
            return Err(format!(
                "pdfsig does not report {expected:?}\n{}",
                report.describe()
            ));
        }
    }

    // The embedded CMS, checked by openssl over exactly the bytes the PDF says are signed.
    let dump = ctx.path("dump");
    std::fs::create_dir_all(&dump).expect("create dump dir");
    ctx.run(
        ctx.cmd("pdfsig")
            .current_dir(&dump)
            .arg("-dump")
            .arg(&signed),
    )
    .ok()?;
    let sig = dump.join("invoice-signed.pdf.sig0");
    let content = ctx.write("signed-ranges.bin", &pdf::signed_bytes(&read(&signed)?)?);
    let cms = verify::cms(
        env,
        ctx,
        key,
        &sig,
        &content,
        &CmsExpect {
            hash: HASH,
            pss: false,
        },
    )?;
    let retried = if attempts > 1 {
        format!(" ({attempts} attempts: poppler 22.12 ECDSA placeholder length)")
    } else {
        String::new()
    };
    Ok(format!(
        "pdfsig: valid, trusted, whole document{retried}; {cms}"
    ))
}
