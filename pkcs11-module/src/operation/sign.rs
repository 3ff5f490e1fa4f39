//! The signing operation: C_SignInit's checks and plan, the context login, and turning one hash into one
//! remote signature (a SAD from the authorization step, then the service's signature, turned into the
//! PKCS#11 form).
//!
//! Calls the mechanism plan, the authorization step and the account. Knows nothing of sessions: the
//! session installs and takes the operation (session.rs), so no session lock is held while the service
//! works. Size queries and too-small buffers are answered in the FFI layer from
//! `SignPlan::signature_len` before any of this runs, so they never reach the service.

use super::coalesce;
use crate::auth::{self, factors, policy};
use crate::error::{self, CkResult, Step};
use crate::mechanism::{self, Hasher, Mechanism, Rejected, SignPlan, SignRequestParts};
use crate::service::{Reason, Scal, Secret, SignHashRequest};
use crate::token::account::CallError;
use crate::token::{Credential, Token};
use cryptoki_sys::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where an operation stands with its authorization.
pub enum Authorization {
    /// Nothing given for this operation: the batch or a new authorization serves it.
    Open,
    /// A context login was made: its value (SCAL 2: waiting for the hash; `None` on a protected-path
    /// token given NULL_PTR, where the module collects the factors itself).
    Context(Option<Secret>),
    /// SCAL 1 with CKA_ALWAYS_AUTHENTICATE: the SAD the context login obtained, for this operation only.
    Authorized(Secret),
}

pub struct SignOp {
    /// Tells this operation apart from a later one in the same session.
    pub id: u64,
    pub plan: SignPlan,
    pub cred: Arc<Credential>,
    /// The login the operation was started under.
    pub epoch: u64,
    pub authorization: Authorization,
    /// Multi-part: what C_SignUpdate gave so far.
    progress: Progress,
}

/// What the parts of a multi-part operation amount to so far.
enum Progress {
    /// No C_SignUpdate yet.
    Started,
    /// A mechanism that hashes locally: the running hash.
    Hashing(Box<Hasher>),
    /// A raw mechanism (its input is a hash or a DigestInfo, at most a few dozen bytes): the parts.
    Collecting(Vec<u8>),
}

/// The most a raw mechanism's parts may add up to: more than any DigestInfo or hash.
const MAX_RAW_INPUT: usize = 1024;

impl SignOp {
    /// Whether C_SignUpdate started a multi-part operation (then only C_SignFinal may end it).
    pub fn is_multipart(&self) -> bool {
        !matches!(self.progress, Progress::Started)
    }

