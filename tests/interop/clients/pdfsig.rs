//! PDF signing as an EDM client does it: poppler's `pdfsig -add-signature` (NSS underneath) signs a
//! generated PDF through the module; `pdfsig` validates it, and `openssl cms` checks the embedded
//! signature over the PDF's signed byte ranges.

use super::read;
use crate::case::{Case, Ctx, Login};
use crate::clients::nss;
use crate::env::{Env, Hash, Key};
use crate::pdf;
use crate::verify::{self, CmsExpect};

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

pub fn cases(env: &Env) -> Vec<Case> {
    (0..env.keys.len())
        .map(|k| {
            Case::new(
                CLIENT,
                "-add-signature",
                Some(k),
                Login::Passcode,
                move |env, ctx| sign(env, ctx, &env.keys[k]),
            )
        })
        .collect()
}

fn sign(env: &Env, ctx: &Ctx, key: &Key) -> Result<String, String> {
    // pdfsig's password callback answers once: only the signing user's token may ask for a login.
    let config = &env.single_token_config;
    let db = nss::database(env, ctx, config)?;
    let input = ctx.write(
        "invoice.pdf",
        &pdf::one_page(&format!("Invoice 2026-0042, signed with {}", key.label)),
    );
    let signed = ctx.path("invoice-signed.pdf");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let passcode = env.passcode(key)?;
        let out = ctx.run(
            ctx.cmd(env, "pdfsig")
                .env("CLOUDTOKEN_CONFIG", config)
                .args([
                    "-nssdir",
                    &db,
                    "-nss-pwd",
                    &passcode,
                    "-add-signature",
                    "-nick",
                ])
                .arg(key.nickname())
                .args(["-kpw", &passcode, "-digest", HASH.upper()])
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
            ctx.cmd(env, "pdfsig")
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
        ctx.cmd(env, "pdfsig")
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
