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
    /// The service limits how many requests the account makes (GlobalSign DSS: identities and
    /// signatures); it asks to come back later, often with `Retry-After`. The request did nothing.
    RateLimited,
    /// The account's quota (GlobalSign DSS: signatures) is used up; only the provider can raise it.
    QuotaExhausted,
    /// The short-lived credential (a GlobalSign DSS identity and its certificate) has expired at the
    /// service: a new one must be obtained and the application must find it again.
    CredentialExpired,
    Other,
}

/// What a GlobalSign DSS error says, decided from its status and its problem body (remote-client's
/// dss module, which documents where each rule comes from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalsignProblem {
    BadRequest,
    /// 401: the API key and secret (at login) or the access token (elsewhere) were refused.
    Unauthorized,
    Forbidden,
    /// The identity does not exist (any more).
    NotFound,
    RateLimited,
    QuotaExhausted,
    ServerError,
    Unavailable,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("transport ({kind:?}): {message}")]
    Transport {
        kind: TransportKind,
        message: String,
    },
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
    /// A GlobalSign DSS error: its status and the `description` of its `application/problem+json` body,
    /// with the wait the service asked for (`Retry-After`), if any.
    #[error("{method}: HTTP {status}: {description}{}", retry_hint(.retry_after))]
    Dss {
        method: String,
        status: u16,
        problem: GlobalsignProblem,
        description: String,
        retry_after: Option<std::time::Duration>,
    },
    /// The service answered something this client cannot use (bad JSON, missing field, bad base64).
    #[error("protocol: {0}")]
    Protocol(String),
}

