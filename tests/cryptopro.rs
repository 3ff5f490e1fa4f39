//! CryptoPro DSS end to end (issue 14): the built module against a real cryptopro-dss-emulator.
//! pkcs11-tool lists the GOST and RSA certificates without a login and signs with the GOST R 34.10-2012
//! mechanisms (raw, and hashing with Streebog) after the user confirms each operation on the emulator's
//! confirmation page in headless Chromium; a package of 10 documents is signed under one confirmation;
//! declined and unanswered confirmations end in CKR_FUNCTION_REJECTED and CKR_FUNCTION_CANCELED. Every
//! signature is verified by OpenSSL's GOST engine with the certificate, and the certificate against the
//! emulator's CA; the emulator's audit trail says what really happened.
//!
//! Needs Debian's opensc (pkcs11-tool), openssl, libengine-gost-openssl, chromium and softhsm2
//! (tests/run.sh installs them).

use cryptoki_sys::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::browser::{fill, launch_chromium};
use support::cryptopro::{config_with, DssEmulator, DssUser};
use support::p11::mech::Mech;
use support::prelude::*;
use support::tools::{expect_ok, parse_objects, run, text};
use support::verify::{openssl_chains_to, openssl_streebog, openssl_verify_gost};

/// Tokens of the emulator's `cloudtoken.toml`: every operation confirmed / one sign-in confirmed.
const TOKEN: &str = "Alice DSS";
const SESSION_TOKEN: &str = "Alice DSS session";

// TC26 codes (OpenSC's pkcs11.h), written out here rather than taken from the module.
const CKM_GOSTR3410_512: CK_ULONG = 0xD432_1006;
const CKM_GOSTR3410_WITH_GOSTR3411_12_256: CK_ULONG = 0xD432_1008;

fn pkcs11_tool(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("pkcs11-tool");
    c.arg("--module")
        .arg(support::module_path())
        .args(args)
        .env("CLOUDTOKEN_CONFIG", config)
        .stdin(Stdio::null());
    c
}

/// The label the module gives a DSS certificate and its key.
fn key_label(friendly_name: &str, key: &str) -> String {
    match key {
        "gost2012-256" => format!("{friendly_name} (GOST R 34.10-2012, 256 bits)"),
        "gost2012-512" => format!("{friendly_name} (GOST R 34.10-2012, 512 bits)"),
        _ => format!("{friendly_name} (RSA, no raw signatures)"),
    }
}

fn gost_bits(key: &str) -> u32 {
    match key {
        "gost2012-256" => 256,
        "gost2012-512" => 512,
        other => panic!("{other} is not a GOST key"),
    }
}

/// The user's certificate of key type `key` (the first).
fn cert_of<'a>(user: &'a DssUser, key: &str) -> &'a support::cryptopro::DssCert {
    user.certificates
        .iter()
        .find(|c| c.key == key)
        .unwrap_or_else(|| panic!("{} has no {key} certificate", user.name))
}

