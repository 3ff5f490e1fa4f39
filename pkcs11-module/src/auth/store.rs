//! The batch store: what is left of SCAL 1 batch authorizations, keyed by credential ID — this process's
//! own cache, or the `cloudtoken agent`'s when one is configured (never both, so that the service's
//! signature count is never spent twice) — and the per-credential gates that serialise authorizations.
//!
//! A credential may have a second batch waiting behind the one in use (a background renewal, renew.rs):
//! signatures come from the oldest usable batch first. A take also says whether the credential runs low
//! (no batch waiting, and the one in use half spent or half through its lifetime), which is when the
//! renewal starts.
//!
//! Calls the agent client (agent.rs). Locks here guard state only: no lock is held while the agent is
//! asked, so a slow agent delays only the signer that asked it.

use crate::agent::Agent;
use crate::service::Secret;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct CachedSad {
    sad: Secret,
    remaining: u32,
    /// Signatures it had when it was kept, and when it was kept: what "half spent" is measured by.
    kept_with: u32,
    kept_at: Instant,
    expires: Instant,
    epoch: u64,
}

impl CachedSad {
    fn usable(&self, epoch: u64) -> bool {
        self.epoch == epoch && self.remaining > 0 && Instant::now() < self.expires
    }

    /// Half spent, or half through its usable lifetime.
    fn low(&self) -> bool {
        let now = Instant::now();
        self.remaining <= self.kept_with / 2
            || now.saturating_duration_since(self.kept_at)
                >= self.expires.saturating_duration_since(self.kept_at) / 2
    }
}

/// Signatures taken from one batch: all of them are made with this one SAD.
pub struct Taken {
    pub sad: Secret,
    pub count: u32,
    /// This process's batches run low: time to authorize the next one (never set for the agent's).
    pub low: bool,
}

#[derive(Default)]
pub struct SadStore {
    own: Mutex<HashMap<String, VecDeque<CachedSad>>>,
    gates: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// Stop using a SAD a little before the service does.
fn usable_lifetime(expires_in: Duration) -> Duration {
    let margin = Duration::from_secs(2).min(expires_in / 4);
    expires_in.saturating_sub(margin)
}

impl SadStore {
    /// Takes one signature's worth of a batch for `credential` under login `epoch`, if one is left and
    /// fresh: this process's, else the agent's.
    #[cfg(test)]
    pub fn take(&self, credential: &str, epoch: u64, agent: Option<&Agent>) -> Option<Secret> {
        self.take_up_to(credential, epoch, 1, agent).map(|t| t.sad)
    }

    /// Takes between 1 and `want` signatures of one batch (never more than it has left) for one
    /// signHash.
    pub fn take_up_to(
        &self,
        credential: &str,
        epoch: u64,
        want: u32,
        agent: Option<&Agent>,
    ) -> Option<Taken> {
        let own = {
            let mut own = self.own.lock();
            let taken = own.get_mut(credential).and_then(|queue| {
                while queue.front().is_some_and(|b| !b.usable(epoch)) {
                    queue.pop_front();
                }
                let front = queue.front_mut()?;
                let count = want.max(1).min(front.remaining);
                front.remaining -= count;
                let sad = front.sad.clone();
                if front.remaining == 0 {
                    queue.pop_front();
                }
                let low = match queue.len() {
                    0 => true,
                    1 => queue.front().is_some_and(CachedSad::low),
                    _ => false,
                };
                Some(Taken { sad, count, low })
            });
            if own.get(credential).is_some_and(VecDeque::is_empty) {
                own.remove(credential);
            }
            taken
        };
        own.or_else(|| {
            agent?.take_one(credential).map(|(sad, _)| Taken {
                sad,
                count: 1,
                low: false,
            })
        })
    }

    /// Whether a signature could be taken now without authorizing.
    pub fn has_usable(&self, credential: &str, epoch: u64, agent: Option<&Agent>) -> bool {
        // The guard is dropped before the agent is asked.
        let own = self
            .own
            .lock()
            .get(credential)
            .is_some_and(|q| q.iter().any(|b| b.usable(epoch)));
        own || agent.is_some_and(|a| a.has_signature(credential))
    }

    /// Whether this process's batches of `credential` run low (see [`Taken::low`]); also true when
    /// there are none.
    pub fn runs_low(&self, credential: &str, epoch: u64) -> bool {
        let own = self.own.lock();
        let usable: Vec<&CachedSad> = own
            .get(credential)
            .into_iter()
            .flatten()
            .filter(|b| b.usable(epoch))
            .collect();
        match usable[..] {
            [] => true,
            [one] => one.low(),
            _ => false,
        }
    }

