//! Threads and forks around the built module (issue 11, items 4 and 5): a child forked while another
//! thread of the parent writes a log line must not deadlock in its first call, and ending a login
//! (C_Logout, C_CloseAllSessions) while threads sign must end their signatures at once instead of
//! having each make an authorization of its own for a login that no longer exists. And (issue 10,
//! items 5 and 6) many unattended signers of one credential share round trips, never beyond what a
//! SAD covers, as the service's audit trail shows.

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::child::{in_child, Ending};
use support::config::{totp_file_toml, unattended_toml};
use support::prelude::*;

const PERIOD: u64 = 2;
const CRED: &str = "alice-p256";
/// Signatures per authorization of the "Free Batch" token.
const BATCH: usize = 40;
/// How soon after the login ended every signer must have its answer.
const FAIL_FAST: Duration = Duration::from_secs(3);

struct Env {
    svc: Service,
    p: P11,
    config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceCell<Env> = OnceCell::new();
    ENV.get_or_init(|| {
        let svc = Service::lasting_with_totp_period(PERIOD);
        let dir = tempfile::tempdir().unwrap();
        // The application logs in with the PIN; each signature needs an authorization of its own
        // (batch_size = 1) whose code the module computes from the authenticator secret.
        let extra = format!(
            "{}otp_channels = [\"totp-file\"]\nbatch_size = 1\n",
            totp_file_toml(&svc, dir.path(), CRED, PERIOD)
        );
        // Login-free and unattended (PIN from pin_file), also an authorization per signature: the
        // signers queued for one when the sessions close must not go on authorizing.
        let free = format!(
            "{}batch_size = 1\n",
            unattended_toml(&svc, dir.path(), CRED, PERIOD)
        );
        // Login-free and unattended, batches of BATCH: renewed in the background, shared by signers.
        let batched = format!(
            "{}batch_size = {BATCH}\n",
            unattended_toml(&svc, dir.path(), CRED, PERIOD)
        );
        let tokens = [
            token_toml(&svc, "Logout", "alice", &extra),
            token_toml(&svc, "Close All", "alice", &extra),
            token_toml(&svc, "Close All Free", "alice", &free),
            token_toml(&svc, "Free Batch", "alice", &batched),
        ];
        let support::p11::flow::Configured { p, config, .. } = initialize_on(dir.path(), &tokens);
        Env {
            svc,
            p,
            config,
            _dir: dir,
        }
    })
}

#[test]
fn forked_child_does_not_deadlock_while_a_parent_thread_writes_the_log() {
    let _s = serial();
    let e = env();
    let p = e.p;
    // Failing calls write a log line each (debug level and above is on).
    let stop = Arc::new(AtomicBool::new(false));
    let loggers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut info = CK_SLOT_INFO::default();
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: valid out pointer; the slot does not exist, so the call logs an error.
                    unsafe { (p.f.C_GetSlotInfo.unwrap())(0x7fff_0000, &mut info) };
                }
            })
        })
        .collect();
    let conf = reserved_config(&e.config);
    let mut endings = Vec::new();
    // Up to 60 forks; two hangs are enough to know (each costs the deadline).
    while endings.len() < 60 && endings.iter().filter(|e| **e == Ending::TimedOut).count() < 2 {
        let run = in_child(Duration::from_secs(5), |_| {
            // SAFETY: valid pointers; the child's first calls are the ones under test.
            unsafe {
                let mut info = CK_INFO::default();
                if (p.f.C_GetInfo.unwrap())(&mut info) != CKR_CRYPTOKI_NOT_INITIALIZED {
                    return 10;
                }
                let mut a = init_args(conf.as_ptr() as *mut std::ffi::c_void);
                if (p.f.C_Initialize.unwrap())(&mut a as *mut _ as *mut std::ffi::c_void) != CKR_OK
                {
                    return 11;
                }
                let mut n = 0;
                if (p.f.C_GetSlotList.unwrap())(CK_TRUE, std::ptr::null_mut(), &mut n) != CKR_OK {
                    return 12;
                }
                let mut si = CK_SLOT_INFO::default();
                (p.f.C_GetSlotInfo.unwrap())(0x7fff_0000, &mut si);
                if (p.f.C_Finalize.unwrap())(std::ptr::null_mut()) != CKR_OK {
                    return 13;
                }
            }
            0
        });
        endings.push(run.ending);
    }
    stop.store(true, Ordering::Relaxed);
    for t in loggers {
        t.join().unwrap();
    }
    let hung = endings.iter().filter(|e| **e == Ending::TimedOut).count();
    let other: Vec<_> = endings
        .iter()
        .filter(|e| !matches!(e, Ending::Exited(0) | Ending::TimedOut))
        .collect();
    assert!(
        hung == 0 && other.is_empty(),
        "of {} forked children, {hung} hung in their first calls for 5 s (killed); other endings: \
         {other:?}",
        endings.len()
    );
}

