//! A PKCS#11 session: which token it belongs to, and the operations active in it. The session owns
//! installing, updating and taking operations; the operations themselves (operation/) never see it.
//!
//! The operations lock is never held across a network call or a prompt: a signing operation is taken out
//! of the session before its request.

use crate::operation::digest::DigestOp;
use crate::operation::sign::{Authorization, SignOp};
use crate::token::{Credential, Token};
use cryptoki_sys::*;
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;

pub struct Session {
    pub token: Arc<Token>,
    pub rw: bool,
    ops: Mutex<Operations>,
    /// Set when the session is closed while a call of it is still running (CKR_SESSION_CLOSED).
    closed: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
pub struct Operations {
    pub find: Option<FindOp>,
    pub sign: Option<SignOp>,
    pub digest: Option<DigestOp>,
}

/// C_FindObjects state: the matches, fixed at C_FindObjectsInit.
pub struct FindOp {
    pub handles: Vec<CK_OBJECT_HANDLE>,
    pub next: usize,
}

impl Session {
    pub fn new(token: Arc<Token>, rw: bool) -> Session {
        Session {
            token,
            rw,
            ops: Mutex::new(Operations::default()),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Marks the session closed for calls of it that are still running.
    pub fn mark_closed(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The operations, for the FFI layer's short checks and updates (no request while it is held).
    pub fn ops(&self) -> MutexGuard<'_, Operations> {
        self.ops.lock()
    }

    /// CK_SESSION_INFO.state: the token's login state seen through this session.
    pub fn state(&self) -> CK_STATE {
        match (self.rw, self.token.is_logged_in()) {
            (false, false) => CKS_RO_PUBLIC_SESSION,
            (false, true) => CKS_RO_USER_FUNCTIONS,
            (true, false) => CKS_RW_PUBLIC_SESSION,
            (true, true) => CKS_RW_USER_FUNCTIONS,
        }
    }

    /// Whether a signing operation can still complete. One started under an earlier login (the user
    /// logged out, or the service refused the PIN) can only fail, so a new C_SignInit replaces it instead
    /// of reporting CKR_OPERATION_ACTIVE.
    fn live(&self, op: &SignOp) -> bool {
        self.token.login.is_current(op.epoch)
    }

    /// CKR_OPERATION_ACTIVE when a live signing operation is active.
    pub fn check_no_sign(&self) -> Result<(), CK_RV> {
        match &self.ops.lock().sign {
            Some(op) if self.live(op) => Err(CKR_OPERATION_ACTIVE),
            _ => Ok(()),
        }
    }

    /// Installs a new signing operation (re-checking, since C_SignInit made requests meanwhile).
    pub fn install_sign(&self, op: SignOp) -> Result<(), CK_RV> {
        let mut ops = self.ops.lock();
        if ops.sign.as_ref().is_some_and(|o| self.live(o)) {
            return Err(CKR_OPERATION_ACTIVE);
        }
        ops.sign = Some(op);
        Ok(())
    }

    /// What a context login needs of the active signing operation: its ID, credential and login epoch.
    pub fn sign_target(&self) -> Result<(u64, Arc<Credential>, u64), CK_RV> {
        let ops = self.ops.lock();
        let op = ops.sign.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok((op.id, op.cred.clone(), op.epoch))
    }

    /// Records a context login's outcome on the operation `id`, if it is still the active one.
    pub fn set_sign_authorization(&self, id: u64, authorization: Authorization) {
        if let Some(op) = self.ops.lock().sign.as_mut().filter(|op| op.id == id) {
            op.authorization = authorization;
        }
    }
}
