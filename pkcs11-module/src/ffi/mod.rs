//! The C ABI: one thin `extern "C"` wrapper per PKCS#11 function, grouped by chapter of the
//! specification. Each wrapper runs an inner function under [`guard`], which turns a panic into
//! CKR_GENERAL_ERROR; inner functions check pointers, lengths, handles and state, then call safe code.
//!
//! The module offers one interface, "PKCS 11" version 2.40 (C_GetFunctionList and C_GetInterface return
//! the same list), and exports every v2.40 function plus C_GetInterfaceList/C_GetInterface as symbols.

// PKCS#11 names (C_Initialize, pInitArgs, ...) are kept as the specification spells them.
#![allow(non_snake_case)]

mod digest;
mod general;
mod mechanism;
mod object;
mod random;
mod session;
mod sign;
mod slot_token;
mod template;
mod unsupported;

use crate::error::{rv_name, CkResult};
use cryptoki_sys::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs an inner function, returning its CK_RV; a panic becomes CKR_GENERAL_ERROR and a log line.
fn guard(name: &'static str, f: impl FnOnce() -> CkResult<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => {
            log::debug!("{name} → {}", rv_name(rv));
            rv
        }
        Err(_) => {
            log::error!("{name}: internal error (a panic was caught) → CKR_GENERAL_ERROR");
            CKR_GENERAL_ERROR
        }
    }
}

fn to_usize(n: CK_ULONG) -> CkResult<usize> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= isize::MAX as usize)
        .ok_or(CKR_ARGUMENTS_BAD)
}

/// An input byte string. NULL is accepted only with a zero length.
///
/// # Safety
/// When `p` is non-NULL it points to `len` readable bytes that stay valid and unchanged for `'a`.
unsafe fn input<'a>(p: *const CK_BYTE, len: CK_ULONG) -> CkResult<&'a [u8]> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(CKR_ARGUMENTS_BAD)
        };
    }
    let len = to_usize(len)?;
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes `value` through an output pointer, which must not be NULL.
///
/// # Safety
/// `p` is NULL or points to a writable `T`.
unsafe fn write<T>(p: *mut T, value: T) -> CkResult<()> {
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL, writable by the caller's contract; `write` does not read the old value.
    unsafe { p.write(value) };
    Ok(())
}

/// What the output-buffer convention (PKCS#11 §5.2) says to do for a result of `needed` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Output {
    /// pBuf was NULL: the length has been stored, nothing else happens.
    LengthOnly,
    /// The buffer is big enough: produce the result and call [`write_output`].
    Proceed,
}

/// Applies the convention: NULL `buf` → store `needed`, `LengthOnly`; a buffer shorter than `needed` →
/// store `needed`, CKR_BUFFER_TOO_SMALL; else `Proceed`. CKR_ARGUMENTS_BAD for a NULL `len`.
///
/// # Safety
/// `len` is NULL or points to a readable and writable CK_ULONG.
unsafe fn check_output(buf: *mut CK_BYTE, len: *mut CK_ULONG, needed: usize) -> CkResult<Output> {
    if len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL, readable and writable by the caller's contract.
    let capacity = unsafe { *len };
    // SAFETY: as above.
    unsafe { *len = needed as CK_ULONG };
    if buf.is_null() {
        return Ok(Output::LengthOnly);
    }
    if (capacity as u128) < needed as u128 {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    Ok(Output::Proceed)
}

/// Copies a result into a buffer that [`check_output`] accepted for at least `data.len()` bytes.
///
/// # Safety
/// `buf` points to at least `data.len()` writable bytes and `len` to a writable CK_ULONG.
unsafe fn write_output(buf: *mut CK_BYTE, len: *mut CK_ULONG, data: &[u8]) {
    // SAFETY: the caller checked the capacity with `check_output`; the regions cannot overlap since
    // `data` is our own memory.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        *len = data.len() as CK_ULONG;
    }
}

/// A blank-padded, not NUL-terminated PKCS#11 string field, cut at a character boundary.
fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

pub(crate) const CRYPTOKI_VERSION: CK_VERSION = CK_VERSION {
    major: 2,
    minor: 40,
};

pub(crate) fn library_version() -> CK_VERSION {
    CK_VERSION {
        major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
    }
}

