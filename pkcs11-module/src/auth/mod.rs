//! Authorization: the SAD each signature is made with. The one entry for a signature is
//! [`for_signature`], and for C_Login(CKU_CONTEXT_SPECIFIC) on a SCAL 1 key [`at_context_login`]; both
//! take a SAD from the batch store or authorize a new batch through the same [`authorize_batch`].
//!
//! - SCAL 1: one authorization covers a batch (policy.rs); what is left waits in the store (store.rs:
//!   this process's or the agent's). Authorizations of one credential are serialised by its gate, so that
//!   concurrent signers share one batch instead of each spending a one-time code. [`batch_signatures`]
//!   hands out several signatures of one batch for one signHash (operation/coalesce.rs); when the
//!   batches run low and nobody needs to be asked, the next one is authorized in the background
//!   (renew.rs).
//! - SCAL 2: every signature is authorized for its own hash, never from a batch or the agent.
//!
//! Where the factors come from is factors.rs's, the request and its re-asks exchange.rs's. No
//! authorization is ever made for a login that has ended.

pub mod exchange;
pub mod factors;
pub mod oauth2;
pub mod policy;
pub mod renew;
pub mod store;

use crate::error::{self, CkResult};
use crate::mechanism::HashAlg;
use crate::service::{Sad, Scal, Secret};
use crate::token::{Credential, Token};
use cryptoki_sys::*;
use exchange::Request;
use std::sync::Arc;

/// The login `epoch` ended (logout, closed sessions, a refused PIN): nothing more may be authorized for it.
fn check_current(token: &Token, epoch: u64) -> CkResult<()> {
    if token.login.is_current(epoch) {
        Ok(())
    } else {
        Err(CKR_USER_NOT_LOGGED_IN)
    }
}

/// A SAD for one signature of `hash` with `cred`, under login `epoch`. `context` is the operation's
/// C_Login(CKU_CONTEXT_SPECIFIC) value, if any.
pub fn for_signature(
    token: &Arc<Token>,
    cred: &Arc<Credential>,
    epoch: u64,
    hash: &[u8],
    hash_alg: HashAlg,
    context: Option<Secret>,
) -> CkResult<Secret> {
    check_current(token, epoch)?;
    match cred.info.scal {
        Scal::Two => {
            log::info!(
                "slot {}: {} is SCAL 2: this signature is authorized for its own hash, not as part \
                 of a batch (no batch authorization, no agent)",
                token.slot_id,
                cred.id()
            );
            let request = Request {
                epoch,
                num_signatures: 1,
                hashes: vec![hash.to_vec()],
                hash_alg: Some(hash_alg),
            };
            Ok(exchange::authorize(token, cred, request, context)?.value)
        }
        Scal::One => Ok(batch_signatures(token, cred, epoch, 1, context)?.0),
    }
}

/// Between 1 and `want` signatures of one SCAL 1 batch of `cred` under login `epoch`, for one signHash:
/// the SAD and how many hashes it may sign. Takes them from the store, else authorizes a new batch (its
/// gate held, so that concurrent signers share it); starts the background renewal when the batches run
/// low. `context` is the operation's context-login value, if any.
pub fn batch_signatures(
    token: &Arc<Token>,
    cred: &Arc<Credential>,
    epoch: u64,
    want: u32,
    context: Option<Secret>,
) -> CkResult<(Secret, u32)> {
    check_current(token, epoch)?;
    extend_if_expiring(token, cred, epoch);
    let agent = token.agent_for(cred);
    let taken = match token
        .sads
        .take_up_to(cred.id(), epoch, want, agent.as_ref())
    {
        Some(t) => t,
        None => {
            let gate = token.sads.gate(cred.id());
            let _g = gate.lock();
            // Whoever held the gate may have authorized the batch this signer needs, or ended the login.
            match token
                .sads
                .take_up_to(cred.id(), epoch, want, agent.as_ref())
            {
                Some(t) => t,
                None => {
                    check_current(token, epoch)?;
                    let (sad, n) = authorize_batch(token, cred, epoch, context)?;
                    token.renewals.authorized(cred.id());
                    let count = want.clamp(1, n);
                    keep(token, cred, &sad, n - count, epoch);
                    return Ok((sad.value, count));
                }
            }
        }
    };
    if taken.low {
        renew::start(token, cred, epoch);
    }
    Ok((taken.sad, taken.count))
}

