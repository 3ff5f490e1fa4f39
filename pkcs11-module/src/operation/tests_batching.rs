//! Many signers and long runs through the fake service: concurrent signatures coalesced into one
//! signHash (coalesce.rs) and batch authorizations renewed in the background for unattended factors
//! (auth/renew.rs), never for factors a person gives.

use super::coalesce::MAX_IN_FLIGHT;
use super::tests::{logged_in, sign, token, verifies};
use crate::service::fake::{self, FakeService, Fault, Method};
use crate::token::Token;
use cryptoki_sys::*;
use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits until `cond` holds (at most 10 s, then the test fails).
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for the token's background renewals to end.
fn renewals_done(t: &Token) {
    assert!(
        t.renewals.wait(Duration::from_secs(10), false),
        "a renewal did not end"
    );
}

/// As many signers as may have requests in flight at once (`MAX_IN_FLIGHT`) each send one, held at the
/// service, while `others` more signers queue behind them; then the held ones are let go, and the next
/// request meets `then`. Returns each signer's message and outcome (the held ones first).
fn held_then_queued(
    fake: &Arc<FakeService>,
    t: &Arc<Token>,
    others: usize,
    then: Option<Fault>,
) -> Vec<(Vec<u8>, crate::error::CkResult<Vec<u8>>)> {
    let releases: Vec<_> = (0..MAX_IN_FLIGHT)
        .map(|_| {
            let (release, held) = mpsc::channel();
            fake.inject(Method::Sign, Fault::Hold(held));
            release
        })
        .collect();
    if let Some(f) = then {
        fake.inject(Method::Sign, f);
    }
    let signs_before = fake.calls(Method::Sign);
    std::thread::scope(|s| {
        let held: Vec<_> = (0..MAX_IN_FLIGHT)
            .map(|i| {
                let h = s.spawn(move || {
                    let m = format!("held {i}").into_bytes();
                    let r = sign(t, &m);
                    (m, r)
                });
                wait_for("the held request", || {
                    fake.calls(Method::Sign) == signs_before + i + 1
                });
                h
            })
            .collect();
        let queued: Vec<_> = (0..others)
            .map(|i| {
                s.spawn(move || {
                    let m = format!("queued {i}").into_bytes();
                    let r = sign(t, &m);
                    (m, r)
                })
            })
            .collect();
        wait_for("the signers to queue", || t.lanes.queued() == others);
        // No request beyond the ones in flight went out meanwhile.
        assert_eq!(fake.calls(Method::Sign), signs_before + MAX_IN_FLIGHT);
        for r in releases {
            r.send(()).unwrap();
        }
        held.into_iter()
            .chain(queued)
            .map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn concurrent_signers_share_one_round_trip_and_each_gets_its_own_signature() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "batch_size = 100");
    let outcomes = held_then_queued(&fake, &t, 7, None);
    for (m, r) in &outcomes {
        let sig = r.as_ref().unwrap();
        assert!(verifies(&t, m, sig), "the signature of {m:?}");
    }
    // The held ones alone, then the seven that queued behind them together.
    let mut sizes = vec![1; MAX_IN_FLIGHT];
    sizes.push(7);
    assert_eq!(fake.sign_sizes(), sizes);
    assert_eq!(fake.signatures_made(), MAX_IN_FLIGHT + 7);
    assert_eq!(fake.calls(Method::Authorize), 1);
}

#[test]
fn coalesced_requests_never_exceed_what_the_sad_covers() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "batch_size = 3");
    let outcomes = held_then_queued(&fake, &t, 12, None);
    for (m, r) in &outcomes {
        let sig = r.as_ref().unwrap();
        assert!(verifies(&t, m, sig), "the signature of {m:?}");
    }
    renewals_done(&t);
    let sizes = fake.sign_sizes();
    assert!(sizes.iter().all(|n| *n <= 3), "requests of {sizes:?}");
    let total = MAX_IN_FLIGHT + 12;
    assert_eq!(sizes.iter().sum::<usize>(), total);
    // Every hash was signed with a SAD that still covered it (the fake refuses any other), and no more
    // signatures were authorized than batches of 3 give.
    assert_eq!(fake.signatures_made(), total);
    assert!(fake.calls(Method::Authorize) >= total.div_ceil(3));
}

