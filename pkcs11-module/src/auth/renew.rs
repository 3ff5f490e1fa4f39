//! Background renewal of SCAL 1 batch authorizations for unattended signers (issue 10, item 5): when a
//! take finds the credential's batches running low (store.rs), and the next authorization needs nobody
//! (policy::renews_unattended: PIN at hand or in `pin_file`, code from `totp_secret_file`, or nothing),
//! one thread per credential authorizes the next batch and keeps it behind the one in use, so that a
//! signer never waits for an authorization or a TOTP step. Factors a person gives are never used here.
//!
//! Owns the bookkeeping of those threads: at most one per credential, none after a failed renewal of
//! the same login until a signer's own authorization succeeds (so that a refused `pin_file` is not sent
//! again and again), none once the module is finalizing, and C_Finalize waits for the running ones.
//! Calls the exchange (unattended factors only) and the store, under the credential's gate, so that a
//! signer who runs dry meanwhile waits for this authorization instead of spending another code.

use super::exchange;
use super::policy;
use crate::token::{Credential, Token};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// The renewal under this login failed.
    Failed(u64),
}

#[derive(Default)]
pub struct Renewals {
    state: Mutex<Renewing>,
    ended: Condvar,
    /// The renewal threads not reaped yet: C_Finalize joins them, so that none still runs the module's
    /// code (or drops the last reference to a token) once the application may unload it.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct Renewing {
    by_credential: HashMap<String, State>,
    closed: bool,
}

impl Renewals {
    /// Claims the renewal of `credential` under `epoch`: false when one runs, the last one of this login
    /// failed, or the module is finalizing.
    fn claim(&self, credential: &str, epoch: u64) -> bool {
        let mut s = self.state.lock();
        if s.closed {
            return false;
        }
        match s.by_credential.get(credential) {
            Some(State::Running) => false,
            Some(State::Failed(e)) if *e == epoch => false,
            _ => {
                s.by_credential
                    .insert(credential.to_owned(), State::Running);
                true
            }
        }
    }

    fn release(&self, credential: &str, outcome: Option<u64>) {
        let mut s = self.state.lock();
        match outcome {
            Some(failed_epoch) => s
                .by_credential
                .insert(credential.to_owned(), State::Failed(failed_epoch)),
            None => s.by_credential.remove(credential),
        };
        self.ended.notify_all();
    }

    /// A signer's own authorization of `credential` succeeded: renewals may be tried again.
    pub fn authorized(&self, credential: &str) {
        let mut s = self.state.lock();
        if matches!(s.by_credential.get(credential), Some(State::Failed(_))) {
            s.by_credential.remove(credential);
        }
    }

    /// Waits up to `limit` for the running renewals to end. `close`: start no more, and reap their
    /// threads (C_Finalize). Returns whether none runs.
    pub fn wait(&self, limit: Duration, close: bool) -> bool {
        let deadline = Instant::now() + limit;
        {
            let mut s = self.state.lock();
            s.closed |= close;
            while s.by_credential.values().any(|v| *v == State::Running) {
                if self.ended.wait_until(&mut s, deadline).timed_out() {
                    return false;
                }
            }
        }
        if close {
            let threads = std::mem::take(&mut *self.threads.lock());
            for t in threads {
                if !crate::token::reap(t, deadline) {
                    return false;
                }
            }
        }
        true
    }

    fn keep_thread(&self, thread: std::thread::JoinHandle<()>) {
        let mut threads = self.threads.lock();
        // Ended ones need no reaping before C_Finalize.
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
    }
}

/// Whether `cred`'s next batch can be authorized in the background on this token now. Not with the
/// agent, whose batches belong to every process of the user.
pub fn applies(token: &Token, cred: &Credential) -> bool {
    let login_pin = token.login.with_user(|_| ()).is_some();
    token.agent_for(cred).is_none() && policy::renews_unattended(&token.config, cred, login_pin)
}

/// The batches of `cred` under login `epoch` run low: starts their renewal if it applies and none runs.
pub fn start(token: &Arc<Token>, cred: &Arc<Credential>, epoch: u64) {
    if !applies(token, cred) || !token.renewals.claim(cred.id(), epoch) {
        return;
    }
    let (t, c) = (token.clone(), cred.clone());
    let spawned = std::thread::Builder::new()
        .name("cloudtoken-renew".into())
        .spawn(move || {
            let outcome = renew(&t, &c, epoch);
            t.renewals.release(c.id(), outcome.err());
        });
    match spawned {
        Ok(thread) => token.renewals.keep_thread(thread),
        Err(e) => {
            log::warn!(
                "slot {}: no thread for the background renewal of {}: {e}",
                token.slot_id,
                cred.id()
            );
            token.renewals.release(cred.id(), Some(epoch));
        }
    }
}

/// One renewal; `Err(epoch)` when it failed.
fn renew(token: &Token, cred: &Credential, epoch: u64) -> Result<(), u64> {
    let gate = token.sads.gate(cred.id());
    let _g = gate.lock();
    // A signer that ran dry may have authorized meanwhile, or the login ended.
    if !token.login.is_current(epoch) || !token.sads.runs_low(cred.id(), epoch) {
        return Ok(());
    }
    let request = super::batch_request(token, cred, epoch);
    let n = request.num_signatures;
    match exchange::authorize_unattended(token, cred, request) {
        Ok(sad) => {
            super::keep(token, cred, &sad, n, epoch);
            log::info!(
                "slot {}: renewed the batch authorization of {} in the background ({n} signatures)",
                token.slot_id,
                cred.id()
            );
            Ok(())
        }
        Err(rv) => {
            log::warn!(
                "slot {}: the background renewal of {} failed ({}); the next batch is authorized \
                 when a signature needs it",
                token.slot_id,
                cred.id(),
                crate::error::rv_name(rv)
            );
            Err(epoch)
        }
    }
}
