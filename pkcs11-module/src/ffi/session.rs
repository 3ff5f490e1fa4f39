//! Session management and login (PKCS#11 §5.6).

use super::slot_token::{MAX_PIN_LEN, MIN_PIN_LEN};
use super::{guard, input, write};
use crate::error::CkResult;
use crate::operation::sign;
use crate::state;
use crate::token::Token;
use cryptoki_sys::*;
use remote_client::Secret;
use std::ffi::c_void;
use zeroize::Zeroize;

/// # Safety
/// `phSession` is NULL or points to a writable handle.
#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    _pApplication: *mut c_void,
    _Notify: CK_NOTIFY,
    phSession: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard("C_OpenSession", || {
        let m = state::module()?;
        let token = m.token(slotID)?;
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        if phSession.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // The first session fetches the credentials, so that finding objects never waits for the service.
        token.loaded()?;
        let handle = m.open_session(token, flags & CKF_RW_SESSION != 0);
        // SAFETY: non-NULL, writable by the caller's contract.
        unsafe { write(phSession, handle) }
    })
}

#[no_mangle]
pub extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CloseSession", || {
        state::module()?.close_session(hSession)
    })
}

#[no_mangle]
pub extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || {
        let m = state::module()?;
        let token = m.token(slotID)?.clone();
        m.close_all_sessions(&token);
        Ok(())
    })
}

/// # Safety
/// `pInfo` is NULL or points to a writable CK_SESSION_INFO.
#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: *mut CK_SESSION_INFO,
) -> CK_RV {
    guard("C_GetSessionInfo", || {
        let s = state::module()?.session(hSession)?;
        let info = CK_SESSION_INFO {
            slotID: s.token.slot_id,
            state: s.state(),
            flags: CKF_SERIAL_SESSION | if s.rw { CKF_RW_SESSION } else { 0 },
            ulDeviceError: 0,
        };
        // SAFETY: forwarded caller contract.
        unsafe { write(pInfo, info) }
    })
}

#[no_mangle]
pub extern "C" fn C_GetOperationState(
    hSession: CK_SESSION_HANDLE,
    _pOperationState: *mut CK_BYTE,
    _pulOperationStateLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetOperationState", || {
        state::module()?.session(hSession)?;
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub extern "C" fn C_SetOperationState(
    hSession: CK_SESSION_HANDLE,
    _pOperationState: *mut CK_BYTE,
    _ulOperationStateLen: CK_ULONG,
    _hEncryptionKey: CK_OBJECT_HANDLE,
    _hAuthenticationKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SetOperationState", || {
        state::module()?.session(hSession)?;
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

/// Copies a PIN out of C memory into a zeroizing secret.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes.
unsafe fn read_pin(p: *const CK_UTF8CHAR, len: CK_ULONG, min: usize) -> CkResult<Secret> {
    if p.is_null() {
        // No protected authentication path: the value must come from the application.
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: forwarded caller contract.
    let bytes = unsafe { input(p, len) }?;
    if bytes.len() < min || bytes.len() > MAX_PIN_LEN {
        return Err(CKR_PIN_LEN_RANGE);
    }
    match String::from_utf8(bytes.to_vec()) {
        Ok(s) => Ok(Secret::new(s)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(CKR_PIN_INCORRECT)
        }
    }
}

/// A NULL_PTR PIN on a token with CKF_PROTECTED_AUTHENTICATION_PATH: the module collects it.
fn protected_path(token: &Token, pin: *const CK_UTF8CHAR, len: CK_ULONG) -> bool {
    pin.is_null() && len == 0 && token.config.mode.protected_path()
}

/// C_Login's work, shared with C_LoginUser (v3.rs).
///
/// # Safety
/// `pPin` is NULL or points to `ulPinLen` readable bytes.
pub(super) unsafe fn login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CkResult<()> {
    let m = state::module()?;
    let s = m.session(hSession)?;
    match userType {
        CKU_USER => {
            if s.token.is_logged_in() {
                return Err(CKR_USER_ALREADY_LOGGED_IN);
            }
            let pin = if protected_path(&s.token, pPin, ulPinLen) {
                // Asked without any module lock held: other sessions keep working meanwhile.
                crate::auth::factors::protected_path_pin(&s.token)?
            } else {
                // SAFETY: forwarded caller contract.
                unsafe { read_pin(pPin, ulPinLen, MIN_PIN_LEN) }?
            };
            // Nothing is sent now: the service checks the PIN at the first authorization.
            s.token.login.login_user(pin)
        }
        CKU_CONTEXT_SPECIFIC => {
            // §5.6.11: a context login belongs to an operation.
            let (id, cred, epoch) = s.sign_target()?;
            if s.token.login.signing_epoch().is_none() {
                return Err(CKR_USER_NOT_LOGGED_IN);
            }
            let value = if protected_path(&s.token, pPin, ulPinLen) {
                None
            } else {
                // SAFETY: forwarded caller contract.
                Some(unsafe { read_pin(pPin, ulPinLen, 1) }?)
            };
            let outcome = sign::context_login(&s.token, &cred, epoch, value)?;
            s.set_sign_authorization(id, outcome);
            Ok(())
        }
        CKU_SO => {
            // §5.6.10, in its order: a read-only session forbids an SO login, and so does a user login.
            let (all, rw) = m.session_counts(&s.token);
            if all > rw {
                return Err(CKR_SESSION_READ_ONLY_EXISTS);
            }
            if s.token.is_logged_in() {
                return Err(CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
            }
            // The token has no security officer: its administration is the service's.
            Err(CKR_USER_TYPE_INVALID)
        }
        _ => Err(CKR_USER_TYPE_INVALID),
    }
}

/// # Safety
/// `pPin` is NULL or points to `ulPinLen` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    // SAFETY: forwarded caller contract.
    guard("C_Login", || unsafe {
        login(hSession, userType, pPin, ulPinLen)
    })
}

#[no_mangle]
pub extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_Logout", || {
        let s = state::module()?.session(hSession)?;
        if !s.token.is_logged_in() {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        s.token.logout();
        Ok(())
    })
}
