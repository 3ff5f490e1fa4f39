//! The user's login, shared by every session of the token as PKCS#11 defines it: whether a user is
//! logged in, what C_Login(CKU_USER) gave, and the *epoch* that changes at every login and logout so that
//! operations and authorizations of an ended login are recognised and never used.
//!
//! Calls nothing; its lock guards state only and is never held across a request or a prompt.

use crate::config::TokenMode;
use crate::service::Secret;
use cryptoki_sys::*;
use parking_lot::Mutex;

pub struct UserLogin {
    /// What C_Login(CKU_USER) received: the PIN, possibly followed by an OTP (see auth/factors.rs). Once
    /// the OTP part has been used it is cut off, leaving the PIN.
    pub passcode: Secret,
    pub otp_spent: bool,
}

#[derive(Default)]
struct State {
    epoch: u64,
    user: Option<UserLogin>,
}

pub struct Login {
    mode: TokenMode,
    /// Set when the credentials turn out to need no login (token/credentials.rs, `Loaded::mode`).
    free: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
}

impl Login {
    pub fn new(mode: TokenMode) -> Login {
        Login {
            mode,
            free: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    /// The token's credentials need no login: signing works without one.
    pub fn allow_signing_without_login(&self) {
        self.free.store(true, std::sync::atomic::Ordering::Release);
    }

    fn signs_without_login(&self) -> bool {
        self.mode.signs_without_login() || self.free.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn is_logged_in(&self) -> bool {
        self.state.lock().user.is_some()
    }

    /// The epoch signing operations and SADs belong to: the login's, or on a token that signs without a
    /// login the current one (its PIN is collected at signing time). `None`: no signing now.
    pub fn signing_epoch(&self) -> Option<u64> {
        let s = self.state.lock();
        (s.user.is_some() || self.signs_without_login()).then_some(s.epoch)
    }

    /// Whether `epoch` is still the signing epoch (the login it belongs to has not ended).
    pub fn is_current(&self, epoch: u64) -> bool {
        self.signing_epoch() == Some(epoch)
    }

    pub fn login_user(&self, passcode: Secret) -> Result<(), CK_RV> {
        let mut s = self.state.lock();
        if s.user.is_some() {
            return Err(CKR_USER_ALREADY_LOGGED_IN);
        }
        s.epoch += 1;
        s.user = Some(UserLogin {
            passcode,
            otp_spent: false,
        });
        Ok(())
    }

    /// Ends the login (the PIN and any unused OTP are zeroized on drop) and starts a new epoch.
    pub fn logout(&self) {
        let mut s = self.state.lock();
        s.epoch += 1;
        s.user = None;
    }

    /// Runs `f` on the logged-in user's login, if any, under the lock (no request or prompt in `f`).
    pub fn with_user<R>(&self, f: impl FnOnce(&mut UserLogin) -> R) -> Option<R> {
        self.state.lock().user.as_mut().map(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_login_and_logout_starts_a_new_epoch() {
        let l = Login::new(TokenMode::Pin);
        assert_eq!(l.signing_epoch(), None);
        l.login_user(Secret::new("1234")).unwrap();
        let e = l.signing_epoch().unwrap();
        assert_eq!(
            l.login_user(Secret::new("1234")),
            Err(CKR_USER_ALREADY_LOGGED_IN)
        );
        l.logout();
        assert!(!l.is_current(e));
        l.login_user(Secret::new("1234")).unwrap();
        assert!(l.signing_epoch().unwrap() > e);
    }

    #[test]
    fn a_login_free_token_signs_without_a_login() {
        let l = Login::new(TokenMode::LoginFree);
        let e = l.signing_epoch().unwrap();
        assert!(!l.is_logged_in());
        l.logout();
        assert_ne!(l.signing_epoch(), Some(e));
    }
}
