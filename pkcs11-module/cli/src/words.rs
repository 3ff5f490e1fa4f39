//! Failures in words a person understands: what happened and what to do about it. Every message the
//! tool prints for a failure is built here or is a sentence of the same kind.

use remote_client::{Error, Reason, TransportKind};
use std::fmt;
use std::path::Path;

/// A failure to show the user, already in plain words.
#[derive(Debug)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Failure {
    pub fn new(msg: impl Into<String>) -> Failure {
        Failure(msg.into())
    }
}

pub type Outcome<T> = Result<T, Failure>;

/// The innermost cause of a transport message ("...: tcp connect error: Connection refused (os error
/// 111)" → "connection refused").
fn innermost(message: &str) -> String {
    let last = message.rsplit(": ").next().unwrap_or(message).trim();
    let without_errno = match last.find(" (os error") {
        Some(i) => &last[..i],
        None => last,
    };
    let mut chars = without_errno.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => "no reason given".to_owned(),
    }
}

/// Why a TLS certificate was refused, in words, from rustls's names for it.
fn certificate_problem(message: &str) -> String {
    let known = [
        (
            "UnknownIssuer",
            "it was issued by a certificate authority this computer does not trust",
        ),
        (
            "NotValidForName",
            "it was not issued for this address (host name)",
        ),
        ("Expired", "it has expired"),
        (
            "NotValidYet",
            "it is not valid yet (check this computer's clock)",
        ),
        ("Revoked", "it has been revoked"),
        ("BadSignature", "its signature is invalid"),
    ];
    known
        .iter()
        .find(|(name, _)| message.contains(name))
        .map(|(_, words)| (*words).to_owned())
        .unwrap_or_else(|| innermost(message))
}

/// A failure talking to the service at `url`, in words. `ca_file` is the CA bundle given, if any.
pub fn service(url: &str, ca_file: Option<&Path>, e: &Error) -> Failure {
    let text = match e {
        Error::Transport { kind, message } => match kind {
            TransportKind::Unreachable => format!(
                "The service at {url} could not be reached: {}. Is the address right, and is the service running?",
                innermost(message)
            ),
            TransportKind::Timeout => format!(
                "The service at {url} did not answer in time. Check the network connection, or try again later."
            ),
            TransportKind::Tls => {
                let hint = match ca_file {
                    Some(ca) => format!(
                        "It is not signed by the certificate authority in {}: is that the right CA file?",
                        ca.display()
                    ),
                    None => "If the service uses its own certificate authority, pass its certificate \
                             with --ca-file."
                        .to_owned(),
                };
                format!(
                    "The service's certificate is not trusted: {}. {hint}",
                    certificate_problem(message)
                )
            }
            TransportKind::Other => format!(
                "Talking to the service at {url} failed: {}.",
                innermost(message)
            ),
        },
        Error::Config(m) => format!("The service address or TLS files cannot be used: {m}."),
        Error::Protocol(_) => format!(
            "The address {url} answered, but not like a CSC signing service. Check the address \
             (the service's base URL, without /csc/v1 or /csc/v2)."
        ),
        Error::Http { status, .. } if matches!(status, 404 | 405 | 501) => format!(
            "The address {url} answered, but not like a CSC signing service (HTTP {status}). Check \
             the address (the service's base URL, without /csc/v1 or /csc/v2)."
        ),
        Error::Http { .. } | Error::Csc { .. } => match e.reason() {
            Reason::NotSupported => format!(
                "The address {url} answered, but not like a CSC signing service ({}). Check the \
                 address (the service's base URL, without /csc/v1 or /csc/v2).",
                refusal(e)
            ),
            Reason::WrongPassword => {
                "The service did not accept the account name or password.".to_owned()
            }
            Reason::Locked => "The account is locked or disabled at the service; contact the \
                               service's support."
                .to_owned(),
            Reason::TokenExpired => "The service ended the session; run the command again.".to_owned(),
            Reason::ServiceUnavailable => format!(
                "The service at {url} is not available right now ({e}); try again later."
            ),
            _ => format!("The service refused the request: {}.", refusal(e)),
        },
    };
    Failure(text)
}

/// The service's own words for a refusal.
pub fn refusal(e: &Error) -> String {
    match e {
        Error::Csc {
            description, code, ..
        } if !description.is_empty() => format!("{description} ({code})"),
        other => other.to_string(),
    }
}

/// The stored refresh token no longer works: only a new enrolment helps.
pub fn enrolment_expired(label: &str, url: &str, account: &str) -> Failure {
    Failure(format!(
        "The service no longer accepts this computer's enrolment of token \"{label}\" (it may have \
         expired or been revoked). Enrol again: cloudtoken enroll --url {url} --account {account} \
         --label \"{label}\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use remote_client::CscErrorCode;

    fn transport(kind: TransportKind, message: &str) -> Error {
        Error::Transport {
            kind,
            message: message.into(),
        }
    }

    #[test]
    fn unreachable_names_the_cause() {
        let e = transport(
            TransportKind::Unreachable,
            "info: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
        );
        assert_eq!(
            service("https://h:1", None, &e).0,
            "The service at https://h:1 could not be reached: connection refused. Is the address \
             right, and is the service running?"
        );
    }

    #[test]
    fn untrusted_certificate_suggests_the_ca_file() {
        let e = transport(
            TransportKind::Tls,
            "info: client error (Connect): invalid peer certificate: UnknownIssuer",
        );
        let m = service("https://h", None, &e).0;
        assert!(m.starts_with("The service's certificate is not trusted: it was issued by a certificate authority this computer does not trust."), "{m}");
        assert!(m.contains("--ca-file"), "{m}");
        let m = service("https://h", Some(Path::new("/x/ca.pem")), &e).0;
        assert!(m.contains("/x/ca.pem"), "{m}");
    }

    #[test]
    fn wrong_password_and_wrong_address() {
        let e = Error::Csc {
            method: "auth/login".into(),
            status: 401,
            code: CscErrorCode::AccessDenied,
            description: "Invalid username or password".into(),
        };
        assert!(service("u", None, &e)
            .0
            .contains("account name or password"));
        let e = Error::Http {
            status: 404,
            message: "info: Not Found".into(),
        };
        assert!(service("https://h/x", None, &e)
            .0
            .contains("not like a CSC signing service (HTTP 404)"));
    }
}