#[test]
fn pkcs11_tool_lists_gost_and_rsa_certificates_without_login() {
    let dss = DssEmulator::start(&[]);
    let out = run(&mut pkcs11_tool(
        &dss.config_file(),
        &["--token-label", TOKEN, "--list-objects"],
    ));
    let listing = expect_ok("pkcs11-tool --list-objects", &out);
    let objects = parse_objects(&listing);
    let alice = dss.demo.user("alice");
    assert_eq!(alice.certificates.len(), 3);
    for c in &alice.certificates {
        let label = key_label(&c.friendly_name, &c.key);
        let cert = objects
            .iter()
            .find(|o| o.kind == "Certificate" && o.label == label)
            .unwrap_or_else(|| panic!("no certificate {label:?} listed:\n{listing}"));
        assert!(
            objects
                .iter()
                .any(|o| o.kind == "Private Key" && o.id == cert.id),
            "no private key with the ID of {label:?}:\n{listing}"
        );
    }
    // The key types as pkcs11-tool names them (it reads CKA_KEY_TYPE and CKA_GOSTR3411_PARAMS).
    for kind in ["GOSTR3410-2012-256", "GOSTR3410-2012-512", "RSA"] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("Private Key Object;") && l.contains(kind)),
            "no {kind} private key:\n{listing}"
        );
    }
    // Nobody logged in and nothing was signed: listing never asks for a confirmation.
    assert!(dss.audit("confirmation/start").is_empty());

    let out = run(&mut pkcs11_tool(
        &dss.config_file(),
        &["--token-label", TOKEN, "--list-mechanisms"],
    ));
    let mechanisms = expect_ok("pkcs11-tool --list-mechanisms", &out);
    for m in [
        "GOSTR3410,",
        "GOSTR3410_512",
        "GOSTR3410-WITH-GOSTR3411-12-256",
        "GOSTR3410-WITH-GOSTR3411-12-512",
        "GOSTR3411-12-256",
        "GOSTR3411-12-512",
    ] {
        assert!(mechanisms.contains(m), "{m} not offered:\n{mechanisms}");
    }
}

/// One pkcs11-tool signature: the key, the mechanism, what pkcs11-tool is given, and the Streebog hash
/// the signature is of.
struct Case {
    key: &'static str,
    mechanism: &'static str,
    raw: bool,
}

const CASES: [Case; 4] = [
    Case {
        key: "gost2012-256",
        mechanism: "GOSTR3410",
        raw: true,
    },
    Case {
        key: "gost2012-512",
        mechanism: "GOSTR3410_512",
        raw: true,
    },
    Case {
        key: "gost2012-256",
        mechanism: "GOSTR3410-WITH-GOSTR3411-12-256",
        raw: false,
    },
    Case {
        key: "gost2012-512",
        mechanism: "GOSTR3410-WITH-GOSTR3411-12-512",
        raw: false,
    },
];