/// C_Login(CKU_CONTEXT_SPECIFIC) on a SCAL 1 key: authorizes now, so that a wrong code is reported to the
/// login. Returns the SAD for this operation when the key has CKA_ALWAYS_AUTHENTICATE; otherwise the
/// whole batch goes to the store and `None` is returned.
pub fn at_context_login(
    token: &Token,
    cred: &Credential,
    epoch: u64,
    value: Option<Secret>,
) -> CkResult<Option<Secret>> {
    let gate = token.sads.gate(cred.id());
    let _g = gate.lock();
    check_current(token, epoch)?;
    let (sad, n) = authorize_batch(token, cred, epoch, value)?;
    if cred.always_authenticate {
        return Ok(Some(sad.value));
    }
    keep(token, cred, &sad, n, epoch);
    Ok(None)
}

/// The one batch authorization request: as many signatures as the policy gives one authorization.
fn batch_request(token: &Token, cred: &Credential, epoch: u64) -> Request {
    Request {
        epoch,
        num_signatures: policy::signatures_per_authorization(&token.config, cred),
        hashes: Vec::new(),
        hash_alg: None,
    }
}

/// Authorizes a batch for a signer: the SAD and how many signatures it covers.
fn authorize_batch(
    token: &Token,
    cred: &Credential,
    epoch: u64,
    context: Option<Secret>,
) -> CkResult<(Sad, u32)> {
    let request = batch_request(token, cred, epoch);
    let n = request.num_signatures;
    Ok((exchange::authorize(token, cred, request, context)?, n))
}

/// Keeps `remaining` signatures of a new batch, unless the login ended meanwhile.
fn keep(token: &Token, cred: &Credential, sad: &Sad, remaining: u32, epoch: u64) {
    if !token.login.is_current(epoch) {
        return;
    }
    let agent = token.agent_for(cred);
    token.sads.keep(
        cred.id(),
        sad.value.clone(),
        remaining,
        sad.expires_in,
        epoch,
        agent.as_ref(),
    );
}

/// A kept batch about to run out of time goes on with a SAD from `credentials/extendTransaction`,
/// when the service lists it, instead of a new authorization (a new code) once it expires. A failed
/// extension changes nothing: the batch is used while it lasts.
fn extend_if_expiring(token: &Token, cred: &Credential, epoch: u64) {
    const METHOD: &str = "credentials/extendTransaction";
    let Some(old) = token.sads.expiring(cred.id(), epoch, EXTEND_WITHIN) else {
        return;
    };
    let slot = token.slot_id;
    let extended = token.account.call(|s, a| {
        if !s.offers(METHOD) {
            return Ok(None);
        }
        s.extend_transaction(a, cred.id(), &old).map(Some)
    });
    match extended {
        Ok(Some(sad)) => {
            log::info!(
                "slot {slot}: the batch of {} runs out of time soon: extended with {METHOD}",
                cred.id()
            );
            token
                .sads
                .extended(cred.id(), epoch, &old, sad.value, sad.expires_in);
        }
        Ok(None) => {}
        Err(crate::token::account::CallError::Remote(e)) => {
            log::warn!("slot {slot}: {METHOD} for {} failed: {e}", cred.id())
        }
        Err(crate::token::account::CallError::Ck(rv)) => {
            log::warn!(
                "slot {slot}: {METHOD} for {} failed: CKR 0x{rv:x}",
                cred.id()
            )
        }
    }
}

/// How close to its end a kept batch is extended.
const EXTEND_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The service refused a SAD the store handed out: drop what is kept for the credential.
pub fn forget_batch(token: &Token, cred: &Credential) {
    let agent = token.agent_for(cred);
    token.sads.forget(cred.id(), agent.as_ref());
}

/// A CKA_ALWAYS_AUTHENTICATE key signed without the context login it needs.
pub fn missing_context_login(token: &Token, cred: &Credential) -> CK_RV {
    error::logged(
        CKR_USER_NOT_LOGGED_IN,
        format!(
            "slot {}: the key of {} needs C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit",
            token.slot_id,
            cred.id()
        ),
    )
}