static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CRYPTOKI_VERSION,
    C_Initialize: Some(general::C_Initialize),
    C_Finalize: Some(general::C_Finalize),
    C_GetInfo: Some(general::C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(slot_token::C_GetSlotList),
    C_GetSlotInfo: Some(slot_token::C_GetSlotInfo),
    C_GetTokenInfo: Some(slot_token::C_GetTokenInfo),
    C_GetMechanismList: Some(slot_token::C_GetMechanismList),
    C_GetMechanismInfo: Some(slot_token::C_GetMechanismInfo),
    C_InitToken: Some(slot_token::C_InitToken),
    C_InitPIN: Some(slot_token::C_InitPIN),
    C_SetPIN: Some(slot_token::C_SetPIN),
    C_OpenSession: Some(session::C_OpenSession),
    C_CloseSession: Some(session::C_CloseSession),
    C_CloseAllSessions: Some(session::C_CloseAllSessions),
    C_GetSessionInfo: Some(session::C_GetSessionInfo),
    C_GetOperationState: Some(session::C_GetOperationState),
    C_SetOperationState: Some(session::C_SetOperationState),
    C_Login: Some(session::C_Login),
    C_Logout: Some(session::C_Logout),
    C_CreateObject: Some(object::C_CreateObject),
    C_CopyObject: Some(object::C_CopyObject),
    C_DestroyObject: Some(object::C_DestroyObject),
    C_GetObjectSize: Some(object::C_GetObjectSize),
    C_GetAttributeValue: Some(object::C_GetAttributeValue),
    C_SetAttributeValue: Some(object::C_SetAttributeValue),
    C_FindObjectsInit: Some(object::C_FindObjectsInit),
    C_FindObjects: Some(object::C_FindObjects),
    C_FindObjectsFinal: Some(object::C_FindObjectsFinal),
    C_EncryptInit: Some(unsupported::C_EncryptInit),
    C_Encrypt: Some(unsupported::C_Encrypt),
    C_EncryptUpdate: Some(unsupported::C_EncryptUpdate),
    C_EncryptFinal: Some(unsupported::C_EncryptFinal),
    C_DecryptInit: Some(unsupported::C_DecryptInit),
    C_Decrypt: Some(unsupported::C_Decrypt),
    C_DecryptUpdate: Some(unsupported::C_DecryptUpdate),
    C_DecryptFinal: Some(unsupported::C_DecryptFinal),
    C_DigestInit: Some(digest::C_DigestInit),
    C_Digest: Some(digest::C_Digest),
    C_DigestUpdate: Some(digest::C_DigestUpdate),
    C_DigestKey: Some(digest::C_DigestKey),
    C_DigestFinal: Some(digest::C_DigestFinal),
    C_SignInit: Some(sign::C_SignInit),
    C_Sign: Some(sign::C_Sign),
    C_SignUpdate: Some(sign::C_SignUpdate),
    C_SignFinal: Some(sign::C_SignFinal),
    C_SignRecoverInit: Some(unsupported::C_SignRecoverInit),
    C_SignRecover: Some(unsupported::C_SignRecover),
    C_VerifyInit: Some(unsupported::C_VerifyInit),
    C_Verify: Some(unsupported::C_Verify),
    C_VerifyUpdate: Some(unsupported::C_VerifyUpdate),
    C_VerifyFinal: Some(unsupported::C_VerifyFinal),
    C_VerifyRecoverInit: Some(unsupported::C_VerifyRecoverInit),
    C_VerifyRecover: Some(unsupported::C_VerifyRecover),
    C_DigestEncryptUpdate: Some(unsupported::C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(unsupported::C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(unsupported::C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(unsupported::C_DecryptVerifyUpdate),
    C_GenerateKey: Some(unsupported::C_GenerateKey),
    C_GenerateKeyPair: Some(unsupported::C_GenerateKeyPair),
    C_WrapKey: Some(unsupported::C_WrapKey),
    C_UnwrapKey: Some(unsupported::C_UnwrapKey),
    C_DeriveKey: Some(unsupported::C_DeriveKey),
    C_SeedRandom: Some(random::C_SeedRandom),
    C_GenerateRandom: Some(random::C_GenerateRandom),
    C_GetFunctionStatus: Some(general::C_GetFunctionStatus),
    C_CancelFunction: Some(general::C_CancelFunction),
    C_WaitForSlotEvent: Some(slot_token::C_WaitForSlotEvent),
};

fn function_list_ptr() -> *mut CK_FUNCTION_LIST {
    // The list is never written through this pointer: PKCS#11 applications only read it.
    &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST
}

static INTERFACE_NAME: &[u8] = b"PKCS 11\0";

struct Interface(CK_INTERFACE);
// SAFETY: the raw pointers inside point to immutable statics (the name and the function list).
unsafe impl Sync for Interface {}

static INTERFACE: Interface = Interface(CK_INTERFACE {
    pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
    pFunctionList: &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut std::os::raw::c_void,
    flags: 0,
});

/// # Safety
/// `ppFunctionList` is NULL or points to writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    // SAFETY: forwarded caller contract.
    guard("C_GetFunctionList", || unsafe {
        write(ppFunctionList, function_list_ptr())
    })
}

/// # Safety
/// `pInterfacesList` is NULL or points to `*pulCount` writable CK_INTERFACE; `pulCount` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: *mut CK_INTERFACE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetInterfaceList", || {
        if pulCount.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: non-NULL, valid by the caller's contract.
        let capacity = unsafe { *pulCount };
        // SAFETY: as above.
        unsafe { *pulCount = 1 };
        if pInterfacesList.is_null() {
            return Ok(());
        }
        if capacity < 1 {
            return Err(CKR_BUFFER_TOO_SMALL);
        }
        // SAFETY: the caller provides at least one writable entry (capacity >= 1).
        unsafe { pInterfacesList.write(INTERFACE.0) };
        Ok(())
    })
}

