//! Out-of-band approval end to end (issue #5): a CSC v2 client asks to sign with an approval
//! credential, the service answers 202 with a handle, the user answers on the approval page — in
//! headless Chromium, or with plain HTTPS form posts — and the client's `authorizeCheck` polls get the
//! SAD, the refusal, or the expiry. Signatures are verified with openssl.
//!
//! Needs Debian's `chromium` (tests/run.sh installs it); `CHROMIUM_BIN` overrides its path.

use headless_chrome::protocol::cdp::Network::CookieSameSite;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use remote_client::{
    oid, ApiVersion, Authorization, AuthorizeRequest, ClientConfig, CscClient, CscErrorCode, Error,
    Reason, Secret, SignHashRequest,
};
use sha2::Digest;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::browser::{fill, launch_chromium};
use support::page::{input_value, FormClient};
use support::{account_code, openssl_verify, Scheme, Service};

const SCAL2_APPROVE: &str = "alice-p256-approve";

/// Held from taking an account code to the end of the sign-in that uses it: the service accepts only
/// codes newer than the last one it accepted, so parallel sign-ins must use their codes in order.
static PAGE_LOGIN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn page_login_turn() -> std::sync::MutexGuard<'static, ()> {
    PAGE_LOGIN.lock().unwrap_or_else(|p| p.into_inner())
}

fn client(svc: &Service, version: ApiVersion) -> CscClient {
    let mut cfg = ClientConfig::new(svc.url.clone());
    cfg.api_version = version;
    cfg.ca_file = Some(svc.ca_file());
    cfg.request_timeout = Duration::from_secs(30);
    CscClient::new(&cfg).expect("CSC client")
}

fn access(svc: &Service, c: &CscClient, user: &str) -> Secret {
    c.refresh(&Secret::new(svc.refresh_token(user)))
        .expect("log in with the refresh token")
        .access_token
}

/// A description no other test uses: the approval page lists all of alice's waiting requests, and
/// the tests of this file share one service.
fn unique_description(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{what} #{}-{nanos} (tests/approval.rs)",
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

/// `credentials/authorize` with alice's PIN and no OTP; expects the 202 answer and returns the handle.
fn ask_approval(
    svc: &Service,
    c: &CscClient,
    at: &Secret,
    hash: &[u8],
    description: &str,
) -> Secret {
    let request = AuthorizeRequest {
        credential_id: SCAL2_APPROVE.into(),
        num_signatures: 1,
        hashes: vec![hash.to_vec()],
        hash_algorithm_oid: Some(oid::SHA256.into()),
        pin: Some(Secret::new(svc.demo.token_of("alice").pin.clone())),
        otp: None,
        description: Some(description.into()),
        client_data: None,
    };
    match c.authorize(at, &request).expect("authorize") {
        Authorization::Pending { handle } => handle,
        Authorization::Granted(_) => panic!("an approval credential answered with a SAD at once"),
    }
}

fn assert_pending(c: &CscClient, at: &Secret, handle: &Secret) {
    match c.authorize_check(at, handle) {
        Ok(Authorization::Pending { .. }) => {}
        Ok(Authorization::Granted(_)) => panic!("granted before the user answered"),
        Err(e) => panic!("authorizeCheck: {e}"),
    }
}

fn csc_error(r: remote_client::Result<Authorization>) -> Error {
    match r {
        Err(e) => e,
        Ok(a) => panic!("expected an error, got {}", describe(&a)),
    }
}

fn describe(a: &Authorization) -> &'static str {
    match a {
        Authorization::Pending { .. } => "pending",
        Authorization::Granted(_) => "a SAD",
    }
}