    /// Keeps a SAD for `remaining` more signatures (with the agent if there is one and it takes it),
    /// behind any batch already kept.
    pub fn keep(
        &self,
        credential: &str,
        sad: Secret,
        remaining: u32,
        expires_in: Duration,
        epoch: u64,
        agent: Option<&Agent>,
    ) {
        if remaining == 0 {
            return;
        }
        let lifetime = usable_lifetime(expires_in);
        if agent.is_some_and(|a| a.put(credential, &sad, remaining, lifetime)) {
            return;
        }
        let now = Instant::now();
        self.own
            .lock()
            .entry(credential.to_owned())
            .or_default()
            .push_back(CachedSad {
                sad,
                remaining,
                kept_with: remaining,
                kept_at: now,
                expires: now + lifetime,
                epoch,
            });
    }

    /// The SAD of this process's batch in use for `credential` under `epoch` (the oldest usable one)
    /// when it stops being usable within `within`: to be extended (the agent's batches are the agent's).
    pub fn expiring(&self, credential: &str, epoch: u64, within: Duration) -> Option<Secret> {
        let own = self.own.lock();
        own.get(credential)?
            .iter()
            .find(|b| b.usable(epoch))
            .filter(|b| b.expires <= Instant::now() + within)
            .map(|b| b.sad.clone())
    }

    /// The batch of `credential` whose SAD was `old` goes on with `sad` (from extendTransaction), its
    /// count unchanged; nothing happens when that batch is gone meanwhile.
    pub fn extended(
        &self,
        credential: &str,
        epoch: u64,
        old: &Secret,
        sad: Secret,
        expires_in: Duration,
    ) {
        if let Some(queue) = self.own.lock().get_mut(credential) {
            if let Some(b) = queue
                .iter_mut()
                .find(|b| b.epoch == epoch && b.sad.expose() == old.expose())
            {
                b.sad = sad;
                b.expires = Instant::now() + usable_lifetime(expires_in);
            }
        }
    }

    /// Drops what is kept for `credential` (the service no longer accepts it), here and at the agent.
    pub fn forget(&self, credential: &str, agent: Option<&Agent>) {
        self.own.lock().remove(credential);
        if let Some(a) = agent {
            a.forget(credential);
        }
    }

    /// Drops every SAD of this process (a logout). The agent's outlive the login on purpose: they belong
    /// to the batch the user authorized, not to one process's login.
    pub fn clear(&self) {
        self.own.lock().clear();
    }

