//! The signing operation: C_SignInit's checks, the context login, and turning one hash into one remote
//! signature (authorization, then `signatures/signHash`).
//!
//! Size queries and too-small buffers are answered in the FFI layer from `SignPlan::signature_len` before
//! any of this runs, so they never reach the service.

use crate::auth::{self, Need};
use crate::config::OtpChannel;
use crate::error::{self, CkResult, Step};
use crate::mechanism::{self, Hasher, Mechanism, SignPlan, SignRequestParts};
use crate::session::Session;
use crate::token::{Credential, Loaded, Token};
use cryptoki_sys::*;
use remote_client::{Reason, Scal, Secret, SignHashRequest};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct SignOp {
    /// Tells this operation apart from a later one in the same session.
    pub id: u64,
    pub plan: SignPlan,
    pub loaded: Arc<Loaded>,
    /// Index into `loaded.credentials`.
    pub cred: usize,
    /// The login the operation was started under.
    pub epoch: u64,
    pub always_authenticate: bool,
    /// SCAL 2: the context-login value, waiting for the hash.
    pub context: Option<Secret>,
    /// A context login was made for this operation (on a protected-path token possibly without a
    /// value: the module then collects the factors itself).
    pub context_done: bool,
    /// SCAL 1, CKA_ALWAYS_AUTHENTICATE: the SAD the context login obtained for this operation.
    pub sad: Option<Secret>,
    /// Multi-part: the running hash (`Some` once C_SignUpdate was called).
    pub hasher: Option<Hasher>,
}

static OP_IDS: AtomicU64 = AtomicU64::new(1);

fn decode_ulongs(bytes: &[u8]) -> Vec<CK_ULONG> {
    bytes
        .chunks_exact(std::mem::size_of::<CK_ULONG>())
        .map(|c| CK_ULONG::from_ne_bytes(c.try_into().expect("chunk of CK_ULONG size")))
        .collect()
}

/// Whether the session has a signing operation that can still complete. One started under an earlier
/// login (the user logged out, or the service refused the PIN) can only fail, so a new C_SignInit
/// replaces it instead of reporting CKR_OPERATION_ACTIVE.
fn live_operation(session: &Session) -> bool {
    let epoch = session.token.signing_epoch();
    session
        .ops
        .lock()
        .sign
        .as_ref()
        .is_some_and(|op| Some(op.epoch) == epoch)
}

/// C_SignInit. `mech` is already copied out of C memory.
pub fn init(session: &Session, mech: &Mechanism, key: CK_OBJECT_HANDLE) -> CkResult<()> {
    let token = &session.token;
    if live_operation(session) {
        return Err(CKR_OPERATION_ACTIVE);
    }
    let loaded = token.loaded()?;
    let obj = loaded.object(key).ok_or(CKR_KEY_HANDLE_INVALID)?;
    if obj.object.is_private() && !token.is_logged_in() {
        return Err(CKR_USER_NOT_LOGGED_IN);
    }
    let epoch = token.signing_epoch();
    match obj.object.class() {
        CKO_PRIVATE_KEY => {}
        CKO_PUBLIC_KEY | CKO_SECRET_KEY => return Err(CKR_KEY_FUNCTION_NOT_PERMITTED),
        _ => return Err(CKR_KEY_HANDLE_INVALID),
    }
    let epoch = epoch.ok_or(CKR_USER_NOT_LOGGED_IN)?;
    if obj.object.value(CKA_SIGN) != Some(&[CK_TRUE][..]) {
        return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
    }
    let cred_index = obj.credential.ok_or(CKR_KEY_HANDLE_INVALID)?;
    let cred = &loaded.credentials[cred_index];
    let allowed = obj
        .object
        .value(CKA_ALLOWED_MECHANISMS)
        .map(decode_ulongs)
        .unwrap_or_else(|| cred.mechanisms.clone());
    let plan = mechanism::plan(mech, &cred.key, &cred.info.key, &allowed)?;

    // An online OTP (SMS) the application will ask the user for is requested now, so that it has
    // arrived when the application asks. The prompt channel has it sent right before it asks instead.
    let n = signatures_per_authorization(token, cred);
    let app_asks = cred.always_authenticate
        || !(auth::otp_at_hand(token, cred)
            || (cred.info.scal == Scal::One && token.has_usable_sad(cred_index, epoch))
            || token.config.has_channel(OtpChannel::Prompt));
    if Need::of(token, cred).online_otp && app_asks {
        auth::send_otp(token, cred, n)?;
    }

    let current = token.signing_epoch();
    let mut ops = session.ops.lock();
    if ops
        .sign
        .as_ref()
        .is_some_and(|op| Some(op.epoch) == current)
    {
        return Err(CKR_OPERATION_ACTIVE);
    }
    ops.sign = Some(SignOp {
        id: OP_IDS.fetch_add(1, Ordering::Relaxed),
        plan,
        always_authenticate: cred.always_authenticate,
        loaded: loaded.clone(),
        cred: cred_index,
        epoch,
        context: None,
        context_done: false,
        sad: None,
        hasher: None,
    });
    Ok(())
}

