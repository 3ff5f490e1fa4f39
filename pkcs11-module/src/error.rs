//! The one mapping from service errors to CK_RV, with the log line that names the cause.
//!
//! Inner functions return `CkResult`; the FFI layer hands the CK_RV to the application. Error strings
//! from remote-client carry status codes and the service's description, never a secret.

use cryptoki_sys::*;
use remote_client::{Error, Reason};

pub type CkResult<T> = Result<T, CK_RV>;

/// What the module was doing when the service failed, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Login,
    ListCredentials,
    SendOtp,
    Authorize,
    Sign,
}

impl Step {
    fn what(self) -> &'static str {
        match self {
            Step::Login => "logging in to the service account",
            Step::ListCredentials => "listing credentials",
            Step::SendOtp => "asking the service to send an OTP",
            Step::Authorize => "authorizing the signature",
            Step::Sign => "signing",
        }
    }
}

/// The one table: what a failure of `step` for `reason` means to the application.
fn rv_for(step: Step, reason: Reason) -> CK_RV {
    match (step, reason) {
        (_, Reason::PinIncorrect) | (_, Reason::OtpIncorrect) => CKR_PIN_INCORRECT,
        (_, Reason::Locked) => CKR_PIN_LOCKED,
        // The account sign-in itself failed: the configured secret (or the service) is wrong, not the
        // user's PIN.
        (Step::Login, Reason::WrongPassword | Reason::TokenExpired | Reason::Other) => {
            CKR_DEVICE_ERROR
        }
        // The service refused the access token of a signature request, which is never sent again (it may
        // have been made): the signature failed for a reason that is not the user's.
        (Step::Sign, Reason::TokenExpired) => CKR_DEVICE_ERROR,
        (_, Reason::SadExpired) | (_, Reason::TokenExpired) | (_, Reason::WrongPassword) => {
            CKR_USER_NOT_LOGGED_IN
        }
        (_, Reason::Transport) | (_, Reason::ServiceUnavailable) => CKR_DEVICE_ERROR,
        (_, Reason::AccessDenied) => CKR_FUNCTION_REJECTED,
        (_, Reason::HashNotAuthorized) => CKR_FUNCTION_FAILED,
        (_, Reason::InvalidRequest) => CKR_FUNCTION_FAILED,
        (_, Reason::NotSupported) => CKR_FUNCTION_FAILED,
        (_, Reason::Other) => CKR_FUNCTION_FAILED,
    }
}

/// Maps a service error to the CK_RV the application sees and logs why. `slot` names the token.
pub fn from_remote(slot: CK_SLOT_ID, step: Step, e: &Error) -> CK_RV {
    let reason = e.reason();
    let rv = rv_for(step, reason);
    log::error!(
        "slot {slot}: {} failed ({reason:?} → {}): {e}",
        step.what(),
        rv_name(rv)
    );
    rv
}

/// A module-side failure with a cause worth a log line (configuration, unusable service data).
pub fn logged(rv: CK_RV, msg: impl std::fmt::Display) -> CK_RV {
    log::error!("{msg} → {}", rv_name(rv));
    rv
}