#[test]
fn a_failed_coalesced_request_fails_each_of_its_callers() {
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "batch_size = 100");
    // The held request succeeds; the one that carries the queued hashes fails at the service.
    let fail = Fault::Fail(fake::server_error("signatures/signHash"));
    let outcomes = held_then_queued(&fake, &t, 5, Some(fail));
    for (m, r) in &outcomes[..MAX_IN_FLIGHT] {
        assert!(r.is_ok(), "{m:?}: {r:?}");
    }
    for (m, r) in &outcomes[MAX_IN_FLIGHT..] {
        assert_eq!(*r, Err(CKR_DEVICE_ERROR), "{m:?}");
    }
    let mut sizes = vec![1; MAX_IN_FLIGHT];
    sizes.push(5);
    assert_eq!(fake.sign_sizes(), sizes);
    // The token still signs.
    let sig = sign(&t, b"after").unwrap();
    assert!(verifies(&t, b"after", &sig));
}

#[test]
fn many_signers_each_woken_for_their_own_answer_all_finish() {
    // Signers are woken one by one (coalesce.rs): a lost wake-up leaves one waiting for ever. More
    // signers than one request holds (MAX_HASHES), each signing several times while the service takes
    // a little while per request, so that requests return while others go out.
    use super::coalesce::MAX_HASHES;
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "batch_size = 100000");
    let signers = MAX_HASHES + 36;
    let rounds = 3;
    for _ in 0..signers * rounds {
        fake.inject(Method::Sign, Fault::Delay(Duration::from_micros(300)));
    }
    let (done, finished) = mpsc::channel();
    for i in 0..signers {
        let (t, done) = (t.clone(), done.clone());
        std::thread::spawn(move || {
            for r in 0..rounds {
                let m = format!("signer {i} round {r}").into_bytes();
                let ok = sign(&t, &m).is_ok_and(|sig| verifies(&t, &m, &sig));
                done.send((i, r, ok)).unwrap();
            }
        });
    }
    for _ in 0..signers * rounds {
        let (i, r, ok) = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("a signer was never woken");
        assert!(ok, "signer {i} round {r} got no valid signature");
    }
    let sizes = fake.sign_sizes();
    assert!(
        sizes.iter().all(|n| (1..=MAX_HASHES).contains(n)),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), signers * rounds);
    assert!(
        sizes.len() < signers * rounds,
        "nothing was coalesced: {sizes:?}"
    );
}

#[test]
fn a_queue_longer_than_one_request_fills_both_requests_in_flight() {
    // Signers queued beyond what one request takes (MAX_HASHES) go out in a second request while the
    // first is still in flight, whichever order the held requests return in.
    use super::coalesce::MAX_HASHES;
    assert_eq!(MAX_IN_FLIGHT, 2, "the test holds two requests");
    let fake = Arc::new(FakeService::new());
    let t = logged_in(&fake, "batch_size = 100000");
    let releases: Vec<_> = (0..3)
        .map(|_| {
            let (release, held) = mpsc::channel();
            fake.inject(Method::Sign, Fault::Hold(held));
            release
        })
        .collect();
    let queued = MAX_HASHES + 5;
    std::thread::scope(|s| {
        // Owned here, so that a failed check drops the releases and lets the held requests end
        // instead of leaving the scope waiting for them.
        let mut releases = releases;
        let t = &t;
        let signer = |name: String| {
            s.spawn(move || {
                let m = name.into_bytes();
                let r = sign(t, &m);
                (m, r)
            })
        };
        let mut signers: Vec<_> = (0..MAX_IN_FLIGHT)
            .map(|i| {
                let h = signer(format!("held {i}"));
                wait_for("the held request", || fake.calls(Method::Sign) == i + 1);
                h
            })
            .collect();
        signers.extend((0..queued).map(|i| signer(format!("queued {i}"))));
        wait_for("the signers to queue", || t.lanes.queued() == queued);
        for r in releases.drain(..2) {
            r.send(()).unwrap();
        }
        // Both requests of the queue reach the service while the first of them to arrive is held
        // there (they may arrive in either order).
        wait_for("the rest of the queue", || fake.calls(Method::Sign) == 4);
        releases.remove(0).send(()).unwrap();
        let mut sizes = fake.sign_sizes();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![1, 1, 5, MAX_HASHES]);
        for h in signers {
            let (m, r) = h.join().unwrap();
            let sig = r.unwrap_or_else(|rv| panic!("{m:?}: {rv:#x}"));
            assert!(verifies(t, &m, &sig), "the signature of {m:?}");
        }
    });
}