/// # Safety
/// `pInterfaceName` is NULL or a NUL-terminated string; `pVersion` is NULL or readable;
/// `ppInterface` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: *mut CK_UTF8CHAR,
    pVersion: *mut CK_VERSION,
    ppInterface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_GetInterface", || {
        if ppInterface.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        if !pInterfaceName.is_null() {
            // SAFETY: a NUL-terminated string by the caller's contract.
            let name =
                unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) };
            if name.to_bytes() != b"PKCS 11" {
                return Err(CKR_ARGUMENTS_BAD);
            }
        }
        if !pVersion.is_null() {
            // SAFETY: readable by the caller's contract.
            let v = unsafe { *pVersion };
            if v.major != CRYPTOKI_VERSION.major || v.minor != CRYPTOKI_VERSION.minor {
                return Err(CKR_ARGUMENTS_BAD);
            }
        }
        if flags & !INTERFACE.0.flags != 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe {
            write(
                ppInterface,
                &INTERFACE.0 as *const CK_INTERFACE as *mut CK_INTERFACE,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_ckr_general_error() {
        assert_eq!(guard("test", || panic!("a bug")), CKR_GENERAL_ERROR);
        assert_eq!(
            guard("test", || Err(CKR_SLOT_ID_INVALID)),
            CKR_SLOT_ID_INVALID
        );
        assert_eq!(guard("test", || Ok(())), CKR_OK);
    }

    #[test]
    fn padded_cuts_at_char_boundary() {
        let p: [u8; 4] = padded("abé");
        assert_eq!(&p, b"ab\xc3\xa9");
        let p: [u8; 3] = padded("abé");
        assert_eq!(&p, b"ab ");
        let p: [u8; 5] = padded("a");
        assert_eq!(&p, b"a    ");
    }

    #[test]
    fn output_convention() {
        let mut len: CK_ULONG = 0;
        // SAFETY: valid pointers to locals.
        unsafe {
            assert_eq!(
                check_output(std::ptr::null_mut(), &mut len, 64),
                Ok(Output::LengthOnly)
            );
            assert_eq!(len, 64);
            let mut buf = [0u8; 10];
            len = 10;
            assert_eq!(
                check_output(buf.as_mut_ptr(), &mut len, 64),
                Err(CKR_BUFFER_TOO_SMALL)
            );
            assert_eq!(len, 64);
            len = 10;
            assert_eq!(
                check_output(buf.as_mut_ptr(), &mut len, 10),
                Ok(Output::Proceed)
            );
            write_output(buf.as_mut_ptr(), &mut len, b"0123456789");
            assert_eq!(&buf, b"0123456789");
            assert_eq!(
                check_output(buf.as_mut_ptr(), std::ptr::null_mut(), 1),
                Err(CKR_ARGUMENTS_BAD)
            );
        }
    }

    #[test]
    fn interface_lookup() {
        let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
        // SAFETY: valid pointers to locals and statics.
        unsafe {
            assert_eq!(
                C_GetInterface(std::ptr::null_mut(), std::ptr::null_mut(), &mut iface, 0),
                CKR_OK
            );
            assert_eq!(
                (*iface).pFunctionList as *mut CK_FUNCTION_LIST,
                function_list_ptr()
            );
            let mut v = CK_VERSION { major: 3, minor: 0 };
            assert_eq!(
                C_GetInterface(std::ptr::null_mut(), &mut v, &mut iface, 0),
                CKR_ARGUMENTS_BAD
            );
            let mut count: CK_ULONG = 0;
            assert_eq!(C_GetInterfaceList(std::ptr::null_mut(), &mut count), CKR_OK);
            assert_eq!(count, 1);
            let mut list = [CK_INTERFACE::default(); 1];
            count = 0;
            assert_eq!(
                C_GetInterfaceList(list.as_mut_ptr(), &mut count),
                CKR_BUFFER_TOO_SMALL
            );
            count = 1;
            assert_eq!(C_GetInterfaceList(list.as_mut_ptr(), &mut count), CKR_OK);
            assert_eq!(list[0].flags, 0);
        }
    }
}
