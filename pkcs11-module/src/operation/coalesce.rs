//! Many signers, one round trip (issue 10, item 6): concurrent signatures of the same credential, scheme
//! and login go to the service as one `signatures/signHash` with several hashes, group-commit style.
//! A signer sends its hash at once while fewer than [`MAX_IN_FLIGHT`] requests of its lane are in
//! flight; otherwise it queues, and when a request returns one of the queued signers sends everything
//! queued (up to what one SAD still covers, at most [`MAX_HASHES`]) in one request. Each signer gets
//! its own answer — the signature of its own hash (the order of the hashes is the queue's) or the error
//! of the request it was part of — and checks and shapes it itself (sign.rs). The SAD's count is
//! reserved for each request before it goes (auth::batch_signatures), so requests in flight together
//! never ask for more than the SAD covers.
//!
//! Only SCAL 1 signatures of a batch come here: SCAL 2 hashes are each authorized for themselves, and
//! keys with CKA_ALWAYS_AUTHENTICATE have one SAD per operation (sign.rs sends those alone).
//!
//! Calls the authorization step (auth::batch_signatures) and the account; no lock is held while either
//! works.

use crate::auth;
use crate::error::{self, CkResult, Step};
use crate::service::{Reason, SignHashRequest};
use crate::token::account::CallError;
use crate::token::{Credential, Token};
use cryptoki_sys::*;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Most hashes in one request: well within what services accept (the reference service: 1000).
pub const MAX_HASHES: usize = 64;

/// Requests of one lane in flight at once. With one, a service that signs a request's hashes one after
/// another (the reference service does, on the connection's thread) works on one core however many
/// signers wait: 16 signers travelled in two alternating requests of 8 and the 2-core machine was a
/// third idle. With two, `examples/bench.sh --quick` gave 2 threads about 1.5 times and 8 threads
/// about 1.3 times the signatures per second of one; four were no better than two (README
/// "Benchmark").
pub const MAX_IN_FLIGHT: usize = 2;

/// What makes two signatures combinable: credential, login, and the request's algorithm fields.
#[derive(Clone, PartialEq, Eq, Hash)]
struct LaneKey {
    credential: String,
    epoch: u64,
    hash_oid: String,
    sign_oid: String,
    params: Option<Vec<u8>>,
}

/// One signer's place in a lane: its hash, then its answer (the service's signature bytes), and
/// what wakes it. Each signer is woken for itself — when its answer is there, or when it is at the
/// queue's front and a request may go — so that a returning request does not wake every signer of
/// the lane to find most of them with nothing to do.
struct Waiter {
    hash: Vec<u8>,
    answer: Option<CkResult<Vec<u8>>>,
    wake: Arc<Condvar>,
}

#[derive(Default)]
struct LaneState {
    /// Requests of this lane in flight (each sender serves the queue's front of its time).
    in_flight: usize,
    queue: VecDeque<u64>,
    waiters: HashMap<u64, Waiter>,
    next_ticket: u64,
}

impl LaneState {
    /// Wakes the signer at the queue's front, who sends the next request if one may go.
    fn wake_front(&self) {
        if let Some(w) = self.queue.front().and_then(|t| self.waiters.get(t)) {
            w.wake.notify_one();
        }
    }
}

#[derive(Default)]
struct Lane {
    state: Mutex<LaneState>,
}

/// The lanes of one token.
#[derive(Default)]
pub struct Lanes {
    lanes: Mutex<HashMap<LaneKey, Arc<Lane>>>,
}

impl Lanes {
    /// Signers waiting in any lane whose request has not been sent yet (tests).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.lanes
            .lock()
            .values()
            .map(|l| {
                let s = l.state.lock();
                s.queue.len()
            })
            .sum()
    }

    fn lane(&self, key: &LaneKey) -> Arc<Lane> {
        let mut lanes = self.lanes.lock();
        if !lanes.contains_key(key) {
            // Lanes of ended logins are of no more use; drop the idle ones.
            lanes.retain(|k, l| k.epoch == key.epoch || l.state.lock().in_flight > 0);
        }
        lanes.entry(key.clone()).or_default().clone()
    }
}

