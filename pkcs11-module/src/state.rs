//! The global module state: what C_Initialize builds and C_Finalize drops, and the fork rule.
//!
//! The state lives behind a *generation*: a lock plus the pid of the process that initialized it. Every
//! call first compares that pid with getpid() without touching the lock, so a forked child (whose copy of
//! the lock may be held by a parent thread that does not exist in the child) never waits on it: it gets
//! CKR_CRYPTOKI_NOT_INITIALIZED. C_Initialize in the child installs a new generation and leaves the
//! inherited one untouched — never dropped, since dropping it would join threads (the HTTP runtime) that
//! only exist in the parent and would close the parent's connections.

use crate::config::Config;
use crate::error::CkResult;
use crate::session::Session;
use crate::token::Token;
use cryptoki_sys::*;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

pub struct Module {
    /// Ordered by slot ID.
    pub tokens: Vec<Arc<Token>>,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<Session>>>,
}

/// Object handles, never reused while the process lives (not even after C_Finalize + C_Initialize, so
/// that a stale handle cannot name a new object).
static OBJECT_HANDLES: once_cell::sync::Lazy<Arc<AtomicU64>> =
    once_cell::sync::Lazy::new(|| Arc::new(AtomicU64::new(1)));
/// Session handles, likewise.
static SESSION_HANDLES: AtomicU64 = AtomicU64::new(1);

impl Module {
    pub fn new(config: &Config) -> Module {
        let handles = OBJECT_HANDLES.clone();
        let mut tokens: Vec<Arc<Token>> = config
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let slot = t.slot_id.unwrap_or(i as u64) as CK_SLOT_ID;
                Token::new(slot, t.clone(), handles.clone())
            })
            .collect();
        tokens.sort_by_key(|t| t.slot_id);
        Module {
            tokens,
            sessions: RwLock::new(HashMap::new()),
        }
    }

    pub fn token(&self, slot: CK_SLOT_ID) -> CkResult<&Arc<Token>> {
        self.tokens
            .iter()
            .find(|t| t.slot_id == slot)
            .ok_or(CKR_SLOT_ID_INVALID)
    }

    pub fn session(&self, handle: CK_SESSION_HANDLE) -> CkResult<Arc<Session>> {
        self.sessions
            .read()
            .get(&handle)
            .cloned()
            .ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    pub fn open_session(&self, token: &Arc<Token>, rw: bool) -> CK_SESSION_HANDLE {
        let handle = SESSION_HANDLES.fetch_add(1, Ordering::Relaxed) as CK_SESSION_HANDLE;
        let session = Session::new(token.clone(), rw);
        self.sessions.write().insert(handle, Arc::new(session));
        token.session_opened(true);
        handle
    }

    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> CkResult<()> {
        let mut sessions = self.sessions.write();
        let s = sessions.remove(&handle).ok_or(CKR_SESSION_HANDLE_INVALID)?;
        s.mark_closed();
        let token = s.token.clone();
        token.session_opened(false);
        // PKCS#11: closing the application's last session with a token logs the user out.
        if !sessions.values().any(|o| Arc::ptr_eq(&o.token, &token)) {
            token.logout();
        }
        Ok(())
    }

    pub fn close_all_sessions(&self, token: &Arc<Token>) {
        let mut sessions = self.sessions.write();
        sessions.retain(|_, s| {
            let of_token = Arc::ptr_eq(&s.token, token);
            if of_token {
                s.mark_closed();
                token.session_opened(false);
            }
            !of_token
        });
        token.logout();
    }

    /// (all sessions, read/write sessions) open with this token.
    pub fn session_counts(&self, token: &Arc<Token>) -> (usize, usize) {
        let sessions = self.sessions.read();
        let mut all = 0;
        let mut rw = 0;
        for s in sessions.values() {
            if Arc::ptr_eq(&s.token, token) {
                all += 1;
                if s.rw {
                    rw += 1;
                }
            }
        }
        (all, rw)
    }
}

struct Generation {
    /// The pid that initialized this generation; 0 while not initialized.
    pid: AtomicU32,
    module: RwLock<Option<Arc<Module>>>,
}

static FIRST: Generation = Generation {
    pid: AtomicU32::new(0),
    module: RwLock::new(None),
};

/// The generation in use; starts as FIRST, replaced (and the old one leaked) only in forked children.
static CURRENT: AtomicPtr<Generation> = AtomicPtr::new(std::ptr::null_mut());

fn current() -> &'static Generation {
    let p = CURRENT.load(Ordering::Acquire);
    if p.is_null() {
        &FIRST
    } else {
        // SAFETY: a non-null CURRENT always comes from Box::leak in `initialize`, so it points to a
        // Generation that is never freed.
        unsafe { &*p }
    }
}

/// The initialized module of this process, or CKR_CRYPTOKI_NOT_INITIALIZED (also in a forked child that
/// has not called C_Initialize itself).
pub fn module() -> CkResult<Arc<Module>> {
    let generation = current();
    let pid = generation.pid.load(Ordering::Acquire);
    if pid == 0 || pid != std::process::id() {
        return Err(CKR_CRYPTOKI_NOT_INITIALIZED);
    }
    generation
        .module
        .read()
        .clone()
        .ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)
}

/// Installs a module built by `build` unless one is installed for this process already.
pub fn initialize(build: impl FnOnce() -> CkResult<Module>) -> CkResult<()> {
    let mut generation = current();
    let pid = generation.pid.load(Ordering::Acquire);
    let me = std::process::id();
    if pid != 0 && pid != me {
        // A forked child: start over on a generation of its own.
        let fresh: &'static Generation = Box::leak(Box::new(Generation {
            pid: AtomicU32::new(0),
            module: RwLock::new(None),
        }));
        CURRENT.store(
            fresh as *const Generation as *mut Generation,
            Ordering::Release,
        );
        generation = fresh;
    }
    let mut slot = generation.module.write();
    if slot.is_some() && generation.pid.load(Ordering::Acquire) == me {
        return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    let module = build()?;
    *slot = Some(Arc::new(module));
    generation.pid.store(me, Ordering::Release);
    Ok(())
}

/// How long C_Finalize waits for each background renewal (auth/renew.rs, token/renewer.rs).
const FINALIZE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Removes the module. It is dropped (HTTP runtime threads joined, secrets zeroized) when the last call
/// still using it returns — here, when no other thread is inside the module.
pub fn finalize() -> CkResult<()> {
    let generation = current();
    let pid = generation.pid.load(Ordering::Acquire);
    if pid == 0 || pid != std::process::id() {
        return Err(CKR_CRYPTOKI_NOT_INITIALIZED);
    }
    let module = {
        let mut slot = generation.module.write();
        let m = slot.take().ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)?;
        generation.pid.store(0, Ordering::Release);
        m
    };
    // A background renewal still talking to the service would outlive the module's code once the
    // application unloads it; none starts from now on, and the running ones get a moment to end.
    for token in &module.tokens {
        if !token.stop_background(FINALIZE_WAIT) {
            log::warn!(
                "slot {}: a background renewal is still running at C_Finalize",
                token.slot_id
            );
        }
    }
    drop(module);
    Ok(())
}
