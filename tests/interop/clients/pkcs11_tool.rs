//! OpenSC `pkcs11-tool`: listing without and with login, a signature with every mechanism each private key
//! allows, the built-in `--test` (its reports checked against the justified list below) and `--test-fork`.

use super::{document, read};
use crate::case::{Case, Ctx, Login};
use crate::env::{parse_objects, Env, Hash, Key};
use crate::process::{Cmd, Output};
use crate::verify;
use der::asn1::{Null, ObjectIdentifier, OctetString};
use der::{Encode, Sequence};
use support::Scheme;

const CLIENT: &str = "pkcs11-tool";

/// What `pkcs11-tool --test` reports as a failure or warning on the demo token, and why each is right.
/// Any other report fails the row.
pub const TEST_REPORTS_JUSTIFIED: &[(&str, &str)] = &[
    (
        "seeding (C_SeedRandom) not supported",
        "randomness comes from the operating system; PKCS#11 lets a token refuse seeding \
         (CKR_RANDOM_SEED_NOT_SUPPORTED)",
    ),
    (
        "C_Sign failed: rv = CKR_USER_NOT_LOGGED_IN",
        "--test signs with every RSA key under one C_Login; its one-time code authorizes the first \
         credential only, and the next credential has no code of its own, so the module refuses to sign \
         (after asking the service to text that credential's code)",
    ),
    ("Aborting.", "pkcs11-tool stops at the refused signature above"),
];

pub fn cases(env: &Env) -> Vec<Case> {
    let mut cases = vec![
        Case::new(CLIENT, "--list-slots/-O/-M", None, Login::None, list_public),
        Case::new(CLIENT, "-O private keys", None, Login::Pin, list_private),
    ];
    for (k, key) in env.keys.iter().enumerate() {
        for mech in key.mechanisms.clone() {
            cases.push(Case::new(
                CLIENT,
                format!("sign {mech}"),
                Some(k),
                Login::Passcode,
                move |env, ctx| sign(env, ctx, &env.keys[k], &mech),
            ));
        }
    }
    // The second-factor modes: one hashed mechanism per key (the key's hash), the PIN and the code from
    // the test prompt.
    for (k, key) in env.keys.iter().enumerate() {
        let mech = prompt_mechanism(key);
        for (login, what) in [
            (Login::LoginFree, "no login"),
            (Login::ProtectedPath, "--login, no --pin"),
        ] {
            let mech = mech.clone();
            cases.push(Case::new(
                CLIENT,
                format!("sign {mech} ({what})"),
                Some(k),
                login,
                move |env, ctx| sign_prompted(env, ctx, &env.keys[k], &mech, login),
            ));
        }
    }
    let rsa: Vec<usize> = (0..env.keys.len())
        .filter(|&k| env.keys[k].is_rsa)
        .collect();
    cases.push(
        Case::new(CLIENT, "--test", Some(rsa[0]), Login::Passcode, run_test)
            .also_locking(rsa.clone()),
    );
    cases.push(Case::new(
        CLIENT,
        "--test-fork",
        None,
        Login::None,
        test_fork,
    ));
    cases
}

fn tool(env: &Env, ctx: &Ctx) -> Cmd {
    ctx.cmd("pkcs11-tool").arg("--module").arg(&env.module)
}

fn token_of(env: &Env) -> &str {
    &env.keys[0].token
}

