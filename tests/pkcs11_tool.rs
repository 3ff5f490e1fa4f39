//! OpenSC `pkcs11-tool` drives the built module against a real csc-server: it lists the slot and the
//! objects, signs with the mechanisms applications use (PIN+OTP passcode at C_Login), and survives
//! `--test-fork`. Every signature is verified by `openssl` against the certificate read through the module.

use std::path::Path;
use std::process::{Command, Output};
use support::{module_path, openssl_verify, totp_code, Scheme, Service};

fn pkcs11_tool(svc: &Service, args: &[&str]) -> Output {
    Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module_path())
        .args(args)
        .env("CLOUDTOKEN_CONFIG", svc.config_file())
        .output()
        .expect("run pkcs11-tool (apt-get install opensc)")
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pkcs11-tool {what} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `ID:` of the object with this label and kind ("Certificate Object", "Private Key Object", ...) in
/// `pkcs11-tool -O` output.
fn object_id(listing: &str, kind: &str, label: &str) -> String {
    let mut in_block = false;
    let mut label_matches = false;
    for line in listing.lines() {
        if !line.starts_with(' ') && !line.starts_with('\t') {
            in_block = line.starts_with(kind);
            label_matches = false;
            continue;
        }
        let line = line.trim();
        if in_block {
            if let Some(l) = line.strip_prefix("label:") {
                label_matches = l.trim() == label;
            }
            if let Some(id) = line.strip_prefix("ID:") {
                if label_matches {
                    return id.trim().to_owned();
                }
            }
        }
    }
    panic!("no {kind} labelled {label:?} in:\n{listing}");
}

#[test]
fn lists_slot_token_and_public_objects_without_login() {
    let svc = Service::shared();
    let slots = ok(pkcs11_tool(svc, &["--list-slots"]), "--list-slots");
    for token in &svc.demo.tokens {
        assert!(
            slots.contains(&token.label),
            "slot list lacks {}:\n{slots}",
            token.label
        );
    }
    let alice = svc.demo.token_of("alice");
    let objects = ok(
        pkcs11_tool(svc, &["--token-label", &alice.label, "--list-objects"]),
        "--list-objects",
    );
    for cred in &alice.credentials {
        // Certificate and public key are public objects: listed without logging in.
        object_id(&objects, "Certificate Object", &cred.label);
        object_id(&objects, "Public Key Object", &cred.label);
    }
    assert!(
        !objects.contains("Private Key Object"),
        "private keys must not be visible before login:\n{objects}"
    );
    let mechs = ok(
        pkcs11_tool(svc, &["--token-label", &alice.label, "--list-mechanisms"]),
        "--list-mechanisms",
    );
    for m in [
        "SHA256-RSA-PKCS",
        "RSA-PKCS-PSS",
        "ECDSA",
        "ECDSA-SHA256",
        "SHA256",
    ] {
        assert!(
            mechs
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{m},"))
                    || l.trim_start().starts_with(&format!("{m} "))),
            "mechanism {m} missing:\n{mechs}"
        );
    }
}

struct SignCase {
    key: &'static str,
    mechanism: &'static str,
    extra: &'static [&'static str],
    /// The input is the message (hashed by the module) or its SHA-256 (hashed here).
    prehash: bool,
    scheme: Scheme,
}

fn sign_and_verify(svc: &Service, case: &SignCase) {
    let alice = svc.demo.token_of("alice");
    let cred = alice
        .credentials
        .iter()
        .find(|c| c.key == case.key && c.otp == "totp")
        .unwrap_or_else(|| panic!("alice has no TOTP credential with a {} key", case.key));
    let dir = tempfile::tempdir().unwrap();
    let listing = ok(
        pkcs11_tool(svc, &["--token-label", &alice.label, "--list-objects"]),
        "--list-objects",
    );
    let id = object_id(&listing, "Certificate Object", &cred.label);
    let cert = dir.path().join("cert.der");
    ok(
        pkcs11_tool(
            svc,
            &[
                "--token-label",
                &alice.label,
                "--read-object",
                "--type",
                "cert",
                "--id",
                &id,
                "--output-file",
                path(&cert),
            ],
        ),
        "--read-object",
    );
    let message = format!("invoice for {} signed with {}", case.key, case.mechanism).into_bytes();
    let digest = sha256(&message);
    let input = dir.path().join("input");
    std::fs::write(
        &input,
        if case.prehash {
            &digest[..]
        } else {
            &message[..]
        },
    )
    .unwrap();
    let sig = dir.path().join("sig");
    let passcode = format!("{}{}", alice.pin, totp_code(cred));
    let mut args = vec![
        "--token-label",
        &alice.label,
        "--login",
        "--pin",
        &passcode,
        "--sign",
        "--id",
        &id,
        "-m",
        case.mechanism,
        "--input-file",
        path(&input),
        "--output-file",
        path(&sig),
    ];
    args.extend_from_slice(case.extra);
    ok(
        pkcs11_tool(svc, &args),
        &format!("--sign -m {}", case.mechanism),
    );
    let signature = std::fs::read(&sig).unwrap();
    assert!(
        openssl_verify(
            &std::fs::read(&cert).unwrap(),
            "sha256",
            &digest,
            &signature,
            case.scheme
        ),
        "openssl rejects the {} signature made with {}",
        case.key,
        case.mechanism
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

#[test]
fn signs_sha256_rsa_pkcs() {
    sign_and_verify(
        Service::shared(),
        &SignCase {
            key: "rsa-2048",
            mechanism: "SHA256-RSA-PKCS",
            extra: &[],
            prehash: false,
            scheme: Scheme::RsaPkcs1,
        },
    );
}

#[test]
fn signs_rsa_pkcs_pss() {
    sign_and_verify(
        Service::shared(),
        &SignCase {
            key: "rsa-2048",
            mechanism: "RSA-PKCS-PSS",
            extra: &[
                "--hash-algorithm",
                "SHA256",
                "--mgf",
                "MGF1-SHA256",
                "--salt-len",
                "32",
            ],
            prehash: true,
            scheme: Scheme::RsaPss { salt_len: 32 },
        },
    );
}

#[test]
fn signs_ecdsa() {
    sign_and_verify(
        Service::shared(),
        &SignCase {
            key: "ec-p256",
            mechanism: "ECDSA",
            extra: &[],
            prehash: true,
            scheme: Scheme::EcdsaRaw,
        },
    );
}

#[test]
fn signs_ecdsa_sha256() {
    sign_and_verify(
        Service::shared(),
        &SignCase {
            key: "ec-p256",
            mechanism: "ECDSA-SHA256",
            extra: &[],
            prehash: false,
            scheme: Scheme::EcdsaRaw,
        },
    );
}

#[test]
fn test_fork_passes() {
    let svc = Service::shared();
    let out = pkcs11_tool(svc, &["--test-fork"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "--test-fork failed: {text}");
    assert!(
        text.contains("Calling C_Initialize in forked child process"),
        "pkcs11-tool did not run its fork test: {text}"
    );
    // OpenSC reports a failed C_Initialize in the child as "C_Initialize in child" with the CKR code (and a
    // non-zero child status); a working module prints neither.
    assert!(
        !text.contains("C_Initialize in child") && !text.contains("Child process exited"),
        "the child could not re-initialize the module: {text}"
    );
}