/// Signs `template`'s one hash with `cred` under login `epoch`, together with whatever other signers
/// of the same lane queue meanwhile: the service's signature of this hash.
pub fn sign(
    token: &Arc<Token>,
    cred: &Arc<Credential>,
    epoch: u64,
    template: SignHashRequest,
) -> CkResult<Vec<u8>> {
    let [hash] =
        <[Vec<u8>; 1]>::try_from(template.hashes.clone()).map_err(|_| CKR_GENERAL_ERROR)?;
    let key = LaneKey {
        credential: cred.id().to_owned(),
        epoch,
        hash_oid: template.hash_algorithm_oid.clone(),
        sign_oid: template.sign_algorithm_oid.clone(),
        params: template.sign_algorithm_params.clone(),
    };
    let lane = token.lanes.lane(&key);
    let mut s = lane.state.lock();
    let ticket = s.next_ticket;
    s.next_ticket += 1;
    s.queue.push_back(ticket);
    let wake = Arc::new(Condvar::new());
    let waiter = Waiter {
        hash,
        answer: None,
        wake: wake.clone(),
    };
    s.waiters.insert(ticket, waiter);
    loop {
        if let Some(answer) = s.waiters.get_mut(&ticket).and_then(|w| w.answer.take()) {
            s.waiters.remove(&ticket);
            return answer;
        }
        // A signer whose hash is in a request under way waits for its answer.
        if s.in_flight >= MAX_IN_FLIGHT || !s.queue.contains(&ticket) {
            wake.wait(&mut s);
            continue;
        }
        // This signer sends the next request, for the queue's front (its own hash among them, or
        // before it). The front leaves the queue now, so that a request going out meanwhile takes
        // other hashes.
        s.in_flight += 1;
        let take = s.queue.len().min(MAX_HASHES);
        let LaneState { queue, waiters, .. } = &mut *s;
        let mut taken: Vec<(u64, Vec<u8>)> = queue
            .drain(..take)
            .map(|t| {
                let hash = waiters.get_mut(&t).map(|w| std::mem::take(&mut w.hash));
                (t, hash.unwrap_or_default())
            })
            .collect();
        // More than one request's worth queued, and another request may go: its sender is woken.
        if s.in_flight < MAX_IN_FLIGHT {
            s.wake_front();
        }
        drop(s);
        // A panic below must not leave the lane busy for ever: its signers get an error instead.
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serve(token, cred, epoch, &template, &taken)
        }))
        .unwrap_or_else(|_| {
            log::error!("slot {}: signing panicked", token.slot_id);
            (vec![Err(CKR_GENERAL_ERROR); taken.len()], taken.len())
        });
        s = lane.state.lock();
        let (answers, sent) = served;
        // What the SAD did not cover goes back to the queue's front, in order, with its hash.
        for (t, hash) in taken.split_off(sent).into_iter().rev() {
            if let Some(w) = s.waiters.get_mut(&t) {
                w.hash = hash;
            }
            s.queue.push_front(t);
        }
        for ((t, _), a) in taken.iter().zip(answers) {
            if let Some(w) = s.waiters.get_mut(t) {
                w.answer = Some(a);
                w.wake.notify_one();
            }
        }
        s.in_flight -= 1;
        s.wake_front();
    }
}

/// Authorizes and sends one request for the front of `taken`: the answers of the first `sent` hashes
/// (the SAD may cover fewer than all), as `(answers, sent)`.
fn serve(
    token: &Arc<Token>,
    cred: &Arc<Credential>,
    epoch: u64,
    template: &SignHashRequest,
    taken: &[(u64, Vec<u8>)],
) -> (Vec<CkResult<Vec<u8>>>, usize) {
    match auth::batch_signatures(token, cred, epoch, taken.len() as u32, None) {
        Err(rv) => (vec![Err(rv); taken.len()], taken.len()),
        Ok((sad, n)) => {
            let sent = (n as usize).clamp(1, taken.len());
            let request = SignHashRequest {
                sad,
                hashes: taken[..sent].iter().map(|(_, h)| h.clone()).collect(),
                ..template.clone()
            };
            (send(token, cred, &request), sent)
        }
    }
}

/// One signHash for every hash of `request`: one answer per hash, in order — each its signature, or
/// every one the request's error.
fn send(token: &Token, cred: &Credential, request: &SignHashRequest) -> Vec<CkResult<Vec<u8>>> {
    let slot = token.slot_id;
    let n = request.hashes.len();
    let failed = |rv: CK_RV| vec![Err(rv); n];
    match token.account.act(|s, a| s.sign_hashes(a, request)) {
        Ok(signatures) if signatures.len() == n => signatures.into_iter().map(Ok).collect(),
        Ok(signatures) => failed(error::logged(
            CKR_DEVICE_ERROR,
            format!(
                "slot {slot}: the service returned {} signatures for {n} hashes",
                signatures.len()
            ),
        )),
        Err(CallError::Remote(e)) => {
            if e.reason() == Reason::SadExpired {
                auth::forget_batch(token, cred);
            }
            failed(error::from_remote(slot, Step::Sign, &e))
        }
        Err(e) => failed(e.into_rv(slot, Step::Sign)),
    }
}