/// Names for the codes this module returns, for log lines.
pub fn rv_name(rv: CK_RV) -> String {
    let name = match rv {
        CKR_OK => "CKR_OK",
        CKR_ARGUMENTS_BAD => "CKR_ARGUMENTS_BAD",
        CKR_GENERAL_ERROR => "CKR_GENERAL_ERROR",
        CKR_FUNCTION_FAILED => "CKR_FUNCTION_FAILED",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_FUNCTION_REJECTED => "CKR_FUNCTION_REJECTED",
        CKR_FUNCTION_CANCELED => "CKR_FUNCTION_CANCELED",
        CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        CKR_PIN_LEN_RANGE => "CKR_PIN_LEN_RANGE",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_DATA_INVALID => "CKR_DATA_INVALID",
        CKR_DATA_LEN_RANGE => "CKR_DATA_LEN_RANGE",
        CKR_MECHANISM_INVALID => "CKR_MECHANISM_INVALID",
        CKR_MECHANISM_PARAM_INVALID => "CKR_MECHANISM_PARAM_INVALID",
        CKR_KEY_TYPE_INCONSISTENT => "CKR_KEY_TYPE_INCONSISTENT",
        CKR_KEY_FUNCTION_NOT_PERMITTED => "CKR_KEY_FUNCTION_NOT_PERMITTED",
        CKR_CRYPTOKI_NOT_INITIALIZED => "CKR_CRYPTOKI_NOT_INITIALIZED",
        CKR_NEED_TO_CREATE_THREADS => "CKR_NEED_TO_CREATE_THREADS",
        CKR_CANT_LOCK => "CKR_CANT_LOCK",
        _ => return format!("CKR 0x{rv:x}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [Step; 5] = [
        Step::Login,
        Step::ListCredentials,
        Step::SendOtp,
        Step::Authorize,
        Step::Sign,
    ];

    #[test]
    fn the_users_factors_map_to_pin_codes_at_every_step() {
        for step in STEPS {
            assert_eq!(rv_for(step, Reason::PinIncorrect), CKR_PIN_INCORRECT);
            assert_eq!(rv_for(step, Reason::OtpIncorrect), CKR_PIN_INCORRECT);
            assert_eq!(rv_for(step, Reason::Locked), CKR_PIN_LOCKED);
        }
    }

    #[test]
    fn a_failed_account_sign_in_is_the_devices_not_the_users() {
        for reason in [Reason::WrongPassword, Reason::TokenExpired, Reason::Other] {
            assert_eq!(rv_for(Step::Login, reason), CKR_DEVICE_ERROR, "{reason:?}");
        }
        // Elsewhere an expired access or SAD asks for a new login ...
        for reason in [
            Reason::WrongPassword,
            Reason::TokenExpired,
            Reason::SadExpired,
        ] {
            assert_eq!(
                rv_for(Step::Authorize, reason),
                CKR_USER_NOT_LOGGED_IN,
                "{reason:?}"
            );
        }
        assert_eq!(
            rv_for(Step::Sign, Reason::SadExpired),
            CKR_USER_NOT_LOGGED_IN
        );
        // ... except a refused access token on a signature request, which is not sent again.
        assert_eq!(rv_for(Step::Sign, Reason::TokenExpired), CKR_DEVICE_ERROR);
    }

    #[test]
    fn service_trouble_is_a_device_error_and_refusals_are_rejections() {
        for step in STEPS {
            assert_eq!(rv_for(step, Reason::Transport), CKR_DEVICE_ERROR);
            assert_eq!(rv_for(step, Reason::ServiceUnavailable), CKR_DEVICE_ERROR);
        }
        assert_eq!(
            rv_for(Step::Authorize, Reason::AccessDenied),
            CKR_FUNCTION_REJECTED
        );
        for reason in [
            Reason::HashNotAuthorized,
            Reason::InvalidRequest,
            Reason::NotSupported,
            Reason::Other,
        ] {
            assert_eq!(
                rv_for(Step::Sign, reason),
                CKR_FUNCTION_FAILED,
                "{reason:?}"
            );
        }
    }

    #[test]
    fn every_returned_code_has_a_name() {
        let reasons = [
            Reason::Transport,
            Reason::TokenExpired,
            Reason::WrongPassword,
            Reason::PinIncorrect,
            Reason::OtpIncorrect,
            Reason::Locked,
            Reason::SadExpired,
            Reason::HashNotAuthorized,
            Reason::AccessDenied,
            Reason::InvalidRequest,
            Reason::ServiceUnavailable,
            Reason::NotSupported,
            Reason::Other,
        ];
        for step in STEPS {
            for reason in reasons {
                let name = rv_name(rv_for(step, reason));
                assert!(
                    name.starts_with("CKR_") && !name.starts_with("CKR 0x"),
                    "{name}"
                );
            }
        }
    }
}
