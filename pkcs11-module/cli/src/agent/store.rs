//! The agent's memory: per credential, one SAD with the signatures it still covers and when it expires.
//! SADs live only here, zeroized when dropped (at exhaustion, expiry, replacement, `forget`, and exit).

use cloudtoken::agent::{Response, SadKey, WireSad};
use remote_client::Secret;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Bounds what a confused or hostile client of the same user can make the agent hold.
const MAX_ENTRIES: usize = 256;
/// No service issues SADs for longer than hours; a larger value is a client error.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

struct Entry {
    sad: Secret,
    remaining: u32,
    expires: Instant,
}

#[derive(Default)]
pub struct Store {
    entries: HashMap<SadKey, Entry>,
}

fn refused(reason: &str) -> Response {
    Response::Refused {
        reason: reason.to_owned(),
    }
}

impl Store {
    pub fn put(
        &mut self,
        key: SadKey,
        sad: Secret,
        signatures: u32,
        expires_in: Duration,
        now: Instant,
    ) -> Response {
        if signatures == 0 || expires_in.is_zero() {
            return refused("nothing to keep: no signatures or no lifetime left");
        }
        if expires_in > MAX_LIFETIME {
            return refused("lifetime too long");
        }
        self.purge(now);
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            return refused("too many authorizations held");
        }
        self.entries.insert(
            key,
            Entry {
                sad,
                remaining: signatures,
                expires: now + expires_in,
            },
        );
        Response::Stored
    }

    /// All `n` signatures or none; the entry goes once it is used up.
    pub fn take(&mut self, key: &SadKey, n: u32, now: Instant) -> Response {
        if n == 0 {
            return refused("asked for no signatures");
        }
        self.purge(now);
        let Some(entry) = self.entries.get_mut(key) else {
            return Response::Missing;
        };
        if entry.remaining < n {
            return Response::Missing;
        }
        entry.remaining -= n;
        let response = Response::Granted {
            sad: WireSad(entry.sad.clone()),
            expires_in_ms: u64::try_from(entry.expires.saturating_duration_since(now).as_millis())
                .unwrap_or(u64::MAX),
            remaining: entry.remaining,
        };
        if entry.remaining == 0 {
            self.entries.remove(key);
        }
        response
    }

    pub fn peek(&mut self, key: &SadKey, now: Instant) -> Response {
        self.purge(now);
        match self.entries.get(key) {
            Some(e) => Response::Available {
                signatures: e.remaining,
            },
            None => Response::Missing,
        }
    }

    pub fn forget(&mut self, key: &SadKey) -> Response {
        self.entries.remove(key);
        Response::Forgotten
    }

    /// Drops what has expired.
    pub fn purge(&mut self, now: Instant) {
        self.entries.retain(|_, e| now < e.expires);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: &str) -> SadKey {
        SadKey {
            service: "https://s".into(),
            account: "alice".into(),
            credential: c.into(),
        }
    }

    fn granted(r: Response) -> (String, u64, u32) {
        match r {
            Response::Granted {
                sad,
                expires_in_ms,
                remaining,
            } => (sad.0.expose().to_owned(), expires_in_ms, remaining),
            other => panic!("not granted: {other:?}"),
        }
    }

    #[test]
    fn takes_count_down_and_exhaust() {
        let mut s = Store::default();
        let t0 = Instant::now();
        let min = Duration::from_secs(60);
        assert!(matches!(
            s.put(key("c"), Secret::new("sad1"), 3, min, t0),
            Response::Stored
        ));
        let (sad, ms, left) = granted(s.take(&key("c"), 2, t0 + Duration::from_secs(10)));
        assert_eq!((sad.as_str(), ms, left), ("sad1", 50_000, 1));
        // Not enough left for two: nothing is taken.
        assert!(matches!(s.take(&key("c"), 2, t0), Response::Missing));
        assert!(matches!(
            s.peek(&key("c"), t0),
            Response::Available { signatures: 1 }
        ));
        assert_eq!(granted(s.take(&key("c"), 1, t0)).2, 0);
        assert_eq!(s.len(), 0);
        assert!(matches!(s.take(&key("c"), 1, t0), Response::Missing));
    }

    #[test]
    fn keys_are_separate_and_expiry_drops() {
        let mut s = Store::default();
        let t0 = Instant::now();
        s.put(key("a"), Secret::new("A"), 5, Duration::from_secs(5), t0);
        s.put(key("b"), Secret::new("B"), 5, Duration::from_secs(50), t0);
        assert_eq!(granted(s.take(&key("b"), 1, t0)).0, "B");
        let other_account = SadKey {
            account: "bob".into(),
            ..key("a")
        };
        assert!(matches!(s.take(&other_account, 1, t0), Response::Missing));
        let later = t0 + Duration::from_secs(6);
        assert!(matches!(s.take(&key("a"), 1, later), Response::Missing));
        assert_eq!(s.len(), 1);
        assert!(matches!(s.forget(&key("b")), Response::Forgotten));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn put_replaces_and_refuses_nonsense() {
        let mut s = Store::default();
        let t0 = Instant::now();
        let min = Duration::from_secs(60);
        s.put(key("c"), Secret::new("old"), 9, min, t0);
        s.put(key("c"), Secret::new("new"), 2, min, t0);
        assert_eq!(granted(s.take(&key("c"), 1, t0)), ("new".into(), 60_000, 1));
        for r in [
            s.put(key("c"), Secret::new("x"), 0, min, t0),
            s.put(key("c"), Secret::new("x"), 1, Duration::ZERO, t0),
            s.put(key("c"), Secret::new("x"), 1, MAX_LIFETIME * 2, t0),
            s.take(&key("c"), 0, t0),
        ] {
            assert!(matches!(r, Response::Refused { .. }), "{r:?}");
        }
        for i in 0..MAX_ENTRIES {
            s.put(key(&format!("k{i}")), Secret::new("x"), 1, min, t0);
        }
        assert!(matches!(
            s.put(key("one-too-many"), Secret::new("x"), 1, min, t0),
            Response::Refused { .. }
        ));
    }
}
