//! Copying a caller's CK_MECHANISM (and its parameter) out of C memory.

use crate::mechanism::Mechanism;
use cryptoki_sys::*;

/// No mechanism the module supports takes a parameter anywhere near this size.
const MAX_PARAMETER_LEN: usize = 4096;

/// Copies a caller's CK_MECHANISM. CKR_ARGUMENTS_BAD for a NULL pointer, CKR_MECHANISM_PARAM_INVALID for a
/// NULL parameter with a non-zero length or an absurd length.
///
/// # Safety
/// `ptr` is NULL or points to a readable CK_MECHANISM whose `pParameter`, when non-NULL, points to
/// `ulParameterLen` readable bytes.
pub(super) unsafe fn read_mechanism(ptr: *const CK_MECHANISM) -> Result<Mechanism, CK_RV> {
    if ptr.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL and readable per the caller's contract; read_unaligned because C callers do not
    // always align what they allocate.
    let raw = unsafe { ptr.read_unaligned() };
    let len = usize::try_from(raw.ulParameterLen).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
    if len == 0 {
        return Ok(Mechanism::new(raw.mechanism));
    }
    if raw.pParameter.is_null() || len > MAX_PARAMETER_LEN {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    // SAFETY: pParameter points to ulParameterLen readable bytes per the caller's contract.
    let parameter =
        unsafe { std::slice::from_raw_parts(raw.pParameter as *const u8, len) }.to_vec();
    Ok(Mechanism {
        mechanism: raw.mechanism,
        parameter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_from_raw_copies_parameters() {
        assert_eq!(
            // SAFETY: NULL is allowed.
            unsafe { read_mechanism(std::ptr::null()) },
            Err(CKR_ARGUMENTS_BAD)
        );
        let mut params = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            sLen: 32,
        };
        let raw = CK_MECHANISM {
            mechanism: CKM_RSA_PKCS_PSS,
            pParameter: &mut params as *mut _ as *mut std::ffi::c_void,
            ulParameterLen: std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
        };
        // SAFETY: `raw` points to `params`, which outlives the call.
        let copied = unsafe { read_mechanism(&raw) }.unwrap();
        assert_eq!(copied, Mechanism::rsa_pss(CKM_RSA_PKCS_PSS, params));

        let null_param = CK_MECHANISM {
            pParameter: std::ptr::null_mut(),
            ..raw
        };
        assert_eq!(
            // SAFETY: a valid CK_MECHANISM whose NULL parameter is refused without being read.
            unsafe { read_mechanism(&null_param) },
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        let none = CK_MECHANISM {
            mechanism: CKM_ECDSA,
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(
            // SAFETY: a valid CK_MECHANISM without a parameter.
            unsafe { read_mechanism(&none) },
            Ok(Mechanism::new(CKM_ECDSA))
        );
    }
}