    /// C_SignUpdate: one more part.
    pub fn update(&mut self, part: &[u8]) -> CkResult<()> {
        if let Progress::Started = self.progress {
            self.progress = match self.plan.hasher() {
                Some(h) => Progress::Hashing(Box::new(h)),
                None => Progress::Collecting(Vec::new()),
            };
        }
        match &mut self.progress {
            Progress::Hashing(h) => h.update(part),
            Progress::Collecting(v) => {
                if v.len() + part.len() > MAX_RAW_INPUT {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                v.extend_from_slice(part);
            }
            Progress::Started => {}
        }
        Ok(())
    }

    /// C_SignFinal: the request parts for everything given (the empty message straight after
    /// C_SignInit).
    pub fn final_parts(&mut self) -> CkResult<SignRequestParts> {
        match std::mem::replace(&mut self.progress, Progress::Started) {
            Progress::Hashing(h) => self.plan.request_for_digest(h.finalize()),
            Progress::Collecting(data) => self.plan.request_for_data(&data),
            Progress::Started => match self.plan.hasher() {
                Some(h) => self.plan.request_for_digest(h.finalize()),
                None => self.plan.request_for_data(&[]),
            },
        }
    }
}

static OP_IDS: AtomicU64 = AtomicU64::new(1);

fn decode_ulongs(bytes: &[u8]) -> Vec<CK_ULONG> {
    bytes
        .chunks_exact(std::mem::size_of::<CK_ULONG>())
        .filter_map(|c| c.try_into().ok().map(CK_ULONG::from_ne_bytes))
        .collect()
}

/// C_SignInit: checks the key and mechanism, makes the plan, and has the service send an online OTP the
/// application will ask for. `mech` is already copied out of C memory.
pub fn init(token: &Token, mech: &Mechanism, key: CK_OBJECT_HANDLE) -> CkResult<SignOp> {
    // Whichever set the key belongs to: a short-lived key signs until its certificate expires, with
    // that certificate's identity (never a renewed one).
    let loaded = token.set_of(key).ok_or(CKR_KEY_HANDLE_INVALID)?;
    let obj = loaded.object(key).ok_or(CKR_KEY_HANDLE_INVALID)?;
    if obj.object.is_private() && !token.is_logged_in() {
        return Err(CKR_USER_NOT_LOGGED_IN);
    }
    let epoch = token.login.signing_epoch();
    match obj.object.class() {
        CKO_PRIVATE_KEY => {}
        CKO_PUBLIC_KEY | CKO_SECRET_KEY => return Err(CKR_KEY_FUNCTION_NOT_PERMITTED),
        _ => return Err(CKR_KEY_HANDLE_INVALID),
    }
    let epoch = epoch.ok_or(CKR_USER_NOT_LOGGED_IN)?;
    if obj.object.value(CKA_SIGN) != Some(&[CK_TRUE][..]) {
        return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
    }
    let cred = obj.credential.clone().ok_or(CKR_KEY_HANDLE_INVALID)?;
    let allowed = obj
        .object
        .value(CKA_ALLOWED_MECHANISMS)
        .map(decode_ulongs)
        .unwrap_or_else(|| cred.mechanisms.clone());
    let plan = mechanism::plan(mech, &cred.key, &cred.info.key, &allowed)?;

    let agent = || token.agent_for(&cred);
    let send = policy::send_otp_at_sign_init(
        &token.config,
        &cred,
        factors::otp_at_hand(token, &cred),
        || token.sads.has_usable(cred.id(), epoch, agent().as_ref()),
    );
    if send {
        let n = policy::signatures_per_authorization(&token.config, &cred);
        auth::exchange::send_otp(token, &cred, n)?;
    }
    Ok(SignOp {
        id: OP_IDS.fetch_add(1, Ordering::Relaxed),
        plan,
        cred,
        epoch,
        authorization: Authorization::Open,
        progress: Progress::Started,
    })
}

/// C_Login(CKU_CONTEXT_SPECIFIC) for the operation on `cred` started under `epoch`: the authorization
/// state to give the operation. SCAL 1 authorizes at once (a wrong OTP is reported here); SCAL 2 keeps the
/// value until the hash is known.
pub fn context_login(
    token: &Token,
    cred: &Credential,
    epoch: u64,
    value: Option<Secret>,
) -> CkResult<Authorization> {
    if !token.login.is_current(epoch) {
        return Err(CKR_USER_NOT_LOGGED_IN);
    }
    if cred.info.scal == crate::service::Scal::One {
        return Ok(match auth::at_context_login(token, cred, epoch, value)? {
            Some(sad) => Authorization::Authorized(sad),
            None => Authorization::Context(None),
        });
    }
    Ok(Authorization::Context(value))
}

/// Makes the one signature of an ended operation. The operation was taken out of its session, so no lock
/// is held while the service works. `abandoned` says whether the session was closed meanwhile: then
/// nothing more is sent (CKR_SESSION_CLOSED).
///
/// A SCAL 1 signature of a batch joins its credential's lane (coalesce.rs) and may travel with other
/// signers' hashes; every other one (SCAL 2, a context login's SAD) is sent alone with its own SAD.
pub fn execute(
    token: &Arc<Token>,
    op: SignOp,
    parts: SignRequestParts,
    abandoned: &dyn Fn() -> bool,
) -> CkResult<Vec<u8>> {
    if abandoned() {
        return Err(CKR_SESSION_CLOSED);
    }
    if !token.login.is_current(op.epoch) {
        return Err(CKR_USER_NOT_LOGGED_IN);
    }
    let slot = token.slot_id;
    let cred = &op.cred;
    let mut request = SignHashRequest {
        credential_id: cred.id().to_owned(),
        sad: Secret::new(""),
        hashes: vec![parts.hash.clone()],
        hash_algorithm_oid: parts.hash_alg.oid().to_owned(),
        sign_algorithm_oid: parts.sign_algo_oid.to_owned(),
        sign_algorithm_params: parts.sign_algo_params.clone(),
    };
    let batch = cred.info.scal == Scal::One && !cred.always_authenticate;
    let signature = match op.authorization {
        Authorization::Open if batch => coalesce::sign(token, cred, op.epoch, request)?,
        Authorization::Open if cred.always_authenticate => {
            return Err(auth::missing_context_login(token, cred))
        }
        authorization => {
            request.sad = match authorization {
                Authorization::Authorized(sad) => sad,
                Authorization::Context(value) => {
                    auth::for_signature(token, cred, op.epoch, &parts.hash, parts.hash_alg, value)?
                }
                Authorization::Open => {
                    auth::for_signature(token, cred, op.epoch, &parts.hash, parts.hash_alg, None)?
                }
            };
            // The authorization may have taken a while (a prompt, an approval, a TOTP step).
            if abandoned() {
                return Err(CKR_SESSION_CLOSED);
            }
            if !token.login.is_current(op.epoch) {
                return Err(CKR_USER_NOT_LOGGED_IN);
            }
            sign_alone(token, cred, &request)?
        }
    };
    op.plan
        .accept(&cred.public_key, &parts, &signature)
        .map_err(|why| {
            let id = cred.id();
            let reason = match why {
                Rejected::Malformed => format!("the service's signature does not fit the key of {id}"),
                Rejected::DoesNotVerify => format!(
                    "the service's signature does not verify under the public key of {id}; \
                     it is not returned"
                ),
                Rejected::Unverifiable(what) => format!(
                    "the service's signature for {id} could not be checked, so it is not returned: {what}"
                ),
            };
            error::logged(CKR_DEVICE_ERROR, format!("slot {slot}: {reason}"))
        })
}

/// One signHash for one hash with the SAD of `request`: the service's signature.
fn sign_alone(token: &Token, cred: &Credential, request: &SignHashRequest) -> CkResult<Vec<u8>> {
    let slot = token.slot_id;
    let signatures = match token.account.act(|s, a| s.sign_hashes(a, request)) {
        Ok(s) => s,
        Err(CallError::Remote(e)) => {
            if e.reason() == Reason::SadExpired {
                auth::forget_batch(token, cred);
            }
            return Err(error::from_remote(slot, Step::Sign, &e));
        }
        Err(e) => return Err(e.into_rv(slot, Step::Sign)),
    };
    let [signature] = <[Vec<u8>; 1]>::try_from(signatures).map_err(|v| {
        error::logged(
            CKR_DEVICE_ERROR,
            format!(
                "slot {slot}: the service returned {} signatures for one hash",
                v.len()
            ),
        )
    })?;
    Ok(signature)
}
