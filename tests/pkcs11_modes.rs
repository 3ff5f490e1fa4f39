//! Token modes through the built module against a real csc-server (issue #5, items 1 and 4): "pin"
//! (the application logs in), "protected-path" (C_Login with a NULL PIN, the module asks — also driven
//! by pkcs11-tool), "login-free" (no login at all; the PIN and the code are collected at signing time),
//! and unattended signing from a PIN file and a TOTP secret file. Certificates are visible before any
//! login in every mode. The user's answers come from the shipped examples/prompt/test-prompt.sh.

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use remote_client::{ApiVersion, Authorization, AuthorizeRequest, ClientConfig, CscClient, Secret};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::prelude::*;
use support::{module_path, Service};

const PERIOD: u64 = 5;
/// The unattended token's credential (its TOTP secret is in the token's totp_secret_file).
const SEAL_CRED: &str = "alice-rsa2048";

struct Env {
    svc: Service,
    p: P11,
    alice: PromptDir,
    config: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceCell<Env> = OnceCell::new();
    ENV.get_or_init(|| {
        let svc = Service::lasting_with_totp_period(PERIOD);
        let dir = tempfile::tempdir().unwrap();
        let alice_demo = svc.demo.token_of("alice").clone();
        let alice = PromptDir::new(dir.path().join("prompt-alice"), &svc, &alice_demo.pin);
        let (_, seal) = svc.demo.find(|c| c.id == SEAL_CRED);
        let pin_file = secret_file(&dir.path().join("seal.pin"), &alice_demo.pin);
        let totp_file = secret_file(
            &dir.path().join("seal.totp"),
            seal.totp_secret.as_deref().unwrap(),
        );
        let seal_extra = format!(
            "mode = \"login-free\"\npin_file = {:?}\ntotp_secret_file = {:?}\n\
             totp_credential = {SEAL_CRED:?}\ntotp_period = {PERIOD}\nbatch_size = 1\n",
            pin_file.display().to_string(),
            totp_file.display().to_string()
        );
        let tokens = [
            token_toml(&svc, "Pin Alice", "alice", ""),
            token_toml(
                &svc,
                "Path Alice",
                "alice",
                &format!("mode = \"protected-path\"\n{}", alice.command_toml()),
            ),
            token_toml(
                &svc,
                "Free Alice",
                "alice",
                &format!("mode = \"login-free\"\n{}", alice.command_toml()),
            ),
            token_toml(&svc, "Seal Alice", "alice", &seal_extra),
            token_toml(
                &svc,
                "Path Always",
                "alice",
                &format!(
                    "mode = \"protected-path\"\nalways_authenticate = true\n{}",
                    alice.command_toml()
                ),
            ),
        ];
        let support::p11::flow::Configured { p, config, log } = initialize_on(dir.path(), &tokens);
        Env {
            svc,
            p,
            alice,
            config,
            log,
            _dir: dir,
        }
    })
}

fn label_of(e: &Env, id: &str) -> String {
    e.svc.demo.find(|c| c.id == id).1.label.clone()
}

