//! A fixed number of logged-in sessions on one token. A PKCS#11 session serves one thread at a
//! time, while the token serves many sessions at once (SoftHSM is thread-safe across sessions), so
//! each operation borrows a session for its duration and concurrent signers sign in parallel. A
//! session the token has invalidated is dropped and replaced by a new one.

use crate::module::Module;
use crate::{Error, Result};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use zeroize::Zeroizing;

pub struct Pool {
    module: Arc<Module>,
    slot: Slot,
    pin: Zeroizing<String>,
    size: usize,
    state: Mutex<State>,
    returned: Condvar,
    peak: AtomicUsize,
}

struct State {
    idle: Vec<Session>,
    /// Sessions that exist: idle plus borrowed.
    open: usize,
}

/// A borrowed session; it goes back to the pool when dropped.
pub struct Borrowed<'a> {
    pool: &'a Pool,
    session: Option<Session>,
}

impl std::ops::Deref for Borrowed<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session
            .as_ref()
            .expect("a borrowed session until dropped")
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        if let Some(s) = self.session.take() {
            state.idle.push(s);
        }
        drop(state);
        self.pool.returned.notify_one();
    }
}

impl Borrowed<'_> {
    /// Drops the session instead of returning it (the token no longer knows it).
    pub fn discard(mut self) {
        let session = self.session.take();
        let mut state = self.pool.lock();
        state.open -= 1;
        drop(state);
        drop(session);
        self.pool.returned.notify_one();
    }
}

/// Errors after which a session is of no further use.
pub fn session_lost(e: &Error) -> bool {
    matches!(
        e.rv(),
        Some(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
        )
    )
}

impl Pool {
    /// Opens the first session and logs the user in (the login holds for every session of the
    /// token in this process).
    pub fn open(module: Arc<Module>, slot: Slot, pin: &str, size: usize) -> Result<Pool> {
        let pool = Pool {
            module,
            slot,
            pin: Zeroizing::new(pin.to_owned()),
            size: size.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            peak: AtomicUsize::new(0),
        };
        let first = pool.new_session()?;
        let mut state = pool.lock();
        state.idle.push(first);
        state.open = 1;
        drop(state);
        Ok(pool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The most sessions ever borrowed at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// A logged-in read/write session. Logs in when the token has no user logged in (the first
    /// session, or after the token forgot the login).
    fn new_session(&self) -> Result<Session> {
        let session = self
            .module
            .pkcs11
            .open_rw_session(self.slot)
            .map_err(Error::pkcs11("C_OpenSession"))?;
        let info = session
            .get_session_info()
            .map_err(Error::pkcs11("C_GetSessionInfo"))?;
        if info.session_state() != SessionState::RwUser {
            let pin = AuthPin::from(self.pin.as_str().to_owned());
            match session.login(UserType::User, Some(&pin)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(Error::pkcs11("C_Login")(e)),
            }
        }
        Ok(session)
    }

    /// Borrows a session, opening one while fewer than `size` exist, else waiting for one.
    pub fn borrow(&self) -> Result<Borrowed<'_>> {
        let mut state = self.lock();
        let session = loop {
            if let Some(s) = state.idle.pop() {
                break s;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                match self.new_session() {
                    Ok(s) => {
                        state = self.lock();
                        break s;
                    }
                    Err(e) => {
                        self.lock().open -= 1;
                        return Err(e);
                    }
                }
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        };
        let in_use = state.open - state.idle.len();
        drop(state);
        self.peak.fetch_max(in_use, Ordering::Relaxed);
        Ok(Borrowed {
            pool: self,
            session: Some(session),
        })
    }

    /// Runs `f` on a borrowed session; when the token has invalidated that session, once more on a
    /// new one.
    pub fn with<T>(&self, f: impl Fn(&Session) -> Result<T>) -> Result<T> {
        let session = self.borrow()?;
        match f(&session) {
            Err(e) if session_lost(&e) => {
                log::warn!("PKCS#11 session lost ({e}); retrying on a new session");
                session.discard();
                let fresh = self.borrow()?;
                f(&fresh)
            }
            r => r,
        }
    }
}
