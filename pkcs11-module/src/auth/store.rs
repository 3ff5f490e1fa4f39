//! The batch store: what is left of SCAL 1 batch authorizations, keyed by credential ID — this process's
//! own cache, or the `cloudtoken agent`'s when one is configured (never both, so that the service's
//! signature count is never spent twice) — and the per-credential gates that serialise authorizations.
//!
//! Calls the agent client (agent.rs). Locks here guard state only: no lock is held while the agent is
//! asked, so a slow agent delays only the signer that asked it.

use crate::agent::Agent;
use crate::service::Secret;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct CachedSad {
    sad: Secret,
    remaining: u32,
    expires: Instant,
    epoch: u64,
}

impl CachedSad {
    fn usable(&self, epoch: u64) -> bool {
        self.epoch == epoch && self.remaining > 0 && Instant::now() < self.expires
    }
}

#[derive(Default)]
pub struct SadStore {
    own: Mutex<HashMap<String, CachedSad>>,
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
    pub fn take(&self, credential: &str, epoch: u64, agent: Option<&Agent>) -> Option<Secret> {
        let own = {
            let mut own = self.own.lock();
            match own.get_mut(credential) {
                Some(entry) if entry.usable(epoch) => {
                    entry.remaining -= 1;
                    let sad = entry.sad.clone();
                    if entry.remaining == 0 {
                        own.remove(credential);
                    }
                    Some(sad)
                }
                Some(_) => {
                    own.remove(credential);
                    None
                }
                None => None,
            }
        };
        own.or_else(|| agent?.take_one(credential).map(|(sad, _)| sad))
    }

    /// Whether a signature could be taken now without authorizing.
    pub fn has_usable(&self, credential: &str, epoch: u64, agent: Option<&Agent>) -> bool {
        // The guard is dropped before the agent is asked.
        let own = self
            .own
            .lock()
            .get(credential)
            .is_some_and(|e| e.usable(epoch));
        own || agent.is_some_and(|a| a.has_signature(credential))
    }

    /// Keeps a SAD for `remaining` more signatures (with the agent if there is one and it takes it).
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
        self.own.lock().insert(
            credential.to_owned(),
            CachedSad {
                sad,
                remaining,
                expires: Instant::now() + lifetime,
                epoch,
            },
        );
    }

    /// This process's batch for `credential` under `epoch` when it is still usable but stops being so
    /// within `within`: its SAD, to be extended (the agent's batches are the agent's).
    pub fn expiring(&self, credential: &str, epoch: u64, within: Duration) -> Option<Secret> {
        let own = self.own.lock();
        own.get(credential)
            .filter(|e| e.usable(epoch) && e.expires <= Instant::now() + within)
            .map(|e| e.sad.clone())
    }

    /// The batch of `credential` goes on with `sad` (from extendTransaction), its count unchanged.
    pub fn extended(&self, credential: &str, epoch: u64, sad: Secret, expires_in: Duration) {
        if let Some(e) = self.own.lock().get_mut(credential) {
            if e.epoch == epoch {
                e.sad = sad;
                e.expires = Instant::now() + usable_lifetime(expires_in);
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
        s.extended("c", 2, Secret::new("other login"), Duration::from_secs(600));
        s.extended("c", 1, Secret::new("new"), Duration::from_secs(600));
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
}
