//! Signing (PKCS#11 §5.11). Length queries and too-small buffers are answered from the mechanism plan
//! without contacting the service and leave the operation active; any other outcome ends it.

use super::mechanism::read_mechanism;
use super::{check_output, guard, input, write_output, Output};
use crate::error::CkResult;
use crate::mechanism::SignRequestParts;
use crate::operation::sign::{self, SignOp};
use crate::session::Session;
use crate::state;
use cryptoki_sys::*;

/// # Safety
/// `pMechanism` is NULL or points to a readable CK_MECHANISM (with its parameter).
#[no_mangle]
pub unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SignInit", || {
        let s = state::module()?.session(hSession)?;
        // SAFETY: forwarded caller contract.
        let mech = unsafe { read_mechanism(pMechanism) }?;
        s.check_no_sign()?;
        let op = sign::init(&s.token, &mech, hKey)?;
        s.install_sign(op)
    })
}

/// Takes the active operation out of the session once the output buffer is known to be usable.
///
/// # Safety
/// `buf`/`len` as for C_Sign's pSignature/pulSignatureLen.
unsafe fn take_for_output(
    s: &Session,
    buf: *mut CK_BYTE,
    len: *mut CK_ULONG,
    single_part: bool,
) -> CkResult<Option<SignOp>> {
    let mut ops = s.ops();
    let op = ops.sign.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
    if single_part && op.is_multipart() {
        // C_SignUpdate started a multi-part operation: only C_SignFinal may end it.
        return Err(CKR_OPERATION_ACTIVE);
    }
    // SAFETY: forwarded caller contract.
    match unsafe { check_output(buf, len, op.plan.signature_len()) } {
        Ok(Output::LengthOnly) => Ok(None),
        Ok(Output::Proceed) => Ok(ops.sign.take()),
        // CKR_BUFFER_TOO_SMALL keeps the operation; a bad pointer ends it like any other error.
        Err(CKR_BUFFER_TOO_SMALL) => Err(CKR_BUFFER_TOO_SMALL),
        Err(rv) => {
            ops.sign = None;
            Err(rv)
        }
    }
}

/// # Safety
/// `pData` points to `ulDataLen` readable bytes; `pSignature` is NULL or points to `*pulSignatureLen`
/// writable bytes; `pulSignatureLen` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Sign", || {
        let s = state::module()?.session(hSession)?;
        // SAFETY: forwarded caller contract.
        let data = match unsafe { input(pData, ulDataLen) } {
            Ok(d) => d,
            Err(rv) => {
                s.ops().sign = None;
                return Err(rv);
            }
        };
        // SAFETY: forwarded caller contract.
        let Some(op) = (unsafe { take_for_output(&s, pSignature, pulSignatureLen, true) })? else {
            return Ok(());
        };
        let parts = op.plan.request_for_data(data)?;
        let signature = sign_once(&s, op, parts)?;
        // SAFETY: check_output accepted the buffer for signature_len() bytes, which the signature has.
        unsafe { finish(pSignature, pulSignatureLen, &signature) }
    })
}

/// The signature of an ended operation, with the outcome in C_Sign's terms: a session closed meanwhile
/// answers CKR_SESSION_CLOSED whatever else happened; a factor the service refused (which only C_Login
/// may call CKR_PIN_INCORRECT) is CKR_USER_NOT_LOGGED_IN when the refusal ended the login (a wrong PIN:
/// the application should log in again), else CKR_FUNCTION_REJECTED (a wrong code: the user stays
/// logged in; or a lock, which no new login mends). The log line says which it was.
fn sign_once(s: &Session, op: SignOp, parts: SignRequestParts) -> CkResult<Vec<u8>> {
    let was_logged_in = s.token.is_logged_in();
    let outcome = sign::execute(&s.token, op, parts, &|| s.is_closed());
    if s.is_closed() {
        return Err(CKR_SESSION_CLOSED);
    }
    outcome.map_err(|rv| match rv {
        CKR_PIN_INCORRECT if was_logged_in && !s.token.is_logged_in() => CKR_USER_NOT_LOGGED_IN,
        CKR_PIN_INCORRECT | CKR_PIN_LOCKED => CKR_FUNCTION_REJECTED,
        other => other,
    })
}

/// # Safety
/// `buf` has room for the plan's signature length, which `signature` must not exceed.
unsafe fn finish(buf: *mut CK_BYTE, len: *mut CK_ULONG, signature: &[u8]) -> CkResult<()> {
    // SAFETY: `len` was checked non-NULL by check_output.
    let capacity = unsafe { *len };
    if (capacity as u128) < signature.len() as u128 {
        // Cannot happen with a correct plan; never write past the caller's buffer.
        return Err(CKR_GENERAL_ERROR);
    }
    // SAFETY: capacity checked above.
    unsafe { write_output(buf, len, signature) };
    Ok(())
}

/// # Safety
/// `pPart` points to `ulPartLen` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard("C_SignUpdate", || {
        let s = state::module()?.session(hSession)?;
        let mut ops = s.ops();
        let op = ops.sign.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        // SAFETY: forwarded caller contract.
        let result = unsafe { input(pPart, ulPartLen) }.and_then(|part| op.update(part));
        if result.is_err() {
            // "A call to C_SignUpdate which results in an error terminates the current signature
            // operation."
            ops.sign = None;
        }
        result
    })
}

/// # Safety
/// `pSignature` is NULL or points to `*pulSignatureLen` writable bytes; `pulSignatureLen` is NULL or
/// valid.
#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_SignFinal", || {
        let s = state::module()?.session(hSession)?;
        // SAFETY: forwarded caller contract.
        let Some(mut op) = (unsafe { take_for_output(&s, pSignature, pulSignatureLen, false) })?
        else {
            return Ok(());
        };
        let parts = op.final_parts()?;
        let signature = sign_once(&s, op, parts)?;
        // SAFETY: check_output accepted the buffer for signature_len() bytes.
        unsafe { finish(pSignature, pulSignatureLen, &signature) }
    })
}
