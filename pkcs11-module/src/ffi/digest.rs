//! Message digesting (PKCS#11 §5.10), computed locally. Same output rules as signing: a length query or
//! a too-small buffer leaves the operation active; anything else ends it.

use super::mechanism::read_mechanism;
use super::{check_output, guard, input, write_output, Output};
use crate::operation::digest::DigestOp;
use crate::state;
use cryptoki_sys::*;

/// # Safety
/// `pMechanism` is NULL or points to a readable CK_MECHANISM.
#[no_mangle]
pub unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
) -> CK_RV {
    guard("C_DigestInit", || {
        let s = state::module()?.session(hSession)?;
        // SAFETY: forwarded caller contract.
        let mech = unsafe { read_mechanism(pMechanism) }?;
        let mut ops = s.ops();
        if ops.digest.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        ops.digest = Some(DigestOp::new(&mech)?);
        Ok(())
    })
}

/// # Safety
/// `pData` points to `ulDataLen` readable bytes; `pDigest` is NULL or points to `*pulDigestLen`
/// writable bytes; `pulDigestLen` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_Digest(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Digest", || {
        let s = state::module()?.session(hSession)?;
        let mut ops = s.ops();
        let op = ops.digest.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if op.multipart {
            return Err(CKR_OPERATION_ACTIVE);
        }
        // SAFETY: forwarded caller contract.
        let result = unsafe {
            match check_output(pDigest, pulDigestLen, op.len()) {
                Ok(Output::LengthOnly) => return Ok(()),
                Err(CKR_BUFFER_TOO_SMALL) => return Err(CKR_BUFFER_TOO_SMALL),
                Err(rv) => Err(rv),
                Ok(Output::Proceed) => input(pData, ulDataLen),
            }
        };
        let op = ops.digest.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let data = result?;
        let mut h = op.hasher;
        h.update(data);
        let digest = h.finalize();
        // SAFETY: check_output accepted the buffer for op.len() bytes, the digest's length.
        unsafe { write_output(pDigest, pulDigestLen, &digest) };
        Ok(())
    })
}

/// # Safety
/// `pPart` points to `ulPartLen` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard("C_DigestUpdate", || {
        let s = state::module()?.session(hSession)?;
        let mut ops = s.ops();
        let op = ops.digest.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        // SAFETY: forwarded caller contract.
        match unsafe { input(pPart, ulPartLen) } {
            Ok(part) => {
                op.hasher.update(part);
                op.multipart = true;
                Ok(())
            }
            Err(rv) => {
                ops.digest = None;
                Err(rv)
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn C_DigestKey(hSession: CK_SESSION_HANDLE, _hKey: CK_OBJECT_HANDLE) -> CK_RV {
    guard("C_DigestKey", || {
        let s = state::module()?.session(hSession)?;
        if s.ops().digest.is_none() {
            return Err(CKR_OPERATION_NOT_INITIALIZED);
        }
        // Key values never leave the service.
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

/// # Safety
/// `pDigest` is NULL or points to `*pulDigestLen` writable bytes; `pulDigestLen` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_DigestFinal", || {
        let s = state::module()?.session(hSession)?;
        let mut ops = s.ops();
        let op = ops.digest.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        // SAFETY: forwarded caller contract.
        match unsafe { check_output(pDigest, pulDigestLen, op.len()) } {
            Ok(Output::LengthOnly) => return Ok(()),
            Err(CKR_BUFFER_TOO_SMALL) => return Err(CKR_BUFFER_TOO_SMALL),
            Err(rv) => {
                ops.digest = None;
                return Err(rv);
            }
            Ok(Output::Proceed) => {}
        }
        let op = ops.digest.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let digest = op.hasher.finalize();
        // SAFETY: check_output accepted the buffer for the digest's length.
        unsafe { write_output(pDigest, pulDigestLen, &digest) };
        Ok(())
    })
}
