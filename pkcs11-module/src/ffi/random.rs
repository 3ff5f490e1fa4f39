//! Random number generation (PKCS#11 §5.15), from the operating system.

use super::{guard, to_usize};
use crate::error;
use crate::state;
use cryptoki_sys::*;

#[no_mangle]
pub extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    _pSeed: *mut CK_BYTE,
    _ulSeedLen: CK_ULONG,
) -> CK_RV {
    guard("C_SeedRandom", || {
        state::module()?.session(hSession)?;
        // The OS generator needs no seed and takes none from applications.
        Err(CKR_RANDOM_SEED_NOT_SUPPORTED)
    })
}

/// # Safety
/// `RandomData` is NULL or points to `ulRandomLen` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: *mut CK_BYTE,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    guard("C_GenerateRandom", || {
        state::module()?.session(hSession)?;
        let len = to_usize(ulRandomLen)?;
        if len == 0 {
            return Ok(());
        }
        if RandomData.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: non-NULL and `len` writable bytes by the caller's contract.
        let out = unsafe { std::slice::from_raw_parts_mut(RandomData, len) };
        getrandom::fill(out).map_err(|e| {
            error::logged(
                CKR_FUNCTION_FAILED,
                format!("C_GenerateRandom: the OS generator failed: {e}"),
            )
        })
    })
}