/// Waits for `child` at most `limit`; kills it when it takes longer.
fn finish(mut child: Child, limit: Duration, what: &str) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what} did not finish: {}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// Signs on the page in Chromium: sign in, then, for each signature pkcs11-tool waits for, find its
/// card (the certificate and pkcs11-tool's description), press Confirm; pkcs11-tool then gets its
/// signature, which OpenSSL's GOST engine verifies.
#[test]
fn pkcs11_tool_signs_with_gost_after_a_confirmation_in_chromium() {
    let dss = DssEmulator::start(&[]);
    let config = dss.config_file();
    let alice = dss.demo.user("alice");
    let work = tempfile::tempdir().unwrap();
    let listing = expect_ok(
        "pkcs11-tool --list-objects",
        &run(&mut pkcs11_tool(
            &config,
            &["--token-label", TOKEN, "--list-objects", "--type", "cert"],
        )),
    );
    let objects = parse_objects(&listing);

    let profile = tempfile::tempdir().unwrap();
    let browser = launch_chromium(&dss.ca_file(), profile.path());
    let tab = browser.new_tab().expect("tab");
    tab.set_default_timeout(Duration::from_secs(20));
    let page = format!("{}/confirm", dss.url);
    tab.navigate_to(&page)
        .and_then(|t| t.wait_until_navigated())
        .expect("open the confirmation page");
    fill(&tab, "#username", &alice.name);
    fill(&tab, "#password", &alice.password);
    fill(&tab, "#code", &alice.page_code());
    tab.wait_for_element("button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    tab.wait_for_element("form[action='/confirm/logout']")
        .expect("the confirmation list after signing in");

    for (n, case) in CASES.iter().enumerate() {
        let cert = cert_of(alice, case.key);
        let label = key_label(&cert.friendly_name, &cert.key);
        let id = &objects
            .iter()
            .find(|o| o.label == label)
            .unwrap_or_else(|| panic!("{label:?} not listed:\n{listing}"))
            .id;
        let cert_der = work.path().join(format!("cert-{n}.der"));
        expect_ok(
            "pkcs11-tool --read-object",
            &run(pkcs11_tool(
                &config,
                &[
                    "--token-label",
                    TOKEN,
                    "--read-object",
                    "--type",
                    "cert",
                    "--id",
                    id,
                    "-o",
                ],
            )
            .arg(&cert_der)),
        );
        let cert_der = std::fs::read(&cert_der).unwrap();
        openssl_chains_to(&dss.ca_file(), &cert_der)
            .unwrap_or_else(|e| panic!("{label}: not issued by the emulator's CA: {e}"));

        let document = format!("Contract {n} for {} ({})", case.mechanism, label).into_bytes();
        let digest = openssl_streebog(gost_bits(case.key), &document);
        let input = work.path().join(format!("in-{n}"));
        let output = work.path().join(format!("sig-{n}"));
        std::fs::write(&input, if case.raw { &digest } else { &document }).unwrap();
        let child = pkcs11_tool(
            &config,
            &[
                "--token-label",
                TOKEN,
                "--sign",
                "-m",
                case.mechanism,
                "--id",
                id,
            ],
        )
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pkcs11-tool --sign");

        // The operation shows up on the page (reloaded until it does).
        let deadline = Instant::now() + Duration::from_secs(30);
        let card = loop {
            tab.navigate_to(&page)
                .and_then(|t| t.wait_until_navigated())
                .expect("reload the page");
            let cards = tab.find_elements("section.card").unwrap_or_default();
            let mine = cards.into_iter().find(|c| {
                c.get_inner_text()
                    .is_ok_and(|t| t.contains(&cert.friendly_name) && t.contains("pkcs11-tool"))
            });
            if let Some(card) = mine {
                break card;
            }
            assert!(
                Instant::now() < deadline,
                "the operation of {} is not on the page",
                case.mechanism
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        let shown = card.get_inner_text().unwrap();
        assert!(shown.contains("Sign a document"), "{shown}");
        assert!(
            shown.contains(&format!("Sign 1 document with '{label}' for pkcs11-tool")),
            "{shown}"
        );
        card.find_element("button.approve")
            .expect("Confirm button")
            .click()
            .unwrap();
        let notice = tab
            .wait_for_element("p.notice")
            .expect("a notice after confirming")
            .get_inner_text()
            .unwrap();
        assert!(notice.starts_with("Confirmed"), "{notice}");

        let out = finish(child, Duration::from_secs(60), "pkcs11-tool --sign");
        expect_ok(&format!("pkcs11-tool --sign -m {}", case.mechanism), &out);
        let signature = std::fs::read(&output).unwrap();
        assert_eq!(
            signature.len() * 4,
            gost_bits(case.key) as usize,
            "{}",
            case.mechanism
        );
        assert!(
            openssl_verify_gost(&cert_der, &digest, &signature),
            "{}: OpenSSL's GOST engine refuses the signature",
            case.mechanism
        );
    }
    let confirmed = dss.audit("confirmation/confirm");
    assert_eq!(confirmed.len(), CASES.len(), "{confirmed:?}");
    assert!(confirmed.iter().all(|e| e.ok()
        && e.detail
            .as_deref()
            .is_some_and(|d| d.ends_with("(confirmation page)"))));
}

/// The session token confirms one sign-in, and 10 documents are signed under it.
#[test]
fn a_package_of_ten_documents_is_confirmed_once() {
    let dss = DssEmulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(&dss, dir.path(), "");
    let alice = dss.demo.user("alice");
    let cert = cert_of(alice, "gost2012-256");
    let label = key_label(&cert.friendly_name, &cert.key);
    isolated(|p| {
        assert_rv(p.initialize_with_config(&config), CKR_OK, "C_Initialize");
        let h = p.open(p.slot_of(SESSION_TOKEN));
        let key = key_of(p, h, &label);
        let phone = dss.phone("alice", false, 1);
        for n in 0..10 {
            let document = format!("Invoice {n} of the package").into_bytes();
            let signature = p
                .sign(
                    h,
                    &Mech::new(CKM_GOSTR3410_WITH_GOSTR3411_12_256),
                    key.private,
                    &document,
                )
                .unwrap_or_else(|rv| panic!("document {n}: {}", rv_name(rv)));
            assert!(
                openssl_verify_gost(&key.cert_der, &openssl_streebog(256, &document), &signature),
                "document {n}"
            );
        }
        let said = expect_ok("demo-confirm", &phone.done());
        assert_eq!(
            said.trim(),
            "confirmed: a sign-in of alice to the signature service"
        );
        assert_rv(p.close(h), CKR_OK, "C_CloseSession");
    });
    let confirmed = dss.audit("confirmation/confirm");
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
    let signed: Vec<_> = dss
        .audit("documents")
        .into_iter()
        .filter(|e| e.ok())
        .collect();
    assert_eq!(signed.len(), 10, "{signed:?}");
}

/// Declined on the phone: CKR_FUNCTION_REJECTED. Not answered within approval_timeout_ms, or before the
/// service lets the operation expire: CKR_FUNCTION_CANCELED. Nothing is signed.
#[test]
fn declined_and_unanswered_confirmations() {
    let dss = DssEmulator::start(&["--confirmation-timeout", "3"]);
    let alice = dss.demo.user("alice");
    let cert = cert_of(alice, "gost2012-512");
    let label = key_label(&cert.friendly_name, &cert.key);
    let dir = tempfile::tempdir().unwrap();
    let sign_with = |config: &Path, phone: Option<bool>| -> CK_RV {
        isolated(|p| {
            assert_rv(p.initialize_with_config(config), CKR_OK, "C_Initialize");
            let h = p.open(p.slot_of(TOKEN));
            let key = key_of(p, h, &label);
            let phone = phone.map(|decline| dss.phone("alice", decline, 1));
            let digest = openssl_streebog(512, b"a document nobody signs");
            let rv = p
                .sign(h, &Mech::new(CKM_GOSTR3410_512), key.private, &digest)
                .err()
                .unwrap_or(CKR_OK);
            if let Some(phone) = phone {
                let said = expect_ok("demo-confirm --decline", &phone.done());
                assert!(said.starts_with("declined: Sign 1 document"), "{said}");
            }
            rv
        })
    };
    // The module's limit (2 s) comes before the service's (3 s) ...
    let short = config_with(&dss, dir.path(), "approval_timeout_ms = 2000\n");
    assert_rv(
        sign_with(&short, Some(true)),
        CKR_FUNCTION_REJECTED,
        "declined",
    );
    assert_rv(
        sign_with(&short, None),
        CKR_FUNCTION_CANCELED,
        "module timeout",
    );
    // ... and the service's (3 s) before the module's (60 s): over well before the module's.
    let long = config_with(&dss, dir.path(), "approval_timeout_ms = 60000\n");
    let t0 = Instant::now();
    assert_rv(
        sign_with(&long, None),
        CKR_FUNCTION_CANCELED,
        "expired at the service",
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());

    assert_eq!(dss.audit("confirmation/decline").len(), 1);
    assert!(dss.audit("documents").iter().all(|e| !e.ok()));
    assert!(dss.audit("confirmation/confirm").is_empty());
}

/// examples/demo-cryptopro.sh as a user runs it (no standard input), on the binaries of this build.
#[test]
fn demo_script_verifies_every_signature() {
    let out = run(Command::new("bash")
        .arg(support::repo_root().join("examples/demo-cryptopro.sh"))
        .env("CLOUDTOKEN_BIN_DIR", support::target_profile_dir())
        .env_remove("CLOUDTOKEN_CONFIG")
        .stdin(Stdio::null()));
    let said = expect_ok("examples/demo-cryptopro.sh", &out);
    assert_eq!(
        said.lines().last(),
        Some("verified 13/13 signatures"),
        "{said}\n{}",
        text(&out.stderr)
    );
}
