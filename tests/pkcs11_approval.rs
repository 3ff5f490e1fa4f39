//! Out-of-band approval through the built module against a real csc-server (issue #5, item 3, the
//! module's side): C_Sign sends `credentials/authorize`, the service answers 202, the module polls
//! `credentials/authorizeCheck` with back-off while the user answers on the service's approval page
//! (driven here with plain HTTPS form posts, as a browser without script would): approve → a verified
//! signature, decline → CKR_FUNCTION_REJECTED, nobody answers → CKR_FUNCTION_CANCELED (the module's
//! approval_timeout_ms, or the service's own expiry), and one approval covering a SCAL 1 batch.

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use std::time::{Duration, Instant};
use support::page::Page;
use support::prelude::*;
use support::Service;

const SCAL2: &str = "alice-p256-approve";
const SCAL1: &str = "alice-rsa2048-approve";
/// The service's own deadline for a decision (`serve --approval-timeout`).
const SERVICE_TIMEOUT_S: u64 = 8;
const IMPATIENT_MS: u64 = 1500;

struct Env {
    svc: Service,
    p: P11,
    alice: PromptDir,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceCell<Env> = OnceCell::new();
    ENV.get_or_init(|| {
        let svc = lasting(|| {
            Service::start_fresh_init_serve(
                &["--totp-period", "5"],
                &["--approval-timeout", &SERVICE_TIMEOUT_S.to_string()],
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let alice = PromptDir::new(
            dir.path().join("alice"),
            &svc,
            &svc.demo.token_of("alice").pin,
        );
        let tokens = [
            token_toml(
                &svc,
                "Approve Alice",
                "alice",
                "approval_timeout_ms = 30000\n",
            ),
            token_toml(
                &svc,
                "Impatient Alice",
                "alice",
                &format!("approval_timeout_ms = {IMPATIENT_MS}\n"),
            ),
            token_toml(
                &svc,
                "Free Approve",
                "alice",
                &format!(
                    "mode = \"login-free\"\n{}approval_timeout_ms = 30000\n",
                    alice.command_toml()
                ),
            ),
        ];
        let support::p11::flow::Configured { p, log, .. } = initialize_on(dir.path(), &tokens);
        Env {
            svc,
            p,
            alice,
            log,
            _dir: dir,
        }
    })
}

fn label_of(e: &Env, id: &str) -> String {
    e.svc.demo.find(|c| c.id == id).1.label.clone()
}

/// Approvals the module collected for `credential` (a SAD handed out by `authorizeCheck`).
fn approvals_collected(svc: &Service, credential: &str) -> usize {
    svc.audit_of("credentials/authorizeCheck", credential)
        .iter()
        .filter(|a| a.ok())
        .count()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SCAL 2 card is recognised by its document's hash (shown in full in the card's `title`).
fn hash_marker(message: &[u8]) -> String {
    format!("title=\"{}\"", hex(&sha("sha256", message)))
}

/// Signs `message` on another thread (C_Sign blocks while the module polls) and returns the result
/// and how long it took.
fn sign_in_background(
    token: &'static str,
    id: &'static str,
    message: &'static [u8],
    login: bool,
) -> std::thread::JoinHandle<(Result<(), CK_RV>, Duration)> {
    std::thread::spawn(move || {
        let e = env();
        let p = e.p;
        let h = p.open(p.slot_of(token));
        if login {
            assert_rv(
                p.login(h, CKU_USER, &e.svc.demo.token_of("alice").pin),
                CKR_OK,
                "C_Login",
            );
        }
        let key = key_of(p, h, &label_of(e, id));
        let started = Instant::now();
        let result = sign_verified(p, h, &key, message);
        let took = started.elapsed();
        assert_rv(p.close(h), CKR_OK, "C_CloseSession");
        (result, took)
    })
}

#[test]
fn approved_on_the_page_then_signed() {
    let _s = serial();
    let e = env();
    let message: &'static [u8] = b"approve me (pkcs11_approval)";
    let before = approvals_collected(&e.svc, SCAL2);
    let signer = sign_in_background("Approve Alice", SCAL2, message, true);
    let mut page = Page::sign_in(&e.svc, "alice");
    let card = page.decide(&hash_marker(message), "approve");
    // The user saw what the module described and which key.
    let description = format!(
        "Sign 1 document with &#39;{}&#39; for {}",
        label_of(e, SCAL2),
        own_process_name()
    );
    assert!(
        card.contains(&description) || card.contains(&description.replace("&#39;", "'")),
        "{card}"
    );
    let (result, _) = signer.join().unwrap();
    assert_eq!(result, Ok(()), "the approved signature");
    assert_eq!(approvals_collected(&e.svc, SCAL2), before + 1);
    let log = std::fs::read_to_string(&e.log).unwrap();
    assert!(log.contains("the user approved the request for alice-p256-approve"));
}

#[test]
fn declined_on_the_page() {
    let _s = serial();
    let e = env();
    let message: &'static [u8] = b"decline me (pkcs11_approval)";
    let signer = sign_in_background("Approve Alice", SCAL2, message, true);
    let mut page = Page::sign_in(&e.svc, "alice");
    page.decide(&hash_marker(message), "decline");
    let (result, took) = signer.join().unwrap();
    assert_eq!(result, Err(CKR_FUNCTION_REJECTED));
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn nobody_decides_in_time() {
    let _s = serial();
    // The module's own deadline: approval_timeout_ms.
    let (result, took) = sign_in_background("Impatient Alice", SCAL2, b"too late (module)", true)
        .join()
        .unwrap();
    assert_eq!(result, Err(CKR_FUNCTION_CANCELED));
    assert!(
        took >= Duration::from_millis(IMPATIENT_MS) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The service's deadline comes first: the request expires there.
    let (result, took) = sign_in_background("Approve Alice", SCAL2, b"too late (service)", true)
        .join()
        .unwrap();
    assert_eq!(result, Err(CKR_FUNCTION_CANCELED));
    assert!(
        // The service counts whole seconds.
        took >= Duration::from_secs(SERVICE_TIMEOUT_S - 1) && took < Duration::from_secs(20),
        "{took:?}"
    );
    let log = std::fs::read_to_string(&env().log).unwrap();
    assert!(log.contains("within approval_timeout_ms (1500 ms)"));
    assert!(log.contains("expired at the service"));
}

#[test]
fn one_approval_covers_a_scal1_batch() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let h = p.open(p.slot_of("Approve Alice"));
    assert_rv(
        p.login(h, CKU_USER, &e.svc.demo.token_of("alice").pin),
        CKR_OK,
        "C_Login",
    );
    let key = key_of(p, h, &label_of(e, SCAL1));
    let before = approvals_collected(&e.svc, SCAL1);
    let approver = std::thread::spawn(|| {
        let e = env();
        let mut page = Page::sign_in(&e.svc, "alice");
        page.decide(&format!("{SCAL1}, SCAL 1"), "approve")
    });
    ok(sign_verified(p, h, &key, b"batch 1"), "first of the batch");
    let card = approver.join().unwrap();
    assert!(card.contains("30 documents"), "{card}");
    for i in 2..=4 {
        ok(
            sign_verified(p, h, &key, format!("batch {i}").as_bytes()),
            "rest of the batch",
        );
    }
    assert_eq!(
        approvals_collected(&e.svc, SCAL1),
        before + 1,
        "one approval for the batch"
    );
    let asked = e.svc.authorizations(SCAL1);
    assert_eq!(asked.len(), 1, "one authorization request: {asked:?}");
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn login_free_token_asks_the_pin_and_waits_for_the_approval() {
    let _s = serial();
    let e = env();
    e.alice.take_questions();
    let message: &'static [u8] = b"login-free approval (pkcs11_approval)";
    let signer = sign_in_background("Free Approve", SCAL2, message, false);
    let mut page = Page::sign_in(&e.svc, "alice");
    page.decide(&hash_marker(message), "approve");
    let (result, _) = signer.join().unwrap();
    assert_eq!(result, Ok(()));
    let q = e.alice.take_questions();
    // The PIN from the prompt; no code: the approval is the second factor.
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].get("kind"), "pin");
    assert_eq!(q[0].get("credential"), SCAL2);
}
