//! Out-of-band approval through the service: queuing, the approval page's login and decisions, and
//! the client's polls, with the settable clock.

use super::*;
use crate::approval::Decision;
use crate::sessions::PageLoginError;

const P256_APPROVE: &str = "alice-p256-approve";
const RSA_APPROVE: &str = "alice-rsa2048-approve";

struct Ask<'a> {
    id: &'a str,
    n: u64,
    hashes: Option<Vec<Vec<u8>>>,
    pin: &'a str,
    otp: Option<&'a str>,
    can_poll: bool,
}

impl<'a> Ask<'a> {
    fn new(id: &'a str, pin: &'a str, hashes: Vec<Vec<u8>>) -> Ask<'a> {
        Ask {
            id,
            n: hashes.len() as u64,
            hashes: Some(hashes),
            pin,
            otp: None,
            can_poll: true,
        }
    }
}

fn ask(f: &Fixture, caller: &Caller, a: Ask<'_>) -> CscResult<Authorization> {
    f.service.authorize(
        caller,
        AuthorizeRequest {
            credential_id: a.id,
            num_signatures: a.n,
            hashes: a.hashes,
            hash_algo: Some(oid::SHA256),
            pin: Some(Zeroizing::new(a.pin.to_owned())),
            otp: a.otp.map(|o| Zeroizing::new(o.to_owned())),
            description: Some("Sign contract.pdf"),
            client: Some("127.0.0.1, test client"),
            can_poll: a.can_poll,
        },
    )
}

fn pending(a: CscResult<Authorization>) -> (Zeroizing<String>, String) {
    match a {
        Ok(Authorization::Pending { handle, id }) => (handle, id),
        other => panic!("not pending: {other:?}"),
    }
}

fn granted(a: CscResult<Authorization>) -> sad::Issued {
    match a {
        Ok(Authorization::Granted(issued)) => issued,
        other => panic!("not granted: {other:?}"),
    }
}

/// Signs in to the approval page as `user`, with a code one step ahead of the last one used.
fn page_session(f: &Fixture, user: &str, step: i64) -> crate::sessions::Session {
    let t = f.user(user);
    let token = f
        .service
        .page_login(user, t.password.as_bytes(), &f.account_code(user, step))
        .unwrap();
    f.service.page_session(&token).unwrap()
}

fn audit_events(f: &Fixture) -> Vec<(String, Option<String>, String)> {
    let conn = f.service.db.lock();
    let mut stmt = conn
        .prepare("SELECT event, credential, outcome FROM audit ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[test]
fn approved_request_yields_a_sad_bound_to_its_hashes() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    let doc = digest(b"contract.pdf");
    let (handle, id) = pending(ask(
        &f,
        &alice,
        Ask::new(P256_APPROVE, &pin, vec![doc.clone()]),
    ));
    assert!(matches!(
        f.service.authorize_check(&alice, &handle),
        Ok(Authorization::Pending { .. })
    ));

    let session = page_session(&f, "alice", 0);
    assert_eq!(session.user, "alice");
    let shown = f.service.pending_requests(&session).unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].request.id, id);
    assert_eq!(shown[0].request.hashes, vec![doc.clone()]);
    assert_eq!(
        shown[0].request.description.as_deref(),
        Some("Sign contract.pdf")
    );
    assert_eq!(
        shown[0].request.client.as_deref(),
        Some("127.0.0.1, test client")
    );
    assert_eq!(shown[0].credential_label, "Alice Example (P-256, approval)");
    assert_eq!(shown[0].scal, 2);
    assert_eq!(shown[0].request.expires_at, T0 + 120);

    f.clock.advance(10);
    f.service.decide(&session, &id, Decision::Approve).unwrap();
    assert!(f.service.pending_requests(&session).unwrap().is_empty());
    let issued = granted(f.service.authorize_check(&alice, &handle));
    assert_eq!(issued.expires_in, 300);
    // Collected once.
    assert_eq!(
        f.service.authorize_check(&alice, &handle).unwrap_err(),
        CscError::invalid_param("handle")
    );

    let cert = f
        .service
        .credential(&alice, P256_APPROVE)
        .unwrap()
        .cert_der
        .clone();
    assert_eq!(
        f.sign(
            &alice,
            P256_APPROVE,
            &issued.sad,
            vec![digest(b"other")],
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::hash_not_authorized()
    );
    let sigs = f
        .sign(
            &alice,
            P256_APPROVE,
            &issued.sad,
            vec![doc.clone()],
            oid::ECDSA_WITH_SHA256,
        )
        .unwrap();
    assert!(p256_verifies(&cert, &doc, &sigs[0]));

    // The audit trail tells the story, and its chain holds.
    let events = audit_events(&f);
    let find = |name: &str| {
        events
            .iter()
            .find(|(e, _, _)| e == name)
            .unwrap_or_else(|| panic!("no {name} in {events:?}"))
    };
    assert_eq!(
        find("credentials/authorize").2,
        format!("pending approval: request {id}")
    );
    let approve = find("approval/approve");
    assert_eq!(approve.1.as_deref(), Some(P256_APPROVE));
    assert_eq!(approve.2, "ok");
    assert_eq!(find("approval/login").2, "ok");
    assert_eq!(find("credentials/authorizeCheck").2, "ok");
    f.audit_ok();
}

