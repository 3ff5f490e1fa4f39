//! Slot and token management (PKCS#11 §5.5).

use super::{guard, padded, write};
use crate::mechanism::{self, DIGEST_MECHANISMS};
use crate::state;
use cryptoki_sys::*;
use std::ffi::c_void;

/// Fills a caller's array following the size-query convention: NULL → count only; too small →
/// CKR_BUFFER_TOO_SMALL with the count.
///
/// # Safety
/// `list` is NULL or points to `*count` writable elements; `count` is NULL or valid.
unsafe fn fill_list<T: Copy>(list: *mut T, count: *mut CK_ULONG, items: &[T]) -> Result<(), CK_RV> {
    if count.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL, valid by the caller's contract.
    let capacity = unsafe { *count };
    // SAFETY: as above.
    unsafe { *count = items.len() as CK_ULONG };
    if list.is_null() {
        return Ok(());
    }
    if (capacity as u128) < items.len() as u128 {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: the caller provides `capacity` >= items.len() writable elements.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), list, items.len()) };
    Ok(())
}

/// # Safety
/// `pSlotList` is NULL or points to `*pulCount` writable slot IDs; `pulCount` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    _tokenPresent: CK_BBOOL,
    pSlotList: *mut CK_SLOT_ID,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetSlotList", || {
        let m = state::module()?;
        // Every slot always holds its token, so tokenPresent changes nothing.
        let ids: Vec<CK_SLOT_ID> = m.tokens.iter().map(|t| t.slot_id).collect();
        // SAFETY: forwarded caller contract.
        unsafe { fill_list(pSlotList, pulCount, &ids) }
    })
}

/// # Safety
/// `pInfo` is NULL or points to a writable CK_SLOT_INFO.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) -> CK_RV {
    guard("C_GetSlotInfo", || {
        let m = state::module()?;
        let token = m.token(slotID)?;
        let info = CK_SLOT_INFO {
            slotDescription: padded(&format!("cloudtoken: {}", token.config.label)),
            manufacturerID: padded("cloudtoken"),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: CK_VERSION { major: 0, minor: 0 },
            firmwareVersion: super::library_version(),
        };
        // SAFETY: forwarded caller contract.
        unsafe { write(pInfo, info) }
    })
}

/// Shortest and longest value C_Login(CKU_USER) accepts (a PIN, possibly followed by an OTP).
pub const MIN_PIN_LEN: usize = 1;
pub const MAX_PIN_LEN: usize = 255;

/// # Safety
/// `pInfo` is NULL or points to a writable CK_TOKEN_INFO.
#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) -> CK_RV {
    guard("C_GetTokenInfo", || {
        let m = state::module()?;
        let token = m.token(slotID)?;
        let (sessions, rw) = m.session_counts(token);
        let info = CK_TOKEN_INFO {
            label: padded(&token.config.label),
            manufacturerID: padded("cloudtoken"),
            model: padded(token.config.protocol.model()),
            serialNumber: padded(&token.serial),
            flags: CKF_TOKEN_INITIALIZED
                | CKF_USER_PIN_INITIALIZED
                | CKF_RNG
                | token.mode().login_flags(),
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: sessions as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw as CK_ULONG,
            ulMaxPinLen: MAX_PIN_LEN as CK_ULONG,
            ulMinPinLen: MIN_PIN_LEN as CK_ULONG,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: CK_VERSION { major: 0, minor: 0 },
            firmwareVersion: super::library_version(),
            utcTime: [b' '; 16],
        };
        // SAFETY: forwarded caller contract.
        unsafe { write(pInfo, info) }
    })
}

/// # Safety
/// `pMechanismList` is NULL or points to `*pulCount` writable entries; `pulCount` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: *mut CK_MECHANISM_TYPE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetMechanismList", || {
        let m = state::module()?;
        let token = m.token(slotID)?;
        if pulCount.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let loaded = token.loaded()?;
        let mut list = loaded.mechanisms.clone();
        list.extend(DIGEST_MECHANISMS);
        // SAFETY: forwarded caller contract.
        unsafe { fill_list(pMechanismList, pulCount, &list) }
    })
}

/// # Safety
/// `pInfo` is NULL or points to a writable CK_MECHANISM_INFO.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard("C_GetMechanismInfo", || {
        let m = state::module()?;
        let token = m.token(slotID)?;
        if pInfo.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let info = if DIGEST_MECHANISMS.contains(&type_) {
            mechanism::mechanism_info(type_, 0..=0)
        } else {
            let loaded = token.loaded()?;
            loaded
                .key_bits(type_)
                .and_then(|bits| mechanism::mechanism_info(type_, bits))
        }
        .ok_or(CKR_MECHANISM_INVALID)?;
        // SAFETY: forwarded caller contract.
        unsafe { write(pInfo, info) }
    })
}

#[no_mangle]
pub extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    _pPin: *mut CK_UTF8CHAR,
    _ulPinLen: CK_ULONG,
    _pLabel: *mut CK_UTF8CHAR,
) -> CK_RV {
    guard("C_InitToken", || {
        state::module()?.token(slotID)?;
        // The token is the service's: it cannot be re-initialised from here.
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    _pPin: *mut CK_UTF8CHAR,
    _ulPinLen: CK_ULONG,
) -> CK_RV {
    guard("C_InitPIN", || {
        state::module()?.session(hSession)?;
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    _pOldPin: *mut CK_UTF8CHAR,
    _ulOldLen: CK_ULONG,
    _pNewPin: *mut CK_UTF8CHAR,
    _ulNewLen: CK_ULONG,
) -> CK_RV {
    guard("C_SetPIN", || {
        state::module()?.session(hSession)?;
        // The PIN is managed by the signing service.
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    _pSlot: *mut CK_SLOT_ID,
    pReserved: *mut c_void,
) -> CK_RV {
    guard("C_WaitForSlotEvent", || {
        state::module()?;
        if !pReserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // Slots and tokens never change while the module is initialized.
        if flags & CKF_DONT_BLOCK != 0 {
            return Err(CKR_NO_EVENT);
        }
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}