/// Approve in a real browser: sign in, find the request, look at it, press Approve. Then the client
/// collects the SAD and signs, and openssl verifies the signature.
#[test]
fn approve_in_chromium_then_sign() {
    let svc = Service::shared();
    let c = client(svc, ApiVersion::V2);
    let at = access(svc, &c, "alice");
    let description = unique_description("Sign offer.pdf");
    let hash = sha256(description.as_bytes());
    let handle = ask_approval(svc, &c, &at, &hash, &description);
    assert_pending(&c, &at, &handle);

    let profile = tempfile::tempdir().unwrap();
    let browser = launch_chromium(&svc.ca_file(), profile.path());
    let tab = browser.new_tab().expect("tab");
    tab.set_default_timeout(Duration::from_secs(20));
    tab.navigate_to(&format!("{}/approve", svc.url))
        .and_then(|t| t.wait_until_navigated())
        .expect("open the approval page");

    let alice = svc.demo.token_of("alice");
    let turn = page_login_turn();
    fill(&tab, "#username", &alice.user);
    fill(&tab, "#password", &alice.password);
    fill(&tab, "#code", &account_code(alice));
    tab.wait_for_element("button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    // Signed in: the page has a sign-out form.
    tab.wait_for_element("form[action='/approve/logout']")
        .expect("the request list after signing in");
    drop(turn);

    // The session cookie as the browser holds it.
    let cookies = tab.get_cookies().expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name == "__Host-csc-session")
        .unwrap_or_else(|| panic!("no session cookie after signing in: {cookies:?}"));
    assert!(session.http_only && session.secure, "{session:?}");
    assert!(
        matches!(session.same_site, Some(CookieSameSite::Strict)),
        "{session:?}"
    );

    // Our request, among whatever else waits for alice.
    let deadline = Instant::now() + Duration::from_secs(20);
    let card = loop {
        let cards = tab.wait_for_elements("article").expect("request cards");
        let mine = cards
            .into_iter()
            .find(|a| a.get_inner_text().is_ok_and(|t| t.contains(&description)));
        if let Some(card) = mine {
            break card;
        }
        assert!(Instant::now() < deadline, "the request is not on the page");
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = card.get_inner_text().unwrap();
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    for shown in [
        "Alice Example (P-256, approval)",
        "alice-p256-approve, SCAL 2",
        "1 document",
        "SHA-256",
        &hex[..16],
        &hex[hex.len() - 8..],
        "cloudtoken-remote-client",
        "127.0.0.1",
    ] {
        assert!(text.contains(shown), "{shown:?} not on the card:\n{text}");
    }
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("screenshot");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("approval-page.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("approval page screenshot: {}", shot.display());

    card.find_element("button.approve")
        .expect("Approve button")
        .click()
        .unwrap();
    let notice = tab
        .wait_for_element("p.notice")
        .expect("a notice after approving")
        .get_inner_text()
        .unwrap();
    assert!(notice.starts_with("Approved"), "{notice}");
    assert!(
        tab.get_url().ends_with("/approve?done=approved"),
        "{}",
        tab.get_url()
    );

    let sad = match c.authorize_check(&at, &handle).expect("authorizeCheck") {
        Authorization::Granted(sad) => sad,
        Authorization::Pending { .. } => panic!("still pending after Approve"),
    };
    let cert = c
        .credential_info(&at, SCAL2_APPROVE)
        .expect("credential info")
        .certificates
        .remove(0);
    let sign = |hashes: Vec<Vec<u8>>| {
        c.sign_hash(
            &at,
            &SignHashRequest {
                credential_id: SCAL2_APPROVE.into(),
                sad: sad.value.clone(),
                hashes,
                hash_algorithm_oid: oid::SHA256.into(),
                sign_algorithm_oid: oid::ECDSA_WITH_SHA256.into(),
                sign_algorithm_params: None,
            },
        )
    };
    // SCAL 2: the SAD signs the approved hash only.
    let other = sign(vec![sha256(b"not what alice saw")]).unwrap_err();
    assert_eq!(other.reason(), Reason::HashNotAuthorized, "{other}");
    let signatures = sign(vec![hash.clone()]).expect("signHash");
    assert!(openssl_verify(
        &cert,
        "sha256",
        &hash,
        &signatures[0],
        Scheme::EcdsaDer
    ));
    // The handle was collected.
    let again = csc_error(c.authorize_check(&at, &handle));
    assert_eq!(again.reason(), Reason::InvalidRequest, "{again}");
}

/// Decline with plain form posts, checking the page's defences on the way: security headers, the
/// sign-in form's CSRF token, a wrong code, a forged decision.
#[test]
fn decline_with_a_form_post() {
    let svc = Service::shared();
    let c = client(svc, ApiVersion::V2);
    let at = access(svc, &c, "alice");
    let description = unique_description("Sign <lease> & \"annex\"");
    let handle = ask_approval(svc, &c, &at, &sha256(description.as_bytes()), &description);

    let mut page = FormClient::new(svc);
    let login = page.get("/approve");
    assert_eq!(login.status, 200);
    let h = |name: &str| {
        login
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(h("content-security-policy").starts_with("default-src 'none'"));
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("cache-control"), "no-store");
    let login_cookie = login.set_cookie("__Host-csc-login");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(login_cookie.contains(attr), "{login_cookie}");
    }
    let csrf = input_value(&login.body, 0, "csrf").to_owned();
    let alice = svc.demo.token_of("alice");

    // Without the sign-in form's cookie, the form is refused even with the right password.
    let mut stranger = FormClient::new(svc);
    let forged = stranger.post(
        "/approve/login",
        &[
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", &alice.password),
            ("code", "000000"),
        ],
        &[],
    );
    assert_eq!(forged.status, 403);

    // A wrong code: the form comes back with a message and a new token.
    let turn = page_login_turn();
    let good_code = account_code(alice);
    let wrong_code = format!(
        "{:06}",
        (good_code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let wrong = page.post(
        "/approve/login",
        &[
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", &alice.password),
            ("code", &wrong_code),
        ],
        &[],
    );
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("Wrong user name, password or code."),
        "{}",
        wrong.body
    );
    let csrf = input_value(&wrong.body, 0, "csrf").to_owned();

    let signed_in = page.post(
        "/approve/login",
        &[
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", &alice.password),
            ("code", &good_code),
        ],
        &[],
    );
    drop(turn);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(
        signed_in.headers.get("location").unwrap().to_str().unwrap(),
        "/approve"
    );
    let session_cookie = signed_in.set_cookie("__Host-csc-session");
    for attr in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(session_cookie.contains(attr), "{session_cookie}");
    }

    let list = page.get("/approve");
    assert_eq!(list.status, 200);
    // The description is shown escaped, never as markup.
    let escaped = description
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let at_card = list
        .body
        .find(&escaped)
        .unwrap_or_else(|| panic!("request not listed:\n{}", list.body));
    assert!(!list.body.contains("<lease>"));
    let request_id = input_value(&list.body, at_card, "request").to_owned();
    let session_csrf = input_value(&list.body, at_card, "csrf").to_owned();

    // A decision without the session's CSRF token, or posted from another site, changes nothing.
    let no_token = page.post(
        "/approve/decide",
        &[
            ("csrf", "forged"),
            ("request", &request_id),
            ("decision", "approve"),
        ],
        &[],
    );
    assert_eq!(no_token.status, 403);
    let cross_site = page.post(
        "/approve/decide",
        &[
            ("csrf", &session_csrf),
            ("request", &request_id),
            ("decision", "approve"),
        ],
        &[("origin", "https://evil.example")],
    );
    assert_eq!(cross_site.status, 403);
    assert_pending(&c, &at, &handle);

    let declined = page.post(
        "/approve/decide",
        &[
            ("csrf", &session_csrf),
            ("request", &request_id),
            ("decision", "decline"),
        ],
        &[],
    );
    assert_eq!(declined.status, 303);
    assert_eq!(
        declined.headers.get("location").unwrap().to_str().unwrap(),
        "/approve?done=declined"
    );
    assert!(page
        .get("/approve?done=declined")
        .body
        .contains("Declined."));

    // The client learns of the refusal, on every poll.
    for _ in 0..2 {
        let e = csc_error(c.authorize_check(&at, &handle));
        assert_eq!(e.reason(), Reason::AccessDenied, "{e}");
        match &e {
            Error::Csc {
                status,
                code,
                description,
                ..
            } => {
                assert_eq!(*status, 403);
                assert_eq!(*code, CscErrorCode::AccessDenied);
                assert_eq!(description, "The user declined the request");
            }
            other => panic!("{other}"),
        }
    }

    // Signed out, the page is the sign-in form again.
    let out = page.post("/approve/logout", &[("csrf", &session_csrf)], &[]);
    assert_eq!(out.status, 303);
    assert!(page.get("/approve").body.contains("name=\"password\""));
}

/// Nobody answers: after `--approval-timeout` the poll reports the expiry.
#[test]
fn unanswered_request_expires() {
    let svc = Service::start_fresh_with(&["--approval-timeout", "2"]);
    let c = client(&svc, ApiVersion::V2);
    let at = access(&svc, &c, "alice");
    let description = unique_description("Sign late.pdf");
    let handle = ask_approval(&svc, &c, &at, &sha256(b"late"), &description);
    assert_pending(&c, &at, &handle);
    std::thread::sleep(Duration::from_millis(2500));
    let e = csc_error(c.authorize_check(&at, &handle));
    match &e {
        Error::Csc {
            status,
            code,
            description,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, CscErrorCode::InvalidRequest);
            assert_eq!(description, "Request expired");
        }
        other => panic!("{other}"),
    }
    assert_eq!(e.reason(), Reason::InvalidRequest);
}

