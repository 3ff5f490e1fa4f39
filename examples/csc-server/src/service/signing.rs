//! `signatures/signHash`: the checks that can refuse a request before its SAD is spent, spending the
//! SAD, and the signatures.

use super::{sad_error, Caller, Service};
use crate::algorithms::{self, AlgorithmRequest, HashAlg};
use crate::audit::Event;
use crate::error::{CscError, CscResult};
use crate::sad;
use zeroize::Zeroizing;

pub struct SignRequest<'a> {
    pub credential_id: &'a str,
    pub sad: Zeroizing<String>,
    pub hashes: Vec<Vec<u8>>,
    pub algorithm: AlgorithmRequest<'a>,
}

impl Service {
    // ---- signing ----

    pub fn sign_hash(&self, caller: &Caller, req: SignRequest<'_>) -> CscResult<Vec<Vec<u8>>> {
        let result = self.sign_hash_inner(caller, &req);
        let ev = Event {
            event: "signatures/signHash",
            user: Some(&caller.user),
            credential: self.own_credential_id(caller, req.credential_id),
            hashes: &req.hashes,
            outcome: "",
            detail: Some(req.algorithm.sign_algo),
        };
        self.audited(ev, result)
    }

    fn sign_hash_inner(&self, caller: &Caller, req: &SignRequest<'_>) -> CscResult<Vec<Vec<u8>>> {
        let cred = self.credential(caller, req.credential_id)?;
        if req.hashes.is_empty() {
            return Err(CscError::invalid_param("hashes"));
        }
        // Everything that can be refused is refused before the SAD is spent.
        let op = algorithms::resolve(cred.key, &req.algorithm)?;
        op.check_hashes(&req.hashes)?;
        let u = sad::Use {
            sad: &req.sad,
            user: &cred.user,
            credential: &cred.id,
            hashes: &req.hashes,
            hash_algo: op.hash().map(HashAlg::oid),
        };
        let now = self.now();
        // Spent now, durable with the audit entry of this request (`sign_hash`), before any
        // signature is returned.
        self.db
            .write_pending(|conn| sad::consume(conn, &u, now))?
            .map_err(sad_error)?;

        req.hashes
            .iter()
            .map(|h| {
                self.keys
                    .sign(&cred.id, op, h)
                    .map_err(|e| CscError::internal("signing", e))
            })
            .collect()
    }
}