fn list_public(env: &Env, ctx: &Ctx) -> Result<String, String> {
    let slots = ctx.run(tool(env, ctx).arg("--list-slots")).ok()?.stdout;
    for t in &env.svc.demo.tokens {
        if !slots.contains(&format!("token label        : {}", t.label)) {
            return Err(format!(
                "--list-slots lacks the token {:?}:\n{slots}",
                t.label
            ));
        }
    }
    let listing = ctx
        .run(tool(env, ctx).args(["--token-label", token_of(env), "--list-objects"]))
        .ok()?
        .stdout;
    let objects = parse_objects(&listing);
    for key in &env.keys {
        for kind in ["Certificate", "Public Key"] {
            if !objects
                .iter()
                .any(|o| o.kind == kind && o.label == key.label && o.id == key.id)
            {
                return Err(format!(
                    "no {kind} object {:?} with ID {} before login:\n{listing}",
                    key.label, key.id
                ));
            }
        }
    }
    if objects.iter().any(|o| o.kind == "Private Key") {
        return Err(format!("private keys are visible before login:\n{listing}"));
    }
    let mechs = ctx
        .run(tool(env, ctx).args(["--token-label", token_of(env), "--list-mechanisms"]))
        .ok()?
        .stdout;
    let listed: Vec<&str> = mechs
        .lines()
        .filter_map(|l| l.trim_start().split([',', ' ']).next())
        .collect();
    let mut offered = 0;
    for key in &env.keys {
        for m in &key.mechanisms {
            if !listed.contains(&m.as_str()) {
                return Err(format!(
                    "{} allows {m}, which --list-mechanisms lacks:\n{mechs}",
                    key.label
                ));
            }
            offered += 1;
        }
    }
    // Clients that hash locally ask for the digest mechanisms (clients.md).
    for digest in ["SHA256", "SHA384"] {
        if !listed.contains(&digest) {
            return Err(format!("digest mechanism {digest} missing:\n{mechs}"));
        }
    }
    Ok(format!(
        "{} tokens; certificate + public key of {} credentials without login, no private key; \
         {offered} key mechanisms listed",
        env.svc.demo.tokens.len(),
        env.keys.len()
    ))
}

fn list_private(env: &Env, ctx: &Ctx) -> Result<String, String> {
    let key0 = &env.keys[0];
    let listing = ctx
        .run(tool(env, ctx).args([
            "--token-label",
            token_of(env),
            "--login",
            "--pin",
            &key0.pin,
            "--list-objects",
            "--type",
            "privkey",
        ]))
        .ok()?
        .stdout;
    let objects = parse_objects(&listing);
    for key in &env.keys {
        if !objects
            .iter()
            .any(|o| o.kind == "Private Key" && o.label == key.label && o.id == key.id)
        {
            return Err(format!(
                "no private key {:?} after login:\n{listing}",
                key.label
            ));
        }
    }
    if !listing.contains("never extractable") || listing.contains("extractable,") {
        return Err(format!(
            "private keys must be sensitive and never extractable:\n{listing}"
        ));
    }
    Ok(format!(
        "{} private keys, sensitive, never extractable, same IDs",
        env.keys.len()
    ))
}

/// How a pkcs11-tool mechanism name is driven and checked.
struct Plan {
    /// The input is the message (the module hashes) or something derived from its hash here.
    input: Vec<u8>,
    extra: Vec<String>,
    hash: Hash,
    scheme: Scheme,
}

fn plan(key: &Key, mech: &str, message: &[u8]) -> Result<Plan, String> {
    // "SHA256-RSA-PKCS", "ECDSA-SHA384", "RSA-PKCS-PSS": the hash the module computes, if any, and the
    // signature scheme.
    let (hashed, scheme) = if let Some(h) = mech.strip_prefix("ECDSA-") {
        (Hash::from_upper(h), "ECDSA")
    } else {
        match mech.split_once('-') {
            Some((h, rest)) if Hash::from_upper(h).is_some() => (Hash::from_upper(h), rest),
            _ => (None, mech),
        }
    };
    let unknown = || {
        format!(
            "the module allows {mech} for {}, and this suite does not know how to check it: add it",
            key.label
        )
    };
    let pss = |h: Hash| Scheme::RsaPss { salt_len: h.len() };
    Ok(match (hashed, scheme) {
        // The caller hashes and wraps the hash in a DigestInfo (what OpenSSL and NSS send).
        (None, "RSA-PKCS") => Plan {
            input: digest_info(key.hash, &key.hash.digest(message)),
            extra: vec![],
            hash: key.hash,
            scheme: Scheme::RsaPkcs1,
        },
        (None, "RSA-PKCS-PSS") => Plan {
            input: key.hash.digest(message),
            extra: vec![
                "--hash-algorithm".into(),
                key.hash.upper().into(),
                "--mgf".into(),
                format!("MGF1-{}", key.hash.upper()),
                "--salt-len".into(),
                key.hash.len().to_string(),
            ],
            hash: key.hash,
            scheme: pss(key.hash),
        },
        (None, "ECDSA") => Plan {
            input: key.hash.digest(message),
            extra: vec![],
            hash: key.hash,
            scheme: Scheme::EcdsaRaw,
        },
        (Some(h), "RSA-PKCS") => Plan {
            input: message.to_vec(),
            extra: vec![],
            hash: h,
            scheme: Scheme::RsaPkcs1,
        },
        // pkcs11-tool's defaults for the hashed PSS mechanisms: MGF1 with the same hash, salt = hash
        // length; verifying with exactly those parameters checks that the module applied them.
        (Some(h), "RSA-PKCS-PSS") => Plan {
            input: message.to_vec(),
            extra: vec![],
            hash: h,
            scheme: pss(h),
        },
        (Some(h), "ECDSA") => Plan {
            input: message.to_vec(),
            extra: vec![],
            hash: h,
            scheme: Scheme::EcdsaRaw,
        },
        _ => return Err(unknown()),
    })
}