    /// Serialises authorizations of one credential: a second signer waits and then uses the first one's
    /// batch instead of spending another OTP.
    pub fn gate(&self, credential: &str) -> Arc<Mutex<()>> {
        self.gates
            .lock()
            .entry(credential.to_owned())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiring_batch_is_offered_for_extension_and_goes_on_extended() {
        let s = SadStore::default();
        s.keep("c", Secret::new("old"), 3, Duration::from_secs(60), 1, None);
        assert!(
            s.expiring("c", 1, Duration::from_secs(30)).is_none(),
            "58 s left"
        );
        let old = s.expiring("c", 1, Duration::from_secs(59)).unwrap();
        assert_eq!(old.expose(), "old");
        assert!(
            s.expiring("c", 2, Duration::from_secs(59)).is_none(),
            "another login"
        );
        s.extended(
            "c",
            2,
            &old,
            Secret::new("other login"),
            Duration::from_secs(600),
        );
        s.extended(
            "c",
            1,
            &Secret::new("a batch that is gone"),
            Secret::new("wrong"),
            Duration::from_secs(600),
        );
        s.extended("c", 1, &old, Secret::new("new"), Duration::from_secs(600));
        assert!(
            s.expiring("c", 1, Duration::from_secs(59)).is_none(),
            "extended"
        );
        assert_eq!(s.take("c", 1, None).unwrap().expose(), "new");
        assert_eq!(s.take("c", 1, None).unwrap().expose(), "new");
        assert_eq!(s.take("c", 1, None).unwrap().expose(), "new");
        assert!(s.take("c", 1, None).is_none(), "the count is unchanged");
    }

    #[test]
    fn a_batch_is_handed_out_once_per_signature_and_only_to_its_login() {
        let s = SadStore::default();
        s.keep("c", Secret::new("sad"), 2, Duration::from_secs(60), 1, None);
        assert!(s.has_usable("c", 1, None));
        assert!(!s.has_usable("c", 2, None), "another login");
        assert!(s.take("c", 2, None).is_none());
        // The other login's look dropped it.
        assert!(s.take("c", 1, None).is_none());
        s.keep("c", Secret::new("sad"), 2, Duration::from_secs(60), 1, None);
        assert_eq!(s.take("c", 1, None).unwrap().expose(), "sad");
        assert_eq!(s.take("c", 1, None).unwrap().expose(), "sad");
        assert!(s.take("c", 1, None).is_none(), "used up");
        assert!(s.take("other", 1, None).is_none());
    }

    #[test]
    fn an_expiring_batch_is_not_used() {
        let s = SadStore::default();
        s.keep(
            "c",
            Secret::new("sad"),
            5,
            Duration::from_millis(40),
            1,
            None,
        );
        std::thread::sleep(Duration::from_millis(50));
        assert!(!s.has_usable("c", 1, None));
        assert!(s.take("c", 1, None).is_none());
    }

    #[test]
    fn forget_and_clear_drop_batches() {
        let s = SadStore::default();
        s.keep("a", Secret::new("1"), 5, Duration::from_secs(60), 1, None);
        s.keep("b", Secret::new("2"), 5, Duration::from_secs(60), 1, None);
        s.forget("a", None);
        assert!(s.take("a", 1, None).is_none());
        s.clear();
        assert!(s.take("b", 1, None).is_none());
    }

    /// An agent that tells when a request arrived and answers it only when the test lets it.
    fn held_agent(
        dir: &std::path::Path,
    ) -> (
        Agent,
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        use crate::agent::{read_message, write_message, Request, Response};
        let path = dir.join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let (arrived_tx, arrived) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let _: Option<Request> = read_message(&mut stream).ok().flatten();
                let _ = arrived_tx.send(());
                if released.recv().is_err() {
                    return;
                }
                let _ = write_message(&mut stream, &Response::Available { signatures: 0 });
            }
        });
        (Agent::at(path, "https://svc", "alice"), arrived, release)
    }

    #[test]
    fn a_slow_agent_does_not_block_other_signers() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, arrived, release) = held_agent(dir.path());
        let store = SadStore::default();
        store.keep(
            "c2",
            Secret::new("sad"),
            5,
            Duration::from_secs(60),
            1,
            None,
        );
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let store = &store;
            let asking_done = done.clone();
            s.spawn(move || {
                store.has_usable("c1", 1, Some(&agent));
                asking_done.send("agent asker").unwrap();
            });
            // Once the agent holds a request, another signer uses this process's batch: it must finish
            // first (were the store locked across the agent's I/O, it would wait for the agent's timeout).
            arrived.recv().unwrap();
            s.spawn(move || {
                assert!(store.take("c2", 1, None).is_some());
                done.send("other signer").unwrap();
            });
            let first = finished.recv().unwrap();
            release.send(()).unwrap();
            assert_eq!(first, "other signer");
            assert_eq!(finished.recv().unwrap(), "agent asker");
        });
    }

    #[test]
    fn a_renewed_batch_waits_behind_the_one_in_use() {
        let s = SadStore::default();
        let day = Duration::from_secs(86400);
        s.keep("c", Secret::new("first"), 4, day, 1, None);
        let t = s.take_up_to("c", 1, 1, None).unwrap();
        assert_eq!((t.sad.expose(), t.count, t.low), ("first", 1, false));
        // Half spent: low.
        let t = s.take_up_to("c", 1, 1, None).unwrap();
        assert!(t.low);
        assert!(s.runs_low("c", 1));
        s.keep("c", Secret::new("second"), 4, day, 1, None);
        assert!(!s.runs_low("c", 1), "a renewed batch waits");
        // Never more than one batch has left, and never mixed: the first one's last 2, then the second's.
        let t = s.take_up_to("c", 1, 3, None).unwrap();
        assert_eq!((t.sad.expose(), t.count), ("first", 2));
        assert!(!t.low, "the second one is untouched");
        let t = s.take_up_to("c", 1, 10, None).unwrap();
        assert_eq!((t.sad.expose(), t.count, t.low), ("second", 4, true));
        assert!(s.take_up_to("c", 1, 1, None).is_none());
        assert!(s.runs_low("c", 1));
    }

    #[test]
    fn a_batch_half_through_its_lifetime_runs_low() {
        let s = SadStore::default();
        s.keep(
            "c",
            Secret::new("sad"),
            100,
            Duration::from_millis(400),
            1,
            None,
        );
        assert!(!s.runs_low("c", 1));
        std::thread::sleep(Duration::from_millis(200));
        assert!(s.runs_low("c", 1));
        assert!(s.take_up_to("c", 1, 1, None).unwrap().low);
    }
}