#[test]
fn pin_mode_signs_after_the_applications_login() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let flags = p.token_flags("Pin Alice");
    assert_ne!(flags & CKF_LOGIN_REQUIRED, 0);
    assert_eq!(flags & CKF_PROTECTED_AUTHENTICATION_PATH, 0);
    let label = label_of(e, "alice-p384");
    let h = p.open(p.slot_of("Pin Alice"));
    // Certificates and public keys before any login; the private key only after it.
    assert_eq!(find_labelled(p, h, CKO_CERTIFICATE, &label).len(), 1);
    assert_eq!(find_labelled(p, h, CKO_PUBLIC_KEY, &label).len(), 1);
    assert!(find_labelled(p, h, CKO_PRIVATE_KEY, &label).is_empty());
    // No protected path: a NULL PIN is the application's mistake.
    assert_rv(
        p.login_null(h, CKU_USER),
        CKR_ARGUMENTS_BAD,
        "C_Login(NULL)",
    );
    let pin = &e.svc.demo.token_of("alice").pin;
    assert_rv(p.login(h, CKU_USER, pin), CKR_OK, "C_Login");
    let key = key_of(p, h, &label);
    // No prompt on this token: the SMS goes out at C_SignInit and the application gives the code.
    let before = e.svc.sms_messages("alice-p384").len();
    let case = cases_for(CKM_ECDSA_SHA384, b"pin mode").remove(0);
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    let code = e.svc.wait_sms_code("alice-p384", before);
    assert_rv(
        p.login(h, CKU_CONTEXT_SPECIFIC, &code),
        CKR_OK,
        "context login with the SMS code",
    );
    let sig = ok(p.sign_only(h, &case.input), "C_Sign");
    case.assert_verified(&key, &sig);
    assert!(
        e.alice.take_questions().is_empty(),
        "no prompt on this token"
    );
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn protected_path_asks_for_the_pin_itself() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let comm = own_process_name();
    let flags = p.token_flags("Path Alice");
    assert_ne!(flags & CKF_LOGIN_REQUIRED, 0);
    assert_ne!(flags & CKF_PROTECTED_AUTHENTICATION_PATH, 0);
    let label = label_of(e, "alice-p256");
    let h = p.open(p.slot_of("Path Alice"));
    assert_eq!(find_labelled(p, h, CKO_CERTIFICATE, &label).len(), 1);
    e.alice.take_questions();

    // The user cancels the PIN dialog.
    e.alice.plan(&["cancel"]);
    assert_rv(
        p.login_null(h, CKU_USER),
        CKR_FUNCTION_CANCELED,
        "C_Login(NULL) cancelled",
    );
    assert_eq!(p.session_state(h), CKS_RO_PUBLIC_SESSION);
    let q = e.alice.take_questions();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].get("kind"), "pin");
    assert_eq!(q[0].get("token"), "Path Alice");
    assert_eq!(q[0].get("key"), "");
    assert_eq!(q[0].get("signatures"), "0");
    assert_eq!(q[0].get("process"), comm);
    assert_eq!(
        q[0].get("description"),
        format!("Log in to 'Path Alice' for {comm}")
    );

    // The user answers: logged in, and the first signature asks for the code.
    assert_rv(p.login_null(h, CKU_USER), CKR_OK, "C_Login(NULL)");
    assert_eq!(p.session_state(h), CKS_RO_USER_FUNCTIONS);
    let key = key_of(p, h, &label);
    ok(sign_verified(p, h, &key, b"protected path"), "sign");
    let q = e.alice.take_questions();
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[1].get("kind"), "otp");
    assert_eq!(q[1].get("otp_type"), "totp");
    assert_eq!(q[1].get("credential"), "alice-p256");
    assert_eq!(q[1].get("key"), label);
    assert_eq!(q[1].get("signatures"), "30");
    assert_eq!(q[1].get("attempt"), "1");
    assert_eq!(
        q[1].get("description"),
        format!("Sign 30 documents with '{label}' for {comm}")
    );
    // A PIN given by the application is accepted too.
    assert_rv(p.logout(h), CKR_OK, "C_Logout");
    let pin = &e.svc.demo.token_of("alice").pin;
    assert_rv(p.login(h, CKU_USER, pin), CKR_OK, "C_Login with a PIN");
    assert_rv(p.logout(h), CKR_OK, "C_Logout");

    // A wrong PIN typed at the login is found at the first signature, which logs the user out.
    e.alice.plan(&["wrong"]);
    assert_rv(p.login_null(h, CKU_USER), CKR_OK, "C_Login(NULL)");
    let key = key_of(p, h, &label);
    assert_eq!(
        sign_verified(p, h, &key, b"wrong pin"),
        // The refusal ended the login; C_Sign may not say CKR_PIN_INCORRECT.
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    assert_eq!(p.session_state(h), CKS_RO_PUBLIC_SESSION);
    e.alice.take_questions();
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

/// A key with CKA_ALWAYS_AUTHENTICATE on a protected-path token: the context login comes with a NULL
/// PIN too, and the module asks for the code itself.
#[test]
fn protected_path_context_login_without_a_value() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let id = "alice-p256";
    let h = p.open(p.slot_of("Path Always"));
    assert_rv(p.login_null(h, CKU_USER), CKR_OK, "C_Login(NULL)");
    let key = key_of(p, h, &label_of(e, id));
    assert_eq!(
        ok(p.attr(h, key.private, CKA_ALWAYS_AUTHENTICATE), "attr"),
        [CK_TRUE]
    );
    e.alice.take_questions();
    let case = cases_for(CKM_ECDSA_SHA256, b"context login, NULL").remove(0);
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    // Without the context login the key refuses to sign...
    assert_eq!(p.sign_only(h, &case.input), Err(CKR_USER_NOT_LOGGED_IN));
    assert!(e.alice.take_questions().is_empty());
    // ... with it, given as NULL_PTR, the module asks for the code (one signature's worth).
    let before = e.svc.granted(id);
    assert_rv(
        p.sign_init(h, &case.mech, key.private),
        CKR_OK,
        "C_SignInit",
    );
    assert_rv(
        p.login_null(h, CKU_CONTEXT_SPECIFIC),
        CKR_OK,
        "C_Login(CKU_CONTEXT_SPECIFIC, NULL)",
    );
    let q = e.alice.take_questions();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!((q[0].get("kind"), q[0].get("signatures")), ("otp", "1"));
    let sig = ok(p.sign_only(h, &case.input), "C_Sign");
    case.assert_verified(&key, &sig);
    assert_eq!(e.svc.granted(id), before + 1);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

#[test]
fn pkcs11_tool_logs_in_through_the_protected_path() {
    let _s = serial();
    let e = env();
    e.alice.take_questions();
    let (_, cred) = e.svc.demo.find(|c| c.id == "alice-p256");
    let dir = tempfile::tempdir().unwrap();
    let message = b"signed by pkcs11-tool without --pin";
    std::fs::write(dir.path().join("msg"), message).unwrap();
    let id: String = ckaid_source(cred.id.as_str())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = Command::new("pkcs11-tool")
        .env("CLOUDTOKEN_CONFIG", &e.config)
        .arg("--module")
        .arg(module_path())
        .args([
            "--token-label",
            "Path Alice",
            "--login",
            "--sign",
            "--id",
            &id,
        ])
        .args(["-m", "ECDSA-SHA256", "--signature-format", "openssl"])
        .arg("--input-file")
        .arg(dir.path().join("msg"))
        .arg("--output-file")
        .arg(dir.path().join("sig"))
        .output()
        .expect("run pkcs11-tool");
    assert!(
        out.status.success(),
        "pkcs11-tool: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = std::fs::read(dir.path().join("sig")).unwrap();
    let cert = {
        let p = e.p;
        let h = p.open(p.slot_of("Path Alice"));
        let certs = find_labelled(p, h, CKO_CERTIFICATE, &cred.label);
        let der = ok(p.attr(h, certs[0], CKA_VALUE), "certificate");
        assert_rv(p.close(h), CKR_OK, "C_CloseSession");
        der
    };
    assert!(support::openssl_verify(
        &cert,
        "sha256",
        &sha("sha256", message),
        &sig,
        support::Scheme::EcdsaDer
    ));
    let q = e.alice.take_questions();
    let kinds: Vec<&str> = q.iter().map(|q| q.get("kind")).collect();
    assert_eq!(kinds, ["pin", "otp"], "{q:?}");
    assert!(q.iter().all(|q| q.get("process") == "pkcs11-tool"));
}

/// SHA-256 of a credential ID's bytes: its CKA_ID is the first 8 bytes.
fn ckaid_source(data: &str) -> Vec<u8> {
    sha("sha256", data.as_bytes())
}

#[test]
fn login_free_signs_without_any_login() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let comm = own_process_name();
    let flags = p.token_flags("Free Alice");
    assert_eq!(
        flags & (CKF_LOGIN_REQUIRED | CKF_PROTECTED_AUTHENTICATION_PATH),
        0
    );
    let id = "alice-p384";
    let label = label_of(e, id);
    let h = p.open(p.slot_of("Free Alice"));
    assert_eq!(p.session_state(h), CKS_RO_PUBLIC_SESSION);
    let key = key_of(p, h, &label);
    assert_eq!(
        ok(p.attr(h, key.private, CKA_PRIVATE), "CKA_PRIVATE"),
        [CK_FALSE],
        "the key is for everyone who can use the token"
    );
    e.alice.take_questions();
    let sms_before = e.svc.sms(id).len();
    let granted_before = e.svc.granted(id);

    ok(
        sign_verified(p, h, &key, b"login-free 1"),
        "first signature",
    );
    let q = e.alice.take_questions();
    let kinds: Vec<&str> = q.iter().map(|q| q.get("kind")).collect();
    assert_eq!(kinds, ["pin", "otp"], "{q:?}");
    let description = format!("Sign 30 documents with '{label}' for {comm}");
    for q in &q {
        assert_eq!(q.get("description"), description);
        assert_eq!(q.get("signatures"), "30");
        assert_eq!(q.get("key"), label);
    }
    assert_eq!(q[1].get("otp_type"), "sms");
    // The code was sent right before the question, with the same words.
    let sent = e.svc.sms(id);
    assert_eq!(sent.len(), sms_before + 1);
    assert_eq!(sent.last().unwrap().1, description);

    // The batch covers the next signature: nobody is asked, nothing is sent.
    ok(
        sign_verified(p, h, &key, b"login-free 2"),
        "second signature",
    );
    assert!(e.alice.take_questions().is_empty());
    assert_eq!(e.svc.sms(id).len(), sms_before + 1);
    assert_eq!(e.svc.granted(id), granted_before + 1);

    // C_Login is still accepted; the PIN then comes from it and only the code is asked.
    let pin = &e.svc.demo.token_of("alice").pin;
    assert_rv(p.login(h, CKU_USER, pin), CKR_OK, "C_Login");
    assert_eq!(p.session_state(h), CKS_RO_USER_FUNCTIONS);
    ok(
        sign_verified(p, h, &key, b"login-free 3"),
        "signature after C_Login",
    );
    let q = e.alice.take_questions();
    let kinds: Vec<&str> = q.iter().map(|q| q.get("kind")).collect();
    assert_eq!(kinds, ["otp"], "{q:?}");
    assert_rv(p.logout(h), CKR_OK, "C_Logout");

    // Cancelling the PIN question cancels the signature, and nothing was sent.
    let sms_now = e.svc.sms(id).len();
    e.alice.plan(&["cancel"]);
    let other = key_of(p, h, &label_of(e, "alice-rsa3072"));
    assert_eq!(
        sign_verified(p, h, &other, b"cancelled"),
        Err(CKR_FUNCTION_CANCELED)
    );
    assert_eq!(e.svc.sms("alice-rsa3072").len(), 0);
    assert_eq!(e.svc.sms(id).len(), sms_now);
    e.alice.take_questions();
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn unattended_seal_signs_with_nobody_there() {
    let _s = serial();
    let e = env();
    let p = e.p;
    assert_eq!(
        p.token_flags("Seal Alice") & (CKF_LOGIN_REQUIRED | CKF_PROTECTED_AUTHENTICATION_PATH),
        0
    );
    let label = label_of(e, SEAL_CRED);
    let h = p.open(p.slot_of("Seal Alice"));
    let key = key_of(p, h, &label);
    let before = e.svc.authorizations(SEAL_CRED).len();
    // batch_size = 1: every signature is an authorization with a code of its own; the second waits for
    // the next time step instead of replaying the first one's code.
    ok(sign_verified(p, h, &key, b"seal 1"), "first seal");
    ok(sign_verified(p, h, &key, b"seal 2"), "second seal");
    let auths = e.svc.authorizations(SEAL_CRED);
    let outcomes: Vec<&str> = auths[before..].iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["ok", "ok"], "no code was refused");

    // Another process uses this time step's code first: the service refuses the module's code, and
    // the module takes the next step instead of failing.
    let (alice, seal) = e.svc.demo.find(|c| c.id == SEAL_CRED);
    let mut cc = ClientConfig::new(e.svc.url.clone());
    cc.api_version = ApiVersion::V2;
    cc.ca_file = Some(e.svc.ca_file());
    let client = CscClient::new(&cc).unwrap();
    let access = client
        .refresh(&Secret::new(e.svc.refresh_token("alice")))
        .unwrap()
        .access_token;
    // Start right after a step boundary, so that the module's next code is this step's.
    let wait = PERIOD as f64 - now_secs() % PERIOD as f64;
    std::thread::sleep(Duration::from_secs_f64(wait + 0.1));
    let step = now_secs() as u64 / PERIOD;
    let stolen = AuthorizeRequest {
        credential_id: SEAL_CRED.into(),
        num_signatures: 1,
        hashes: Vec::new(),
        hash_algorithm_oid: None,
        pin: Some(Secret::new(alice.pin.clone())),
        otp: Some(Secret::new(support::totp::code_at(
            seal.totp_secret.as_deref().unwrap(),
            PERIOD,
            step,
        ))),
        description: Some("another process".into()),
        client_data: None,
    };
    assert!(matches!(
        client.authorize(&access, &stolen).unwrap(),
        Authorization::Granted(_)
    ));
    let before = e.svc.authorizations(SEAL_CRED).len();
    ok(
        sign_verified(p, h, &key, b"seal 3"),
        "seal after a collision",
    );
    assert_eq!(
        now_secs() as u64 / PERIOD,
        step + 1,
        "the module waited for the next step"
    );
    let auths = e.svc.authorizations(SEAL_CRED);
    let outcomes: Vec<&str> = auths[before..].iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["invalid_otp: Invalid OTP", "ok"]);
    let log = std::fs::read_to_string(&e.log).unwrap();
    assert!(log.contains("trying the next time step"));
    assert!(e.alice.take_questions().is_empty(), "nobody was asked");
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
}