/// DER DigestInfo (RFC 8017 §9.2), what CKM_RSA_PKCS callers pass for a PKCS#1 v1.5 signature.
fn digest_info(hash: Hash, digest: &[u8]) -> Vec<u8> {
    #[derive(Sequence)]
    struct AlgorithmIdentifier {
        algorithm: ObjectIdentifier,
        parameters: Null,
    }
    #[derive(Sequence)]
    struct DigestInfo {
        algorithm: AlgorithmIdentifier,
        digest: OctetString,
    }
    let oid = match hash {
        Hash::Sha1 => remote_client::oid::SHA1,
        Hash::Sha224 => remote_client::oid::SHA224,
        Hash::Sha256 => remote_client::oid::SHA256,
        Hash::Sha384 => remote_client::oid::SHA384,
        Hash::Sha512 => remote_client::oid::SHA512,
    };
    DigestInfo {
        algorithm: AlgorithmIdentifier {
            algorithm: ObjectIdentifier::new(oid).expect("hash OID"),
            parameters: Null,
        },
        digest: OctetString::new(digest.to_vec()).expect("digest"),
    }
    .to_der()
    .expect("encode DigestInfo")
}

fn sign(env: &Env, ctx: &Ctx, key: &Key, mech: &str) -> Result<String, String> {
    let (message, _) = document(ctx, &format!("pkcs11-tool -m {mech}"), key);
    let plan = plan(key, mech, &message)?;
    let input = ctx.write("input.bin", &plan.input);
    let sig = ctx.path("sig.bin");
    let passcode = env.passcode(key)?;
    ctx.run(
        tool(env, ctx)
            .args([
                "--token-label",
                &key.token,
                "--login",
                "--pin",
                &passcode,
                "--sign",
                "--id",
                &key.id,
            ])
            .args(["-m", mech])
            .arg("--input-file")
            .arg(&input)
            .arg("--output-file")
            .arg(&sig)
            .args(&plan.extra),
    )
    .ok()?;
    verify::signature(key, plan.hash, &message, &read(&sig)?, plan.scheme)
}

/// The mechanism the prompt rows sign with: the module hashes with the key's hash.
fn prompt_mechanism(key: &Key) -> String {
    if key.is_rsa {
        format!("{}-RSA-PKCS", key.hash.upper())
    } else {
        format!("ECDSA-{}", key.hash.upper())
    }
}

/// A signature with the token in a prompt mode: no `--login` at all (login-free), or `--login` with no
/// `--pin`, which makes pkcs11-tool call C_Login with a NULL PIN on a protected-path token.
fn sign_prompted(
    env: &Env,
    ctx: &Ctx,
    key: &Key,
    mech: &str,
    login: Login,
) -> Result<String, String> {
    let (message, _) = document(ctx, &format!("pkcs11-tool -m {mech}"), key);
    let plan = plan(key, mech, &message)?;
    let input = ctx.write("input.bin", &plan.input);
    let sig = ctx.path("sig.bin");
    let mut cmd = tool(env, ctx).args(["--token-label", &key.token]);
    if login == Login::ProtectedPath {
        cmd = cmd.arg("--login");
    }
    let out = ctx
        .run(
            cmd.args(["--sign", "--id", &key.id, "-m", mech])
                .arg("--input-file")
                .arg(&input)
                .arg("--output-file")
                .arg(&sig),
        )
        .ok()?;
    // pkcs11-tool reads a PIN from the terminal unless the token has a protected path; its prompt
    // would show here.
    if out.text().contains("PIN") {
        return Err(format!("pkcs11-tool asked for a PIN\n{}", out.describe()));
    }
    verify::signature(key, plan.hash, &message, &read(&sig)?, plan.scheme)
}