/// What clients learn before they ask: v2 `credentials/info` describes an approval credential with a
/// PIN and no OTP, `info` offers authorizeCheck, and CSC v1, which cannot poll, gets a clear refusal.
#[test]
fn approval_credentials_in_info_and_v1() {
    let svc = Service::shared();
    let v2 = client(svc, ApiVersion::V2);
    let at = access(svc, &v2, "alice");
    assert!(v2
        .info()
        .unwrap()
        .methods
        .iter()
        .any(|m| m == "credentials/authorizeCheck"));
    let info = v2.credential_info(&at, SCAL2_APPROVE).unwrap();
    assert!(info.auth.pin.is_some());
    assert!(info.auth.otp.is_none(), "{:?}", info.auth.otp);
    assert_eq!(info.auth.expression.as_deref(), Some("PIN"));
    assert_eq!(info.scal, remote_client::Scal::Two);
    let batch = v2.credential_info(&at, "alice-rsa2048-approve").unwrap();
    assert_eq!(batch.scal, remote_client::Scal::One);
    assert!(batch.multisign >= 60);

    let v1 = client(svc, ApiVersion::V1);
    let at1 = access(svc, &v1, "alice");
    let e = v1
        .authorize(
            &at1,
            &AuthorizeRequest {
                credential_id: SCAL2_APPROVE.into(),
                num_signatures: 1,
                hashes: vec![sha256(b"v1")],
                hash_algorithm_oid: Some(oid::SHA256.into()),
                pin: Some(Secret::new(svc.demo.token_of("alice").pin.clone())),
                otp: None,
                description: None,
                client_data: None,
            },
        )
        .map(|a| describe(&a))
        .unwrap_err();
    assert_eq!(e.reason(), Reason::InvalidRequest, "{e}");
    assert!(e.to_string().contains("CSC API v2"), "{e}");
}