/// A file of mode 0600 holding `text`.
/// A login-free token over a fresh fake whose PIN is in `pin_file`, 4 signatures per authorization.
fn pin_file_token() -> (tempfile::TempDir, Arc<FakeService>, Arc<Token>) {
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("pin");
    std::fs::write(&pin, fake::PIN).unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fake = Arc::new(FakeService::new());
    let t = token(
        &fake,
        &format!(
            "mode = \"login-free\"\npin_file = \"{}\"\nbatch_size = 4",
            pin.display()
        ),
    );
    (dir, fake, t)
}

/// The name the fake records for calls from this thread.
fn this_thread() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned()
}

#[test]
fn unattended_batches_are_renewed_off_the_signing_path() {
    let (_dir, fake, t) = pin_file_token();
    let me = this_thread();
    for i in 0..20u8 {
        let sig = sign(&t, &[i]).unwrap();
        assert!(verifies(&t, &[i], &sig));
        // Each renewal ends before the next signature, so that no signer runs dry.
        renewals_done(&t);
    }
    let threads = fake.threads(Method::Authorize);
    // The first batch is authorized by the first signer (there is nothing before it); every later one
    // in the background, half a batch before it is needed.
    assert_eq!(threads[0], me);
    assert!(threads.len() >= 5, "{threads:?}");
    assert!(
        threads[1..].iter().all(|t| t == "cloudtoken-renew"),
        "{threads:?}"
    );
    assert_eq!(fake.signatures_made(), 20);
}

#[test]
fn a_failed_renewal_is_not_repeated_until_a_signer_authorizes() {
    let (_dir, fake, t) = pin_file_token();
    let me = this_thread();
    // The first authorization succeeds, the first renewal fails.
    fake.inject(Method::Authorize, Fault::Delay(Duration::ZERO));
    fake.inject(
        Method::Authorize,
        Fault::Fail(fake::server_error("credentials/authorize")),
    );
    for i in 0..7u8 {
        let sig = sign(&t, &[i]).unwrap();
        assert!(verifies(&t, &[i], &sig));
        renewals_done(&t);
    }
    // Signature 1: the first signer authorizes 4; 2: the renewal that fails (3 and 4 start none);
    // 5: the signer who ran dry authorizes 4; 7: its batch runs low, a renewal again.
    assert_eq!(
        fake.threads(Method::Authorize),
        [
            me.as_str(),
            "cloudtoken-renew",
            me.as_str(),
            "cloudtoken-renew"
        ]
    );
}

#[test]
fn factors_a_person_gives_are_never_used_by_a_background_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let asked = dir.path().join("asked");
    let script = dir.path().join("ask.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$CLOUDTOKEN_PROMPT_KIND\" >> '{}'\necho {}\n",
            asked.display(),
            fake::PIN
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let fake = Arc::new(FakeService::new());
    let t = token(
        &fake,
        &format!(
            "mode = \"login-free\"\nprompt_command = [\"{}\"]\nbatch_size = 2",
            script.display()
        ),
    );
    let me = this_thread();
    for i in 0..5u8 {
        let sig = sign(&t, &[i]).unwrap();
        assert!(verifies(&t, &[i], &sig));
        renewals_done(&t);
    }
    // Three batches of 2, each authorized by the signer that needed it, each with the prompt's PIN.
    assert_eq!(fake.threads(Method::Authorize), [me.as_str(); 3]);
    let prompts = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(prompts.lines().count(), 3, "{prompts}");
}