fn run_test(env: &Env, ctx: &Ctx) -> Result<String, String> {
    let rsa: Vec<&Key> = env.keys.iter().filter(|k| k.is_rsa).collect();
    // --test signs with the RSA keys in the token's order; the login's code is for the first of them.
    let first = rsa[0];
    let passcode = env.passcode(first)?;
    let out = ctx.run(tool(env, ctx).args([
        "--token-label",
        &first.token,
        "--login",
        "--pin",
        &passcode,
        "--test",
    ]));
    check_test_output(&out, first, rsa.get(1).copied())
}

fn check_test_output(out: &Output, first: &Key, second: Option<&Key>) -> Result<String, String> {
    let text = out.text();
    let fail = |why: String| Err(format!("{why}\n{}", out.describe()));
    if out.status.is_none() {
        return fail("--test hung".into());
    }
    for expected in [
        "seems to be OK",
        "all 4 digest functions seem to work",
        "SHA256: OK",
    ] {
        if !text.contains(expected) {
            return fail(format!("--test did not report {expected:?}"));
        }
    }
    // The first RSA key: every mechanism pkcs11-tool tries must verify (it checks them with OpenSSL).
    let header = format!("testing key 0 ({})", first.label);
    let Some(section) = text.split(&header).nth(1) else {
        return fail(format!("--test did not test {:?} first", first.label));
    };
    let section = section.split("testing key 1").next().unwrap_or(section);
    let results: Vec<&str> = section
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("RSA-PKCS") && l.contains(':'))
        .collect();
    if results.is_empty() || results.iter().any(|l| !l.ends_with("OK")) {
        return fail(format!(
            "signatures with {} did not all pass: {results:?}",
            first.label
        ));
    }
    // Every other report must be one of the justified ones.
    for line in text.lines() {
        let reported = line.starts_with("error:")
            || line.starts_with("warning:")
            || line.contains("not supported")
            || line.contains("Aborting")
            || line.contains("ERR")
            || line.contains("failed");
        // The module's own log line for the refusal (stderr, level error) explains the same event; it
        // may land in the middle of a line pkcs11-tool has begun on stdout.
        let module_log = line.contains(" cloudtoken::");
        if reported && !module_log && !TEST_REPORTS_JUSTIFIED.iter().any(|(p, _)| line.contains(p))
        {
            return fail(format!("--test reported an unjustified failure: {line:?}"));
        }
    }
    // The refusal must be the second credential's, not a fault with the first.
    if text.contains("CKR_USER_NOT_LOGGED_IN") {
        let Some(second) = second else {
            return fail("refused a signature although the token has one RSA key".into());
        };
        if !text.contains(&format!("({})", second.label)) {
            return fail(format!("the refused signature is not {:?}'s", second.label));
        }
    }
    Ok(format!(
        "{} mechanisms of {} OK, digests and random OK; only justified reports (TEST_REPORTS_JUSTIFIED)",
        results.len(),
        first.label
    ))
}

fn test_fork(env: &Env, ctx: &Ctx) -> Result<String, String> {
    let out = ctx.run(tool(env, ctx).arg("--test-fork"));
    let text = out.text();
    // The child re-initializes the module; pkcs11-tool exits non-zero with "Child process exited with
    // status N" when the child's C_Initialize fails.
    if !out.success()
        || text.contains("Child process exited")
        || !text.contains("forked child process")
    {
        return Err(format!(
            "the forked child could not initialize the module\n{}",
            out.describe()
        ));
    }
    Ok("child C_Initialize OK".into())
}
