//! Errors, kept distinct so that the PKCS#11 module can map each to the CK_RV a user can act on.
//! No error carries a secret: messages are built from status codes, CSC error codes and the service's
//! `error_description`, never from request bodies.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// DNS failure, connection refused, network unreachable.
    Unreachable,
    Timeout,
    /// Handshake failed: untrusted or invalid certificate, wrong host name, protocol error.
    Tls,
    Other,
}

/// The CSC `error` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CscErrorCode {
    InvalidRequest,
    InvalidToken,
    ExpiredToken,
    AccessDenied,
    InvalidPin,
    InvalidOtp,
    ServerError,
    TemporarilyUnavailable,
    Other(String),
}

impl CscErrorCode {
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => CscErrorCode::InvalidRequest,
            "invalid_token" => CscErrorCode::InvalidToken,
            "expired_token" => CscErrorCode::ExpiredToken,
            "access_denied" => CscErrorCode::AccessDenied,
            "invalid_pin" => CscErrorCode::InvalidPin,
            "invalid_otp" => CscErrorCode::InvalidOtp,
            "server_error" => CscErrorCode::ServerError,
            "temporarily_unavailable" => CscErrorCode::TemporarilyUnavailable,
            other => CscErrorCode::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CscErrorCode::InvalidRequest => "invalid_request",
            CscErrorCode::InvalidToken => "invalid_token",
            CscErrorCode::ExpiredToken => "expired_token",
            CscErrorCode::AccessDenied => "access_denied",
            CscErrorCode::InvalidPin => "invalid_pin",
            CscErrorCode::InvalidOtp => "invalid_otp",
            CscErrorCode::ServerError => "server_error",
            CscErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            CscErrorCode::Other(s) => s,
        }
    }
}

impl fmt::Display for CscErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, in the terms a caller decides on. Derived in one place (`Error::reason`) from the CSC
/// error code and, for the conditions CSC reports as `invalid_request` with a description ("PIN locked",
/// "SAD expired", "Hash is not authorized by the SAD"), from that description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Could not talk to the service at all (network, TLS, timeout, unparseable answer).
    Transport,
    /// The access token is invalid or expired: log in again.
    TokenExpired,
    WrongPassword,
    PinIncorrect,
    OtpIncorrect,
    /// PIN or OTP locked after too many failures, or the account/credential is disabled.
    Locked,
    /// The SAD expired or was used up: authorize again.
    SadExpired,
    /// SCAL 2: the hash was not among those authorized.
    HashNotAuthorized,
    /// The user or the service refused (e.g. an out-of-band approval was declined, another user's
    /// credential).
    AccessDenied,
    /// The request was malformed or names something that does not exist.
    InvalidRequest,
    /// The service is overloaded or failing; a read may be retried.
    ServiceUnavailable,
    NotSupported,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("transport ({kind:?}): {message}")]
    Transport { kind: TransportKind, message: String },
    /// An HTTP error without a CSC error body.
    #[error("HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// A CSC error body.
    #[error("{method}: HTTP {status} {code}: {description}")]
    Csc {
        method: String,
        status: u16,
        code: CscErrorCode,
        description: String,
    },
    /// The service answered something this client cannot use (bad JSON, missing field, bad base64).
    #[error("protocol: {0}")]
    Protocol(String),
}

impl Error {
    pub fn reason(&self) -> Reason {
        match self {
            Error::Config(_) => Reason::Other,
            Error::Transport { .. } | Error::Protocol(_) => Reason::Transport,
            Error::Http { status, .. } => match status {
                401 => Reason::TokenExpired,
                403 => Reason::AccessDenied,
                404 | 501 => Reason::NotSupported,
                429 | 502..=504 => Reason::ServiceUnavailable,
                _ => Reason::Other,
            },
            Error::Csc {
                status,
                code,
                description,
                ..
            } => {
                let d = description.to_ascii_lowercase();
                if d.contains("locked") || d.contains("disabled") {
                    return Reason::Locked;
                }
                match code {
                    CscErrorCode::InvalidPin => Reason::PinIncorrect,
                    CscErrorCode::InvalidOtp => Reason::OtpIncorrect,
                    CscErrorCode::InvalidToken | CscErrorCode::ExpiredToken => {
                        Reason::TokenExpired
                    }
                    CscErrorCode::AccessDenied if *status == 401 => Reason::WrongPassword,
                    CscErrorCode::AccessDenied => Reason::AccessDenied,
                    CscErrorCode::TemporarilyUnavailable => Reason::ServiceUnavailable,
                    CscErrorCode::ServerError => Reason::ServiceUnavailable,
                    CscErrorCode::InvalidRequest if d.contains("sad") => {
                        if d.contains("hash") {
                            Reason::HashNotAuthorized
                        } else {
                            Reason::SadExpired
                        }
                    }
                    CscErrorCode::InvalidRequest if d.contains("hash is not authorized") => {
                        Reason::HashNotAuthorized
                    }
                    CscErrorCode::InvalidRequest => Reason::InvalidRequest,
                    CscErrorCode::Other(_) => Reason::Other,
                }
            }
        }
    }

    /// True for failures where repeating a read-only request may help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.reason(),
            Reason::Transport | Reason::ServiceUnavailable
        ) && !matches!(
            self,
            Error::Transport {
                kind: TransportKind::Tls,
                ..
            }
        )
    }
}

pub type Result<T> = std::result::Result<T, Error>;
