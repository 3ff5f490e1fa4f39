//! The functions PKCS#11 3.0 adds (§5.6 C_LoginUser and C_SessionCancel, §5.13-5.15 and 5.19-5.21 the
//! message-based functions), offered through the 3.0 interface (interface.rs).
//!
//! The token has one user, the service account, so C_LoginUser is C_Login for that user. The
//! message-based functions (several messages under one operation, with per-message parameters) serve AEAD
//! encryption and signature schemes with per-message data; a remote signing token offers none of those
//! mechanisms, so each answers CKR_FUNCTION_NOT_SUPPORTED once the session is known to be valid, as the
//! specification allows for functions a token does not support.

use super::{guard, input, session};
use crate::state;
use cryptoki_sys::*;
use std::ffi::c_void;

/// # Safety
/// `pPin` is NULL or points to `ulPinLen` readable bytes; `pUsername` is NULL or points to
/// `ulUsernameLen` readable bytes.
pub unsafe extern "C" fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pUsername: *mut CK_UTF8CHAR,
    ulUsernameLen: CK_ULONG,
) -> CK_RV {
    guard("C_LoginUser", || {
        let s = state::module()?.session(hSession)?;
        // SAFETY: forwarded caller contract.
        let name = unsafe { input(pUsername, ulUsernameLen) }?;
        // §5.6.10: the user name does not apply to a context login; for the user it must be the
        // token's one user, the account (or empty).
        if userType == CKU_USER && !name.is_empty() && name != s.token.config.account.as_bytes() {
            log::warn!(
                "C_LoginUser: slot {}: the token's only user is its account; another name was given",
                s.token.slot_id
            );
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: forwarded caller contract.
        unsafe { session::login(hSession, userType, pPin, ulPinLen) }
    })
}

/// Ends the operations `flags` names (CKF_SIGN, CKF_DIGEST, CKF_FIND_OBJECTS, ...) in the session. An
/// operation whose request is already at the service has left the session and finishes on its own.
pub extern "C" fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    guard("C_SessionCancel", || {
        let s = state::module()?.session(hSession)?;
        let mut ops = s.ops();
        if flags & CKF_SIGN != 0 {
            ops.sign = None;
        }
        if flags & CKF_DIGEST != 0 {
            ops.digest = None;
        }
        if flags & CKF_FIND_OBJECTS != 0 {
            ops.find = None;
        }
        Ok(())
    })
}

fn not_supported(name: &'static str, session: CK_SESSION_HANDLE) -> CK_RV {
    guard(name, || {
        state::module()?.session(session)?;
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

/// The message-based functions, all unsupported: (name, parameters after the session).
macro_rules! unsupported {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            pub extern "C" fn $name(hSession: CK_SESSION_HANDLE, $($arg: $ty),*) -> CK_RV {
                $(let _ = $arg;)*
                not_supported(stringify!($name), hSession)
            }
        )*
    };
}

unsupported! {
    C_MessageEncryptInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    C_EncryptMessage(p: *mut c_void, pl: CK_ULONG, a: *mut CK_BYTE, al: CK_ULONG, d: *mut CK_BYTE,
        dl: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    C_EncryptMessageBegin(p: *mut c_void, pl: CK_ULONG, a: *mut CK_BYTE, al: CK_ULONG);
    C_EncryptMessageNext(p: *mut c_void, pl: CK_ULONG, d: *mut CK_BYTE, dl: CK_ULONG, o: *mut CK_BYTE,
        ol: *mut CK_ULONG, f: CK_FLAGS);
    C_MessageEncryptFinal();
    C_MessageDecryptInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    C_DecryptMessage(p: *mut c_void, pl: CK_ULONG, a: *mut CK_BYTE, al: CK_ULONG, d: *mut CK_BYTE,
        dl: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG);
    C_DecryptMessageBegin(p: *mut c_void, pl: CK_ULONG, a: *mut CK_BYTE, al: CK_ULONG);
    C_DecryptMessageNext(p: *mut c_void, pl: CK_ULONG, d: *mut CK_BYTE, dl: CK_ULONG, o: *mut CK_BYTE,
        ol: *mut CK_ULONG, f: CK_FLAGS);
    C_MessageDecryptFinal();
    C_MessageSignInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    C_SignMessage(p: *mut c_void, pl: CK_ULONG, d: *mut CK_BYTE, dl: CK_ULONG, s: *mut CK_BYTE,
        sl: *mut CK_ULONG);
    C_SignMessageBegin(p: *mut c_void, pl: CK_ULONG);
    C_SignMessageNext(p: *mut c_void, pl: CK_ULONG, d: *mut CK_BYTE, dl: CK_ULONG, s: *mut CK_BYTE,
        sl: *mut CK_ULONG);
    C_MessageSignFinal();
    C_MessageVerifyInit(m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE);
    C_VerifyMessage(p: *mut c_void, pl: CK_ULONG, d: *mut CK_BYTE, dl: CK_ULONG, s: *mut CK_BYTE,
        sl: CK_ULONG);
    C_VerifyMessageBegin(p: *mut c_void, pl: CK_ULONG);
    C_VerifyMessageNext(p: *mut c_void, pl: CK_ULONG, d: *mut CK_BYTE, dl: CK_ULONG, s: *mut CK_BYTE,
        sl: CK_ULONG);
    C_MessageVerifyFinal();
}
