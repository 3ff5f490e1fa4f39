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
mod interface;
mod mechanism;
mod object;
mod random;
mod session;
mod sign;
mod slot_token;
mod template;
mod unsupported;
mod v3;

use crate::error::{rv_name, CkResult};
use cryptoki_sys::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs an inner function, returning its CK_RV; a panic becomes CKR_GENERAL_ERROR and a log line, and
/// a code the specification does not list for the function is replaced by one it does ([`within_spec`]).
fn guard(name: &'static str, f: impl FnOnce() -> CkResult<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => {
            let rv = within_spec(name, rv);
            log::debug!("{name} → {}", rv_name(rv));
            rv
        }
        Err(_) => {
            log::error!("{name}: internal error (a panic was caught) → CKR_GENERAL_ERROR");
            CKR_GENERAL_ERROR
        }
    }
}

/// What a code means in a function whose list lacks it, in order of preference. The service's verdicts
/// reach every function that talks to it; only C_Login may say a PIN was wrong, so elsewhere a refused
/// PIN is the login it ended, and a lock a refusal.
const STAND_INS: &[(CK_RV, &[CK_RV])] = &[
    (CKR_PIN_INCORRECT, &[CKR_USER_NOT_LOGGED_IN]),
    (
        CKR_PIN_LOCKED,
        &[CKR_FUNCTION_REJECTED, CKR_USER_NOT_LOGGED_IN],
    ),
    (CKR_PIN_LEN_RANGE, &[CKR_PIN_INCORRECT]),
    (CKR_FUNCTION_REJECTED, &[CKR_FUNCTION_CANCELED]),
    (CKR_USER_NOT_LOGGED_IN, &[CKR_DEVICE_ERROR]),
];

/// `rv` if the specification lists it for `name` (or the function is not in the table, or the code is
/// CKR_FUNCTION_NOT_SUPPORTED, which any stub may answer), else the first listed stand-in, else
/// CKR_DEVICE_ERROR, CKR_FUNCTION_FAILED or CKR_GENERAL_ERROR — with a log line naming both codes.
fn within_spec(name: &str, rv: CK_RV) -> CK_RV {
    use pkcs11_returns::{allowed, known};
    // C_LoginUser (3.0) answers as C_Login does.
    let name = if name == "C_LoginUser" {
        "C_Login"
    } else {
        name
    };
    if rv == CKR_FUNCTION_NOT_SUPPORTED || !known(name) || allowed(name, rv) {
        return rv;
    }
    let stand_ins = STAND_INS
        .iter()
        .find(|(from, _)| *from == rv)
        .map_or(&[][..], |(_, to)| *to);
    let chosen = stand_ins
        .iter()
        .chain(&[CKR_DEVICE_ERROR, CKR_FUNCTION_FAILED])
        .copied()
        .find(|s| allowed(name, *s))
        .unwrap_or(CKR_GENERAL_ERROR);
    log::info!(
        "{name}: {} is not among the function's return values; answering {}",
        rv_name(rv),
        rv_name(chosen)
    );
    chosen
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

pub(crate) fn library_version() -> CK_VERSION {
    CK_VERSION {
        major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_stay_within_each_functions_list() {
        assert_eq!(
            within_spec("C_Sign", CKR_PIN_INCORRECT),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_eq!(within_spec("C_Sign", CKR_PIN_LOCKED), CKR_FUNCTION_REJECTED);
        assert_eq!(within_spec("C_Login", CKR_PIN_INCORRECT), CKR_PIN_INCORRECT);
        assert_eq!(within_spec("C_Login", CKR_PIN_LEN_RANGE), CKR_PIN_INCORRECT);
        assert_eq!(
            within_spec("C_Login", CKR_FUNCTION_REJECTED),
            CKR_FUNCTION_CANCELED
        );
        assert_eq!(
            within_spec("C_OpenSession", CKR_USER_NOT_LOGGED_IN),
            CKR_DEVICE_ERROR
        );
        assert_eq!(
            within_spec("C_SignUpdate", CKR_FUNCTION_NOT_SUPPORTED),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            within_spec("C_GetInfo", CKR_SLOT_ID_INVALID),
            CKR_FUNCTION_FAILED
        );
        assert_eq!(
            within_spec("C_LoginUser", CKR_PIN_LEN_RANGE),
            CKR_PIN_INCORRECT
        );
        assert_eq!(
            within_spec("C_SessionCancel", CKR_DEVICE_ERROR),
            CKR_DEVICE_ERROR,
            "not in the table"
        );
    }

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
}
