//! Which PKCS#11 interface each kind of client takes (issue #12), seen by OpenSC's pkcs11-spy between the
//! client and the module: pkcs11-provider asks C_GetInterface for "PKCS 11" 3.0 and gets it; the libp11
//! engine asks C_GetFunctionList (the 2.40 list) and never C_GetInterface. Both then sign, checked with
//! openssl. (Without the spy both sign too: the provider and libp11 rows of this suite.)

use super::{document, libp11, provider, read};
use crate::case::{Case, Ctx, Login};
use crate::env::{Env, Key};
use crate::verify;
use support::Scheme;

pub const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

#[derive(Clone, Copy)]
enum Client {
    /// OpenSSL 3 through pkcs11-provider: a PKCS#11 3.0 client.
    Provider,
    /// OpenSSL 3 through the libp11 engine: a PKCS#11 2.40 client.
    Libp11,
}

pub fn cases(env: &Env) -> Vec<Case> {
    // One EC key with an authenticator code: the rows are about the interface, not the key type.
    let k = env
        .keys
        .iter()
        .position(|k| !k.is_rsa && !k.uses_sms())
        .expect("an EC key with a TOTP code");
    vec![
        Case::new(
            "pkcs11-spy",
            "pkcs11-provider gets the 3.0 interface, signs",
            Some(k),
            Login::Passcode,
            move |env, ctx| run(env, ctx, &env.keys[k], Client::Provider),
        ),
        Case::new(
            "pkcs11-spy",
            "libp11 takes the 2.40 list, signs",
            Some(k),
            Login::Passcode,
            move |env, ctx| run(env, ctx, &env.keys[k], Client::Libp11),
        ),
    ]
}

fn run(env: &Env, ctx: &Ctx, key: &Key, client: Client) -> Result<String, String> {
    let (message, doc) = document(ctx, "a client behind pkcs11-spy", key);
    let out = ctx.path("doc.sig");
    let log = ctx.path("spy.log");
    let spy = std::path::Path::new(SPY);
    let passcode = env.passcode(key)?;
    let cmd = match client {
        Client::Provider => provider::openssl_with(ctx, spy, Some(&passcode))
            .arg("dgst")
            .arg(format!("-{}", key.hash.openssl()))
            .args(["-sign", &key.uri(None)]),
        Client::Libp11 => ctx
            .cmd("openssl")
            .env("OPENSSL_CONF", libp11::openssl_cnf(ctx, spy))
            .arg("dgst")
            .arg(format!("-{}", key.hash.openssl()))
            .args(["-engine", "pkcs11", "-keyform", "engine", "-sign"])
            .arg(key.uri(Some(&passcode))),
    };
    ctx.run(
        cmd.env("PKCS11SPY", &env.module)
            .env("PKCS11SPY_OUTPUT", &log)
            .arg("-out")
            .arg(&out)
            .arg(&doc),
    )
    .ok()?;
    let calls = spy_calls(&std::fs::read_to_string(&log).unwrap_or_default());
    let asked = match client {
        Client::Provider => {
            let Some(get) = calls.iter().find(|c| c.name == "C_GetInterface") else {
                return Err(format!(
                    "the provider never called C_GetInterface: {calls:?}"
                ));
            };
            if !get.body.contains("[in] pVersion = 3.0")
                || !get.body.contains("Returned:  0 CKR_OK")
            {
                return Err(format!(
                    "C_GetInterface was not asked for 3.0, or refused it:\n{}",
                    get.body
                ));
            }
            "C_GetInterface(\"PKCS 11\", 3.0) → CKR_OK"
        }
        Client::Libp11 => {
            if calls.iter().any(|c| c.name == "C_GetInterface") {
                return Err(format!("libp11 called C_GetInterface: {calls:?}"));
            }
            if calls.first().map(|c| c.name.as_str()) != Some("C_GetFunctionList") {
                return Err(format!(
                    "libp11's first call is not C_GetFunctionList: {calls:?}"
                ));
            }
            "C_GetFunctionList (2.40), no C_GetInterface"
        }
    };
    if !calls
        .iter()
        .any(|c| c.name == "C_Sign" || c.name == "C_SignFinal")
    {
        return Err(format!("the spy saw no signature: {calls:?}"));
    }
    let checked = verify::signature(key, key.hash, &message, &read(&out)?, Scheme::EcdsaDer)?;
    Ok(format!("spy: {asked}; {checked}"))
}

/// One call in a pkcs11-spy log: "N: C_Name", then its lines up to the next call.
#[derive(Debug)]
struct Call {
    name: String,
    body: String,
}

fn spy_calls(log: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    for line in log.lines() {
        let header = line.split_once(": ").filter(|(n, f)| {
            n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() && f.starts_with("C_")
        });
        match (header, calls.last_mut()) {
            (Some((_, name)), _) => calls.push(Call {
                name: name.trim().to_owned(),
                body: String::new(),
            }),
            (None, Some(c)) => {
                c.body.push_str(line);
                c.body.push('\n');
            }
            (None, None) => {}
        }
    }
    calls
}