#[test]
fn scal1_approval_grants_a_batch() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    let (handle, id) = pending(ask(
        &f,
        &alice,
        Ask {
            id: RSA_APPROVE,
            n: 60,
            hashes: None,
            pin: &pin,
            otp: None,
            can_poll: true,
        },
    ));
    let session = page_session(&f, "alice", 0);
    let shown = f.service.pending_requests(&session).unwrap();
    assert_eq!(shown[0].request.num_signatures, 60);
    assert!(shown[0].request.hashes.is_empty());
    f.service.decide(&session, &id, Decision::Approve).unwrap();
    let issued = granted(f.service.authorize_check(&alice, &handle));
    let docs: Vec<Vec<u8>> = (0..60)
        .map(|i| digest(format!("doc {i}").as_bytes()))
        .collect();
    let sigs = f
        .sign(&alice, RSA_APPROVE, &issued.sad, docs, oid::SHA256_WITH_RSA)
        .unwrap();
    assert_eq!(sigs.len(), 60);
}

#[test]
fn declined_and_expired_requests_give_no_sad() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    let session = page_session(&f, "alice", 0);

    let (declined, id) = pending(ask(
        &f,
        &alice,
        Ask::new(P256_APPROVE, &pin, vec![digest(b"a")]),
    ));
    f.service.decide(&session, &id, Decision::Decline).unwrap();
    let e = f.service.authorize_check(&alice, &declined).unwrap_err();
    assert_eq!(e, CscError::approval_declined());
    assert_eq!((e.status, e.code), (403, "access_denied"));
    // A decision is final.
    assert_eq!(
        f.service
            .decide(&session, &id, Decision::Approve)
            .unwrap_err(),
        super::super::approvals::request_decided()
    );

    let (late, late_id) = pending(ask(
        &f,
        &alice,
        Ask::new(P256_APPROVE, &pin, vec![digest(b"b")]),
    ));
    f.clock.advance(119);
    assert!(matches!(
        f.service.authorize_check(&alice, &late),
        Ok(Authorization::Pending { .. })
    ));
    f.clock.advance(1);
    let e = f.service.authorize_check(&alice, &late).unwrap_err();
    assert_eq!(e, CscError::approval_expired());
    assert_eq!(
        (e.status, e.code, e.description.as_str()),
        (400, "invalid_request", "Request expired")
    );
    // The session outlived the request: approving it now is refused as expired.
    assert_eq!(
        f.service
            .decide(&session, &late_id, Decision::Approve)
            .unwrap_err(),
        CscError::approval_expired()
    );
    let outcomes: Vec<String> = audit_events(&f)
        .into_iter()
        .filter(|(e, _, _)| e == "credentials/authorizeCheck")
        .map(|(_, _, o)| o)
        .collect();
    assert_eq!(
        outcomes,
        [
            "access_denied: The user declined the request",
            "invalid_request: Request expired"
        ]
    );
    f.audit_ok();
}

#[test]
fn authorization_of_an_approval_credential_checks_first() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    let doc = vec![digest(b"x")];
    let session = page_session(&f, "alice", 0);
    let nothing_queued =
        |f: &Fixture| assert!(f.service.pending_requests(&session).unwrap().is_empty());

    // CSC v1 cannot poll.
    let mut v1 = Ask::new(P256_APPROVE, &pin, doc.clone());
    v1.can_poll = false;
    let e = ask(&f, &alice, v1).unwrap_err();
    assert!(e.description.contains("CSC API v2"), "{e}");
    // No OTP: the approval is the second factor.
    let mut with_otp = Ask::new(P256_APPROVE, &pin, doc.clone());
    with_otp.otp = Some("123456");
    assert!(ask(&f, &alice, with_otp)
        .unwrap_err()
        .description
        .contains("takes no OTP"));
    // SCAL 2: the hashes are required, one per signature.
    let mut no_hashes = Ask::new(P256_APPROVE, &pin, doc.clone());
    no_hashes.hashes = None;
    assert_eq!(
        ask(&f, &alice, no_hashes).unwrap_err(),
        CscError::invalid_param("hashes")
    );
    let mut too_many = Ask::new(P256_APPROVE, &pin, doc.clone());
    too_many.n = 11;
    assert_eq!(
        ask(&f, &alice, too_many).unwrap_err(),
        CscError::invalid_param("numSignatures")
    );
    // The PIN is checked before anything is queued, with the usual lockout counter.
    let wrong = if pin == "000000" { "111111" } else { "000000" };
    assert_eq!(
        ask(&f, &alice, Ask::new(P256_APPROVE, wrong, doc.clone())).unwrap_err(),
        CscError::invalid_pin()
    );
    nothing_queued(&f);
    for _ in 0..4 {
        let _ = ask(&f, &alice, Ask::new(P256_APPROVE, wrong, doc.clone()));
    }
    assert_eq!(
        ask(&f, &alice, Ask::new(P256_APPROVE, &pin, doc.clone())).unwrap_err(),
        CscError::pin_locked()
    );
    nothing_queued(&f);
    // Nothing to send for an approval credential.
    assert!(f
        .service
        .send_otp(&alice, P256_APPROVE, None)
        .unwrap_err()
        .description
        .contains("approval page"));
}

