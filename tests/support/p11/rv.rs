//! Return values: readable names for assertion messages and the assertion helpers that keep every
//! CK_RV visible.

use cryptoki_sys::*;

/// Readable names for assertion messages.
pub fn rv_name(rv: CK_RV) -> String {
    let names: &[(CK_RV, &str)] = &[
        (CKR_OK, "CKR_OK"),
        (CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"),
        (CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"),
        (CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"),
        (CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"),
        (CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED"),
        (CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"),
        (CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"),
        (CKR_PIN_LOCKED, "CKR_PIN_LOCKED"),
        (CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"),
        (CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"),
        (CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"),
        (
            CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        ),
        (CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"),
        (CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS"),
        (CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"),
        (
            CKR_OPERATION_NOT_INITIALIZED,
            "CKR_OPERATION_NOT_INITIALIZED",
        ),
        (CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"),
        (CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"),
        (CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"),
        (CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"),
        (CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"),
        (CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"),
        (CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"),
        (CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"),
        (CKR_DATA_INVALID, "CKR_DATA_INVALID"),
        (CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"),
        (CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"),
        (CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"),
        (CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"),
        (
            CKR_CRYPTOKI_ALREADY_INITIALIZED,
            "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        ),
        (CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"),
        (CKR_FUNCTION_NOT_PARALLEL, "CKR_FUNCTION_NOT_PARALLEL"),
        (
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            "CKR_KEY_FUNCTION_NOT_PERMITTED",
        ),
        (CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"),
        (CKR_CANT_LOCK, "CKR_CANT_LOCK"),
        (CKR_NEED_TO_CREATE_THREADS, "CKR_NEED_TO_CREATE_THREADS"),
        (
            CKR_RANDOM_SEED_NOT_SUPPORTED,
            "CKR_RANDOM_SEED_NOT_SUPPORTED",
        ),
        (
            CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        ),
        (CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED"),
        (CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"),
        (CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"),
        (CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"),
        (CKR_NO_EVENT, "CKR_NO_EVENT"),
    ];
    names
        .iter()
        .find(|(v, _)| *v == rv)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("CKR 0x{rv:x}"))
}

#[track_caller]
pub fn assert_rv(got: CK_RV, want: CK_RV, what: &str) {
    assert!(
        got == want,
        "{what}: got {}, want {}",
        rv_name(got),
        rv_name(want)
    );
}

#[track_caller]
pub fn ok<T>(r: Result<T, CK_RV>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(rv) => panic!("{what}: {}", rv_name(rv)),
    }
}