/// Signatures one authorization covers: SCAL 1 a batch — the size CLOUDTOKEN_BATCH_SIGNATURES gives
/// for the whole package (batch.rs), else `batch_size` — capped by the credential's `multisign`;
/// SCAL 2 and keys with CKA_ALWAYS_AUTHENTICATE one.
fn signatures_per_authorization(token: &Token, cred: &Credential) -> u32 {
    if cred.info.scal == Scal::Two || cred.always_authenticate {
        1
    } else {
        let batch = crate::batch::signatures().unwrap_or(token.config.batch_size);
        batch.min(cred.info.multisign).max(1)
    }
}

/// C_Login(CKU_CONTEXT_SPECIFIC): the factor for the active signing operation. SCAL 1 authorizes at
/// once (a wrong OTP is reported here); SCAL 2 keeps the value until the hash is known. `None` (a
/// protected-path token given NULL_PTR) has the module collect the factors itself.
pub fn context_login(session: &Session, value: Option<Secret>) -> CkResult<()> {
    let token = &session.token;
    let (op_id, loaded, cred_index, epoch, always_auth) = {
        let ops = session.ops.lock();
        let op = ops.sign.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        (
            op.id,
            op.loaded.clone(),
            op.cred,
            op.epoch,
            op.always_authenticate,
        )
    };
    if token.signing_epoch() != Some(epoch) {
        return Err(CKR_USER_NOT_LOGGED_IN);
    }
    let cred = &loaded.credentials[cred_index];
    if let Some(value) = &value {
        auth::check_context_value(token, cred, value)?;
    }
    let mut sad = None;
    if cred.info.scal == Scal::One {
        let gate = token.auth_gate(cred_index);
        let _g = gate.lock();
        let n = signatures_per_authorization(token, cred);
        let request = auth::Request {
            num_signatures: n,
            hashes: Vec::new(),
            hash_alg: None,
        };
        let granted = auth::authorize(token, cred, request, value)?;
        if always_auth {
            sad = Some(granted.value);
        } else {
            token.store_sad(cred_index, granted.value, n, granted.expires_in, epoch);
        }
        let mut ops = session.ops.lock();
        if let Some(op) = ops.sign.as_mut().filter(|op| op.id == op_id) {
            op.sad = sad;
            op.context_done = true;
        }
    } else {
        let mut ops = session.ops.lock();
        if let Some(op) = ops.sign.as_mut().filter(|op| op.id == op_id) {
            op.context = value;
            op.context_done = true;
        }
    }
    Ok(())
}

/// Makes the one signature of an ended operation. The operation was taken out of its session, so no
/// lock is held while the service works.
pub fn execute(token: &Token, mut op: SignOp, parts: SignRequestParts) -> CkResult<Vec<u8>> {
    if token.signing_epoch() != Some(op.epoch) {
        return Err(CKR_USER_NOT_LOGGED_IN);
    }
    let slot = token.slot_id;
    let cred_index = op.cred;
    let loaded = op.loaded.clone();
    let cred = &loaded.credentials[cred_index];
    let sad = obtain_sad(token, &mut op, cred, &parts)?;
    let request = SignHashRequest {
        credential_id: cred.info.id.clone(),
        sad,
        hashes: vec![parts.hash],
        hash_algorithm_oid: parts.hash_alg.oid().to_owned(),
        sign_algorithm_oid: parts.sign_algo_oid.to_owned(),
        sign_algorithm_params: parts.sign_algo_params,
    };
    let signatures = match token.call_raw(|c, t| c.sign_hash(t, &request)) {
        Ok(s) => s,
        Err(crate::token::CallError::Remote(e)) => {
            if e.reason() == Reason::SadExpired {
                token.drop_sad(cred_index);
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
    op.plan.finish_signature(&signature).inspect_err(|_| {
        log::error!(
            "slot {slot}: the service's signature does not fit the key of {}",
            cred.info.id
        );
    })
}

fn obtain_sad(
    token: &Token,
    op: &mut SignOp,
    cred: &Credential,
    parts: &SignRequestParts,
) -> CkResult<Secret> {
    if let Some(sad) = op.sad.take() {
        return Ok(sad);
    }
    if op.always_authenticate && !op.context_done {
        return Err(error::logged(
            CKR_USER_NOT_LOGGED_IN,
            format!(
                "slot {}: the key of {} needs C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit",
                token.slot_id, cred.info.id
            ),
        ));
    }
    match cred.info.scal {
        Scal::Two => {
            log::info!(
                "slot {}: {} is SCAL 2: this signature is authorized for its own hash, not as part \
                 of a batch (no batch authorization, no agent)",
                token.slot_id,
                cred.info.id
            );
            let request = auth::Request {
                num_signatures: 1,
                hashes: vec![parts.hash.clone()],
                hash_alg: Some(parts.hash_alg),
            };
            let sad = auth::authorize(token, cred, request, op.context.take())?;
            Ok(sad.value)
        }
        Scal::One => {
            if let Some(sad) = token.take_sad_use(op.cred, op.epoch) {
                return Ok(sad);
            }
            let gate = token.auth_gate(op.cred);
            let _g = gate.lock();
            if let Some(sad) = token.take_sad_use(op.cred, op.epoch) {
                return Ok(sad);
            }
            let n = signatures_per_authorization(token, cred);
            let request = auth::Request {
                num_signatures: n,
                hashes: Vec::new(),
                hash_alg: None,
            };
            let sad = auth::authorize(token, cred, request, op.context.take())?;
            token.store_sad(op.cred, sad.value.clone(), n - 1, sad.expires_in, op.epoch);
            Ok(sad.value)
        }
    }
}