#[test]
fn requests_belong_to_their_user() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let bob = f.caller("bob");
    let pin = f.user("alice").pin.clone();
    let (handle, id) = pending(ask(
        &f,
        &alice,
        Ask::new(P256_APPROVE, &pin, vec![digest(b"x")]),
    ));
    // bob's token cannot poll alice's handle, bob's page neither lists nor decides her request.
    assert_eq!(
        f.service.authorize_check(&bob, &handle).unwrap_err(),
        CscError::invalid_param("handle")
    );
    let bobs_page = page_session(&f, "bob", 0);
    assert!(f.service.pending_requests(&bobs_page).unwrap().is_empty());
    assert_eq!(
        f.service
            .decide(&bobs_page, &id, Decision::Approve)
            .unwrap_err(),
        CscError::invalid_param("request")
    );
    // The request is still alice's to decide.
    let alices_page = page_session(&f, "alice", 0);
    f.service
        .decide(&alices_page, &id, Decision::Approve)
        .unwrap();
    granted(f.service.authorize_check(&alice, &handle));
}

#[test]
fn page_login_needs_password_and_a_fresh_code_and_locks() {
    let f = Fixture::new();
    let alice = f.user("alice");
    let code = f.account_code("alice", 0);
    let login = |user: &str, password: &str, code: &str| {
        f.service
            .page_login(user, password.as_bytes(), code)
            .map(|_| ())
    };
    assert_eq!(
        login("alice", "wrong", &code),
        Err(PageLoginError::Rejected)
    );
    assert_eq!(
        login("nobody", &alice.password, &code),
        Err(PageLoginError::Rejected)
    );
    // A credential's TOTP code is not the account's.
    assert_eq!(
        login("alice", &alice.password, &f.totp("alice-p256", 0)),
        Err(PageLoginError::Rejected)
    );
    assert_eq!(login("alice", &alice.password, &code), Ok(()));
    // The same code again is a replay.
    assert_eq!(
        login("alice", &alice.password, &code),
        Err(PageLoginError::Rejected)
    );
    assert_eq!(
        login("alice", &alice.password, &f.account_code("alice", 1)),
        Ok(())
    );

    // Wrong codes lock the page login (and only it) at max_attempts.
    for _ in 0..5 {
        assert_eq!(
            login("alice", &alice.password, "000000"),
            Err(PageLoginError::Rejected)
        );
    }
    f.clock.advance(30);
    assert_eq!(
        login("alice", &alice.password, &f.account_code("alice", 1)),
        Err(PageLoginError::Locked)
    );
    assert!(f
        .service
        .login_password("alice", alice.password.as_bytes(), false)
        .is_ok());

    // Wrong passwords share the auth/login counter: four here and one there lock both.
    let bob = f.user("bob");
    for _ in 0..4 {
        assert_eq!(
            login("bob", "wrong", &f.account_code("bob", 0)),
            Err(PageLoginError::Rejected)
        );
    }
    assert_eq!(
        f.service.login_password("bob", b"wrong", false).err(),
        Some(CscError::bad_credentials())
    );
    assert_eq!(
        login("bob", &bob.password, &f.account_code("bob", 0)),
        Err(PageLoginError::Locked)
    );
    assert_eq!(
        f.service
            .login_password("bob", bob.password.as_bytes(), false)
            .err(),
        Some(CscError::login_locked())
    );
    let logins: Vec<String> = audit_events(&f)
        .into_iter()
        .filter(|(e, _, _)| e == "approval/login")
        .map(|(_, _, o)| o)
        .collect();
    assert!(
        logins.iter().any(|o| o == "invalid_otp: Invalid OTP"),
        "{logins:?}"
    );
    assert!(
        logins.iter().any(|o| o == "invalid_request: OTP locked"),
        "{logins:?}"
    );
    f.audit_ok();
}

#[test]
fn page_sessions_end_on_logout_and_after_their_lifetime() {
    let f = Fixture::new();
    let t = f.user("alice");
    let first = f
        .service
        .page_login("alice", t.password.as_bytes(), &f.account_code("alice", 0))
        .unwrap();
    let second = f
        .service
        .page_login("alice", t.password.as_bytes(), &f.account_code("alice", 1))
        .unwrap();
    f.service.page_logout(&first);
    assert!(f.service.page_session(&first).is_none());
    assert!(f.service.page_session(&second).is_some());
    f.clock.advance(crate::sessions::LIFETIME);
    assert!(f.service.page_session(&second).is_none());
}
