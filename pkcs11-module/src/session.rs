//! A PKCS#11 session: which token it belongs to and the operations active in it.

use crate::digest::DigestOp;
use crate::sign::SignOp;
use crate::token::Token;
use cryptoki_sys::*;
use parking_lot::Mutex;
use std::sync::Arc;

pub struct Session {
    pub token: Arc<Token>,
    pub rw: bool,
    /// Never held across a network call: a signing operation is taken out of it before the request.
    pub ops: Mutex<Operations>,
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
        }
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
}