/// What a signing thread saw: signatures made, then the call that ended its loop and when.
struct SignerRun {
    signed: usize,
    last: CK_RV,
    ended: Instant,
}

/// Starts `signers` threads signing in sessions of their own on `token` (logged in with the PIN unless
/// the token is login-free) until a call fails,
/// waits until `warm` signatures are made, runs `end_login`, and returns what each thread saw, with
/// the moment `end_login` returned and the authorizations the service had granted by then.
fn sign_until_the_login_ends(
    token: &'static str,
    signers: usize,
    warm: usize,
    end_login: impl FnOnce(P11, CK_SESSION_HANDLE),
) -> (Vec<SignerRun>, Instant, usize) {
    let e = env();
    let p = e.p;
    let label = e.svc.demo.credential(CRED).1.label.clone();
    let pin = e.svc.demo.token_of("alice").pin.clone();
    let login_free = p.token_flags(token) & CKF_LOGIN_REQUIRED == 0;
    let main = KeySession::open(p, token, (!login_free).then_some(pin.as_str()), &label);
    let made = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..signers)
        .map(|t| {
            let (made, label) = (made.clone(), label.clone());
            std::thread::spawn(move || {
                let h = p.open(p.slot_of(token));
                let key = key_of(p, h, &label);
                let mut signed = 0;
                loop {
                    let case =
                        Case::of(CKM_ECDSA_SHA256, format!("{token} {t} {signed}").as_bytes());
                    match p.sign(h, &case.mech, key.private, &case.input) {
                        Ok(sig) => {
                            case.assert_verified(&key, &sig);
                            signed += 1;
                            made.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(rv) => {
                            return SignerRun {
                                signed,
                                last: rv,
                                ended: Instant::now(),
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while made.load(Ordering::SeqCst) < warm {
        assert!(Instant::now() < deadline, "no {warm} signatures in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    end_login(p, main.h);
    let ended = Instant::now();
    let granted = e.svc.granted(CRED);
    let runs = threads.into_iter().map(|t| t.join().unwrap()).collect();
    (runs, ended, granted)
}

/// Every signer answered within FAIL_FAST of the end of the login with one of `codes`, and at most the
/// one authorization that may have been under way at that moment was granted afterwards.
fn assert_ended_fast(
    runs: &[SignerRun],
    ended: Instant,
    granted: usize,
    codes: &[CK_RV],
    what: &str,
) {
    let after = env().svc.granted(CRED) - granted;
    let report: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} signed, then {} {:?} after {what}",
                r.signed,
                rv_name(r.last),
                r.ended.saturating_duration_since(ended)
            )
        })
        .collect();
    assert!(
        runs.iter()
            .all(|r| r.ended.saturating_duration_since(ended) <= FAIL_FAST
                && codes.contains(&r.last))
            && after <= 1,
        "signers: {report:#?}; authorizations granted after {what}: {after} (at most one may have \
         been under way)"
    );
}

#[test]
fn logout_while_threads_sign_ends_their_signatures_without_new_authorizations() {
    let _s = serial();
    let (runs, ended, granted) = sign_until_the_login_ends("Logout", 4, 2, |p, h| {
        assert_rv(p.logout(h), CKR_OK, "C_Logout");
    });
    // A signature under way when the login ends: CKR_USER_NOT_LOGGED_IN; a new C_SignInit finds
    // the private key gone with the login.
    assert_ended_fast(
        &runs,
        ended,
        granted,
        &[CKR_USER_NOT_LOGGED_IN, CKR_KEY_HANDLE_INVALID],
        "C_Logout",
    );
}

/// C_CloseAllSessions on `token` while `signers` threads sign: under way, CKR_SESSION_CLOSED
/// ("closed during the execution of the function"); afterwards the handle is invalid.
fn close_all_while_signing(token: &'static str, signers: usize, warm: usize) {
    let _s = serial();
    let (runs, ended, granted) = sign_until_the_login_ends(token, signers, warm, |p, _| {
        assert_rv(p.close_all(p.slot_of(token)), CKR_OK, "C_CloseAllSessions");
    });
    assert_ended_fast(
        &runs,
        ended,
        granted,
        &[CKR_SESSION_CLOSED, CKR_SESSION_HANDLE_INVALID],
        "C_CloseAllSessions",
    );
}

#[test]
fn close_all_sessions_while_threads_sign_ends_their_signatures_without_new_authorizations() {
    close_all_while_signing("Close All", 4, 2);
}

#[test]
fn close_all_sessions_of_a_login_free_token_while_threads_sign_makes_no_new_authorizations() {
    close_all_while_signing("Close All Free", 4, 2);
}

#[test]
fn concurrent_unattended_signers_share_round_trips_within_what_each_sad_covers() {
    let _s = serial();
    let e = env();
    let p = e.p;
    let label = e.svc.demo.credential(CRED).1.label.clone();
    let seen = |event: &str| e.svc.audit(event).last().map_or(0, |a| a.seq);
    let since = seen("signatures/signHash").max(seen("credentials/authorize"));
    const SIGNERS: usize = 8;
    const EACH: usize = 15;
    let threads: Vec<_> = (0..SIGNERS)
        .map(|t| {
            let label = label.clone();
            std::thread::spawn(move || {
                let h = p.open(p.slot_of("Free Batch"));
                let key = key_of(p, h, &label);
                for i in 0..EACH {
                    let case = Case::of(CKM_ECDSA_SHA256, format!("batch {t} {i}").as_bytes());
                    let sig = ok(
                        p.sign(h, &case.mech, key.private, &case.input),
                        "C_Sign on the batched token",
                    );
                    // Each signer gets the signature of its own message.
                    case.assert_verified(&key, &sig);
                }
                assert_rv(p.close(h), CKR_OK, "C_CloseSession");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let after = |event: &str| -> Vec<_> {
        e.svc
            .audit(event)
            .into_iter()
            .filter(|a| a.seq > since && a.credential.as_deref() == Some(CRED))
            .collect()
    };
    let signs = after("signatures/signHash");
    let sizes: Vec<usize> = signs.iter().map(|a| a.hash_list().len()).collect();
    assert!(signs.iter().all(|a| a.ok()), "refused signHash: {signs:?}");
    assert_eq!(sizes.iter().sum::<usize>(), SIGNERS * EACH, "{sizes:?}");
    assert!(
        sizes.iter().all(|n| *n <= BATCH),
        "a request beyond one batch: {sizes:?}"
    );
    assert!(
        sizes.len() < SIGNERS * EACH,
        "no request carried more than one hash: {sizes:?}"
    );
    let authorizations = after("credentials/authorize");
    assert!(authorizations.iter().all(|a| a.ok()), "{authorizations:?}");
    assert!(
        authorizations.len() * BATCH >= SIGNERS * EACH,
        "{} authorizations of {BATCH} for {} signatures",
        authorizations.len(),
        SIGNERS * EACH
    );
}
