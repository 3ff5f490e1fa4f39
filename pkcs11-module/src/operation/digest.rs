//! The digest operation (C_Digest*): SHA-1 and SHA-2, computed here, never sent anywhere.

use crate::error::CkResult;
use crate::mechanism::{HashAlg, Hasher, Mechanism};
use cryptoki_sys::*;

pub struct DigestOp {
    pub hasher: Hasher,
    /// C_DigestUpdate was called: C_Digest is no longer allowed.
    pub multipart: bool,
}

impl DigestOp {
    pub fn new(mech: &Mechanism) -> CkResult<DigestOp> {
        let alg = HashAlg::from_ckm_digest(mech.mechanism).ok_or(CKR_MECHANISM_INVALID)?;
        if !mech.parameter.is_empty() {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        Ok(DigestOp {
            hasher: alg.hasher(),
            multipart: false,
        })
    }

    pub fn len(&self) -> usize {
        self.hasher.alg().len()
    }
}