fn retry_hint(wait: &Option<std::time::Duration>) -> String {
    match wait {
        Some(w) => format!(" (the service asks to retry after {} s)", w.as_secs()),
        None => String::new(),
    }
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
                // A 500 without a CSC body is a crashed handler or a proxy, like 502-504.
                429 | 500 | 502..=504 => Reason::ServiceUnavailable,
                _ => Reason::Other,
            },
            Error::Dss {
                problem, method, ..
            } => match problem {
                GlobalsignProblem::BadRequest => Reason::InvalidRequest,
                GlobalsignProblem::Unauthorized if method == "login" => Reason::WrongPassword,
                GlobalsignProblem::Unauthorized => Reason::TokenExpired,
                GlobalsignProblem::Forbidden => Reason::AccessDenied,
                GlobalsignProblem::NotFound => Reason::CredentialExpired,
                GlobalsignProblem::RateLimited => Reason::RateLimited,
                GlobalsignProblem::QuotaExhausted => Reason::QuotaExhausted,
                GlobalsignProblem::ServerError | GlobalsignProblem::Unavailable => {
                    Reason::ServiceUnavailable
                }
                GlobalsignProblem::Other => Reason::Other,
            },
            Error::Csc {
                status,
                code,
                description,
                ..
            } => {
                let d = description.to_ascii_lowercase();
                // Whole words, so that e.g. "unblocked" or "crusade" cannot change the outcome.
                let word = |w: &str| {
                    d.split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|x| x == w)
                };
                if word("locked") || word("disabled") {
                    return Reason::Locked;
                }
                // An unknown method (a service without getChallenge, authorizeCheck, ...), as opposed
                // to an unknown credential, which some services also answer with 404.
                if matches!(status, 404 | 405 | 501) && !word("credential") && !word("credentialid")
                {
                    return Reason::NotSupported;
                }
                match code {
                    CscErrorCode::InvalidPin => Reason::PinIncorrect,
                    CscErrorCode::InvalidOtp => Reason::OtpIncorrect,
                    CscErrorCode::InvalidToken | CscErrorCode::ExpiredToken => Reason::TokenExpired,
                    CscErrorCode::AccessDenied if *status == 401 => Reason::WrongPassword,
                    CscErrorCode::AccessDenied => Reason::AccessDenied,
                    CscErrorCode::TemporarilyUnavailable => Reason::ServiceUnavailable,
                    CscErrorCode::ServerError => Reason::ServiceUnavailable,
                    // The refresh token the account logs in with was refused (unknown, revoked,
                    // expired): like a wrong password, only new enrolment helps.
                    CscErrorCode::InvalidRequest
                        if d.contains("refresh_token") || d.contains("refresh token") =>
                    {
                        Reason::WrongPassword
                    }
                    CscErrorCode::InvalidRequest if d.contains("hash is not authorized") => {
                        Reason::HashNotAuthorized
                    }
                    CscErrorCode::InvalidRequest if word("sad") => {
                        if word("hash") || word("hashes") {
                            Reason::HashNotAuthorized
                        } else {
                            Reason::SadExpired
                        }
                    }
                    CscErrorCode::InvalidRequest => Reason::InvalidRequest,
                    // RFC 6749 §5.2 at a token endpoint: the grant (password, refresh token, code)
                    // or the client's own credentials were refused; only new credentials help.
                    CscErrorCode::Other(c)
                        if matches!(
                            c.as_str(),
                            "invalid_grant" | "invalid_client" | "unauthorized_client"
                        ) =>
                    {
                        Reason::WrongPassword
                    }
                    CscErrorCode::Other(c) if c == "invalid_scope" => Reason::InvalidRequest,
                    CscErrorCode::Other(c)
                        if matches!(
                            c.as_str(),
                            "unsupported_grant_type" | "unsupported_response_type"
                        ) =>
                    {
                        Reason::NotSupported
                    }
                    // An error code this client does not know, with a status that says "later"
                    // (429 Too Many Requests, 502-504): the service is overloaded, whatever it called it.
                    CscErrorCode::Other(_) if matches!(status, 429 | 502..=504) => {
                        Reason::ServiceUnavailable
                    }
                    CscErrorCode::Other(_) => Reason::Other,
                }
            }
        }
    }

    /// True for failures where repeating a read-only request may help. For a request the service may act
    /// on (authorize, signHash), see [`Error::is_safe_to_resend`].
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.reason(),
            Reason::Transport | Reason::ServiceUnavailable | Reason::RateLimited
        ) && !matches!(
            self,
            Error::Transport {
                kind: TransportKind::Tls,
                ..
            }
        )
    }

    /// True when the service may have received the request and acted on it although the answer was lost
    /// or unusable: a timeout or broken connection after the request went out, a 5xx other than 501 and
    /// 503 (a gateway's 502/504 or a 500 may come after the work was done), a 2xx the client could not
    /// read. Such a signature request must not be sent again: the service may have signed, or spent the
    /// SAD. False when the request never left (configuration, connection refused, TLS handshake) or the
    /// service said no (a 4xx, 501, 503).
    pub fn maybe_processed(&self) -> bool {
        match self {
            Error::Config(_) => false,
            Error::Transport { kind, .. } => {
                matches!(kind, TransportKind::Timeout | TransportKind::Other)
            }
            Error::Http { status, .. } | Error::Csc { status, .. } | Error::Dss { status, .. } => {
                *status >= 500 && !matches!(status, 501 | 503)
            }
            Error::Protocol(_) => true,
        }
    }

    /// True when sending the same request again is both useful and harmless, whatever the method: a
    /// passing failure the service cannot have acted on (connection refused, 429, 503).
    pub fn is_safe_to_resend(&self) -> bool {
        self.is_retryable() && !self.maybe_processed()
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    fn csc(status: u16, code: &str, description: &str) -> Error {
        Error::Csc {
            method: "m".into(),
            status,
            code: CscErrorCode::parse(code),
            description: description.into(),
        }
    }

    /// The reference service's phrases (examples/csc-server/src/error.rs).
    #[test]
    fn an_unknown_code_with_a_later_status_is_overload() {
        assert_eq!(
            csc(429, "too_many_requests", "slow down").reason(),
            Reason::ServiceUnavailable
        );
        assert_eq!(
            csc(503, "maintenance", "back at 5").reason(),
            Reason::ServiceUnavailable
        );
        assert_eq!(csc(400, "weird", "x").reason(), Reason::Other);
    }

    #[test]
    fn reference_service_phrases() {
        let cases = [
            (400, "invalid_pin", "Invalid PIN", Reason::PinIncorrect),
            (400, "invalid_otp", "Invalid OTP", Reason::OtpIncorrect),
            (400, "invalid_request", "PIN locked", Reason::Locked),
            (400, "invalid_request", "OTP locked", Reason::Locked),
            (400, "invalid_request", "SAD expired", Reason::SadExpired),
            (
                400,
                "invalid_request",
                "SAD expired: fewer signatures left than requested",
                Reason::SadExpired,
            ),
            (
                400,
                "invalid_request",
                "Invalid parameter SAD",
                Reason::SadExpired,
            ),
            (
                400,
                "invalid_request",
                "Hash is not authorized by the SAD",
                Reason::HashNotAuthorized,
            ),
            (
                400,
                "invalid_request",
                "Invalid parameter credentialID",
                Reason::InvalidRequest,
            ),
            (
                400,
                "invalid_request",
                "Missing (or invalid type) string parameter hashAlgorithmOID",
                Reason::InvalidRequest,
            ),
            (
                401,
                "access_denied",
                "Invalid username or password",
                Reason::WrongPassword,
            ),
            (
                401,
                "access_denied",
                "Invalid username or password: account locked after too many failed logins",
                Reason::Locked,
            ),
            (
                401,
                "invalid_token",
                "Invalid access token",
                Reason::TokenExpired,
            ),
            (
                401,
                "invalid_token",
                "Missing access token",
                Reason::TokenExpired,
            ),
            (
                401,
                "expired_token",
                "Access token expired",
                Reason::TokenExpired,
            ),
            (
                404,
                "invalid_request",
                "Unknown method /csc/v2/credentials/getChallenge",
                Reason::NotSupported,
            ),
            (
                404,
                "invalid_request",
                "Unknown credential",
                Reason::InvalidRequest,
            ),
            (405, "invalid_request", "Use POST", Reason::NotSupported),
            (
                403,
                "access_denied",
                "Not your credential",
                Reason::AccessDenied,
            ),
            (
                500,
                "server_error",
                "The service encountered an internal error",
                Reason::ServiceUnavailable,
            ),
            (
                503,
                "temporarily_unavailable",
                "busy",
                Reason::ServiceUnavailable,
            ),
            (400, "unsupported_thing", "no", Reason::Other),
            (
                400,
                "invalid_grant",
                "refresh token revoked",
                Reason::WrongPassword,
            ),
            (401, "invalid_client", "", Reason::WrongPassword),
            (400, "unauthorized_client", "", Reason::WrongPassword),
            (400, "invalid_scope", "", Reason::InvalidRequest),
            (400, "unsupported_grant_type", "", Reason::NotSupported),
            (
                302,
                "access_denied",
                "the user refused",
                Reason::AccessDenied,
            ),
        ];
        for (status, code, description, want) in cases {
            assert_eq!(
                csc(status, code, description).reason(),
                want,
                "{status} {code} {description:?}"
            );
        }
    }

    #[test]
    fn words_not_substrings() {
        assert_eq!(
            csc(400, "invalid_request", "Crusade unblocked").reason(),
            Reason::InvalidRequest
        );
    }

    #[test]
    fn other_errors() {
        let t = |kind| Error::Transport {
            kind,
            message: String::new(),
        };
        assert_eq!(t(TransportKind::Unreachable).reason(), Reason::Transport);
        assert!(t(TransportKind::Unreachable).is_retryable());
        assert!(t(TransportKind::Timeout).is_retryable());
        assert!(!t(TransportKind::Tls).is_retryable());
        assert_eq!(Error::Config(String::new()).reason(), Reason::Other);
        assert!(!Error::Config(String::new()).is_retryable());
        let http = |status| Error::Http {
            status,
            message: String::new(),
        };
        assert_eq!(http(401).reason(), Reason::TokenExpired);
        assert_eq!(http(403).reason(), Reason::AccessDenied);
        assert_eq!(http(404).reason(), Reason::NotSupported);
        assert_eq!(http(429).reason(), Reason::ServiceUnavailable);
        assert_eq!(http(500).reason(), Reason::ServiceUnavailable);
        assert!(http(500).is_retryable());
        assert_eq!(http(400).reason(), Reason::Other);
        assert_eq!(Error::Protocol(String::new()).reason(), Reason::Transport);
    }

    #[test]
    fn what_the_service_may_have_acted_on() {
        let t = |kind| Error::Transport {
            kind,
            message: String::new(),
        };
        let http = |status| Error::Http {
            status,
            message: String::new(),
        };
        let cases = [
            (Error::Config(String::new()), false, false),
            (t(TransportKind::Unreachable), false, true),
            (t(TransportKind::Tls), false, false),
            (t(TransportKind::Timeout), true, false),
            (t(TransportKind::Other), true, false),
            (http(400), false, false),
            (http(401), false, false),
            (http(429), false, true),
            (http(500), true, false),
            (http(501), false, false),
            (http(502), true, false),
            (http(503), false, true),
            (http(504), true, false),
            (csc(500, "server_error", "internal"), true, false),
            (csc(503, "temporarily_unavailable", "busy"), false, true),
            (csc(400, "invalid_request", "SAD expired"), false, false),
            (Error::Protocol(String::new()), true, false),
        ];
        for (e, processed, resend) in cases {
            assert_eq!(e.maybe_processed(), processed, "{e:?}");
            assert_eq!(e.is_safe_to_resend(), resend, "{e:?}");
        }
    }
}
