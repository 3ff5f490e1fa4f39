//! Object management (PKCS#11 §5.7). Objects are the service's credentials, fetched when the first session
//! opened (and, for short-lived credentials, renewed in the background): reading never makes a request.
//! A handle is looked up in whichever set it belongs to; a search sees the session's set
//! (session.rs). The token is read-only.

use super::template::{get_attribute_value, read_template};
use super::{guard, to_usize, write};
use crate::session::{FindOp, Session};
use crate::state;
use cryptoki_sys::*;
use std::sync::Arc;

#[no_mangle]
pub extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    _pTemplate: *mut CK_ATTRIBUTE,
    _ulCount: CK_ULONG,
    _phObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_CreateObject", || {
        state::module()?.session(hSession)?;
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    _hObject: CK_OBJECT_HANDLE,
    _pTemplate: *mut CK_ATTRIBUTE,
    _ulCount: CK_ULONG,
    _phNewObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_CopyObject", || {
        state::module()?.session(hSession)?;
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    _hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_DestroyObject", || {
        state::module()?.session(hSession)?;
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

/// # Safety
/// `pulSize` is NULL or points to a writable CK_ULONG.
#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetObjectSize", || {
        let s = state::module()?.session(hSession)?;
        s.object(hObject, |_| Ok(()))?;
        // The objects take no token memory: they are views of the service's credentials.
        // SAFETY: forwarded caller contract.
        unsafe { write(pulSize, CK_UNAVAILABLE_INFORMATION) }
    })
}

/// # Safety
/// `pTemplate` is NULL or points to `ulCount` CK_ATTRIBUTE whose non-NULL pValue point to ulValueLen
/// writable bytes.
#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_GetAttributeValue", || {
        let s = state::module()?.session(hSession)?;
        s.object(hObject, |obj| {
            if pTemplate.is_null() {
                return Err(CKR_ARGUMENTS_BAD);
            }
            to_usize(ulCount)?;
            // SAFETY: non-NULL template of `ulCount` entries by the caller's contract.
            match unsafe { get_attribute_value(&obj.object, pTemplate, ulCount) } {
                CKR_OK => Ok(()),
                rv => Err(rv),
            }
        })
    })
}

#[no_mangle]
pub extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    _pTemplate: *mut CK_ATTRIBUTE,
    _ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_SetAttributeValue", || {
        let s = state::module()?.session(hSession)?;
        s.object(hObject, |_| Ok(()))?;
        // Every attribute mirrors the service's data.
        Err(CKR_ACTION_PROHIBITED)
    })
}

/// # Safety
/// `pTemplate` is NULL (with `ulCount` 0) or points to `ulCount` readable CK_ATTRIBUTE.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_FindObjectsInit", || {
        let s = state::module()?.session(hSession)?;
        if s.ops().find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        // SAFETY: forwarded caller contract.
        let template = unsafe { read_template(pTemplate, ulCount) }?;
        let loaded = s.view()?;
        let handles = loaded.find(&template, s.token.is_logged_in());
        let mut ops = s.ops();
        if ops.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        ops.find = Some(FindOp { handles, next: 0 });
        Ok(())
    })
}

/// # Safety
/// `phObject` is NULL or points to `ulMaxObjectCount` writable handles; `pulObjectCount` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: *mut CK_OBJECT_HANDLE,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_FindObjects", || {
        let s: Arc<Session> = state::module()?.session(hSession)?;
        if pulObjectCount.is_null() || (phObject.is_null() && ulMaxObjectCount != 0) {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let max = to_usize(ulMaxObjectCount)?;
        let mut ops = s.ops();
        let find = ops.find.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let rest = &find.handles[find.next..];
        let n = rest.len().min(max);
        if n > 0 {
            // SAFETY: the caller provides `ulMaxObjectCount` >= n writable handles.
            unsafe { std::ptr::copy_nonoverlapping(rest.as_ptr(), phObject, n) };
        }
        find.next += n;
        // SAFETY: non-NULL, writable by the caller's contract.
        unsafe { write(pulObjectCount, n as CK_ULONG) }
    })
}

#[no_mangle]
pub extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_FindObjectsFinal", || {
        let s = state::module()?.session(hSession)?;
        let ended = s.ops().find.take();
        ended.map(|_| ()).ok_or(CKR_OPERATION_NOT_INITIALIZED)
    })
}
