//! Sessions of the decision pages (api::decision_page; the approval page here, the DSS emulator's
//! confirmation page): a random token in an HttpOnly cookie names a server-side session of
//! one user, with its own CSRF token for the forms. Sessions live in memory (a restart logs everyone
//! out), keyed by the token's SHA-256, and end after a fixed lifetime whatever the activity.

use crate::db::secret_id;
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds a session lasts.
pub const LIFETIME: i64 = 600;

/// Why a page sign-in failed, as far as the page tells the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageLoginError {
    /// Unknown user, wrong password or wrong code: the page does not say which.
    Rejected,
    /// Too many failures of the password or of the code.
    Locked,
    Internal,
}

#[derive(Clone)]
pub struct Session {
    pub user: String,
    csrf: Zeroizing<String>,
    pub expires_at: i64,
}

impl Session {
    /// The CSRF token the session's forms carry.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

#[derive(Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<Vec<u8>, Session>>,
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Session>> {
        // Every change is a single map operation: a panic elsewhere cannot leave it half-done.
        self.by_token.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session of `user`; returns its token, the cookie value.
    pub fn create(&self, user: &str, now: i64) -> Zeroizing<String> {
        let token = crate::random::token();
        let session = Session {
            user: user.to_owned(),
            csrf: crate::random::token(),
            expires_at: now + LIFETIME,
        };
        let mut map = self.map();
        map.retain(|_, s| s.expires_at > now);
        map.insert(secret_id(&token), session);
        token
    }

    pub fn get(&self, token: &str, now: i64) -> Option<Session> {
        self.map()
            .get(&secret_id(token))
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    pub fn end(&self, token: &str) {
        self.map().remove(&secret_id(token));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let sessions = Sessions::default();
        let a = sessions.create("alice", 1000);
        let b = sessions.create("bob", 1000);
        assert_ne!(*a, *b);
        let sa = sessions.get(&a, 1000 + LIFETIME - 1).unwrap();
        let sb = sessions.get(&b, 1000).unwrap();
        assert_eq!(sa.user, "alice");
        assert_eq!(sb.user, "bob");
        assert_ne!(sa.csrf(), sb.csrf());
        assert_ne!(a.as_str(), sa.csrf(), "the CSRF token is not the cookie");
        assert!(sa.csrf_matches(sa.csrf()));
        assert!(!sa.csrf_matches(sb.csrf()));
        assert!(!sa.csrf_matches(""));
        assert!(sessions.get("made-up", 1000).is_none());
        // Fixed lifetime.
        assert!(sessions.get(&a, 1000 + LIFETIME).is_none());
        // Logout ends only that session.
        sessions.end(&b);
        assert!(sessions.get(&b, 1001).is_none());
        assert!(sessions.get(&a, 1001).is_some());
        // Expired sessions are dropped when new ones come.
        sessions.create("carol", 1000 + LIFETIME);
        assert_eq!(sessions.map().len(), 1);
    }
}
