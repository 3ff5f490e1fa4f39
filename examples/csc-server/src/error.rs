//! The errors a CSC client sees: HTTP status + `{"error", "error_description"}`. The descriptions of the
//! conditions CSC reports as `invalid_request` ("PIN locked", "SAD expired", ...) are the interface
//! clients classify by, so they are built here and nowhere else. No description carries a secret.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CscError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
}

impl CscError {
    fn new(status: u16, code: &'static str, description: impl Into<String>) -> CscError {
        CscError {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> CscError {
        CscError::new(400, "invalid_request", description)
    }

    /// A required parameter is absent or has the wrong JSON type (the CSC specification's wording).
    pub fn missing(kind: &str, name: &str) -> CscError {
        CscError::invalid_request(format!("Missing (or invalid type) {kind} parameter {name}"))
    }

    pub fn invalid_param(name: &str) -> CscError {
        CscError::invalid_request(format!("Invalid parameter {name}"))
    }

    /// Unknown credential and another user's credential alike, so that IDs of others are not revealed.
    pub fn invalid_credential() -> CscError {
        CscError::invalid_param("credentialID")
    }

    pub fn invalid_token() -> CscError {
        CscError::new(401, "invalid_token", "Invalid access token")
    }

    pub fn invalid_token_because(description: &str) -> CscError {
        CscError::new(401, "invalid_token", description)
    }

    pub fn missing_token() -> CscError {
        CscError::new(401, "invalid_token", "Missing access token")
    }

    pub fn expired_token() -> CscError {
        CscError::new(401, "expired_token", "Access token expired")
    }

    pub fn bad_credentials() -> CscError {
        CscError::new(401, "access_denied", "Invalid username or password")
    }

    /// auth/login with an unknown or revoked refresh token: bad login credentials, like a wrong password.
    pub fn bad_refresh_token() -> CscError {
        CscError::new(401, "access_denied", "Invalid or revoked refresh token")
    }

    pub fn login_locked() -> CscError {
        CscError::new(
            401,
            "access_denied",
            "Invalid username or password: account locked after too many failed logins",
        )
    }

    pub fn invalid_pin() -> CscError {
        CscError::new(400, "invalid_pin", "Invalid PIN")
    }

    pub fn invalid_otp() -> CscError {
        CscError::new(400, "invalid_otp", "Invalid OTP")
    }

    pub fn pin_locked() -> CscError {
        CscError::invalid_request("PIN locked")
    }

    pub fn otp_locked() -> CscError {
        CscError::invalid_request("OTP locked")
    }

    pub fn sad_expired() -> CscError {
        CscError::invalid_request("SAD expired")
    }

    /// The SAD is valid but has fewer signatures left than a signHash asks for; nothing was signed.
    pub fn sad_too_few() -> CscError {
        CscError::invalid_request("SAD expired: fewer signatures left than requested")
    }

    pub fn hash_not_authorized() -> CscError {
        CscError::invalid_request("Hash is not authorized by the SAD")
    }

    /// `authorizeCheck` after the user declined the request on the approval page.
    pub fn approval_declined() -> CscError {
        CscError::new(403, "access_denied", "The user declined the request")
    }

    /// `authorizeCheck` after the user's deadline passed, or after an approved request's SAD was not
    /// collected in time.
    pub fn approval_expired() -> CscError {
        CscError::invalid_request("Request expired")
    }

    pub fn not_found(path: &str) -> CscError {
        CscError::new(404, "invalid_request", format!("Unknown method {path}"))
    }

    pub fn method_not_allowed() -> CscError {
        CscError::new(405, "invalid_request", "Use POST")
    }

    /// Details go to the log (they name no secret); the client learns only that the service failed.
    pub fn internal(context: &str, err: impl fmt::Display) -> CscError {
        log::error!("{context}: {err}");
        CscError::new(
            500,
            "server_error",
            "The service encountered an internal error",
        )
    }

    /// The short form for the request log and the audit trail.
    pub fn outcome(&self) -> String {
        format!("{}: {}", self.code, self.description)
    }
}

impl fmt::Display for CscError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HTTP {} {}: {}",
            self.status, self.code, self.description
        )
    }
}

impl From<rusqlite::Error> for CscError {
    fn from(e: rusqlite::Error) -> CscError {
        CscError::internal("database", e)
    }
}

pub type CscResult<T> = Result<T, CscError>;
