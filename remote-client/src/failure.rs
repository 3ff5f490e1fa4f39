//! Turning what went wrong on the wire into [`Error`]: reqwest failures by cause, CSC error bodies,
//! and answers the client cannot read. Every message is scrubbed of the secrets of the request that
//! failed, so a service that echoes a PIN or token in its `error_description` cannot leak it further.

use crate::error::{CscErrorCode, Error, TransportKind};
use crate::wire::ErrorBody;
use std::error::Error as StdError;

/// Values shorter than this are not scrubbed: a 1–3 character "secret" would mangle ordinary words,
/// and no real PIN, OTP or token is that short.
const MIN_SCRUB_LEN: usize = 4;

pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if s.len() >= MIN_SCRUB_LEN && out.contains(s) {
            out = out.replace(s, "<redacted>");
        }
    }
    out
}

/// Every error in the chain, looking inside `io::Error`s (whose `source()` skips the wrapped error).
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        out.push(e);
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => {
                let inner: &(dyn StdError + 'static) = inner;
                Some(inner)
            }
            None => e.source(),
        };
        if out.len() > 32 {
            break;
        }
    }
    out
}

/// How far an exchange got when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connecting, sending the request, or waiting for the response headers.
    Request,
    /// Reading the response body: the request reached the service.
    Body,
}

pub(crate) fn transport_kind(err: &(dyn StdError + 'static), phase: Phase) -> TransportKind {
    let kind = request_kind(err);
    match (phase, kind) {
        // Once the answer has begun, the connection was up: neither unreachable nor a handshake.
        (Phase::Body, TransportKind::Unreachable | TransportKind::Tls) => TransportKind::Other,
        _ => kind,
    }
}

fn request_kind(err: &(dyn StdError + 'static)) -> TransportKind {
    let chain = chain(err);
    let reqwest_err = chain
        .iter()
        .find_map(|e| e.downcast_ref::<reqwest::Error>());
    // A TLS failure while connecting, or the server refusing our certificate (with TLS 1.3 that alert
    // arrives after the client's side of the handshake is done), is a handshake refusal; any other TLS
    // failure on an established connection (a bad record mid-answer) is not.
    let tls_refusal = chain
        .iter()
        .any(|e| match e.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::AlertReceived(alert)) => handshake_alert(*alert),
            Some(_) => reqwest_err.is_none_or(|e| e.is_connect()),
            None => false,
        });
    if tls_refusal {
        return TransportKind::Tls;
    }
    let io_kind = |k: std::io::ErrorKind| {
        chain
            .iter()
            .filter_map(|e| e.downcast_ref::<std::io::Error>())
            .any(|io| io.kind() == k)
    };
    if reqwest_err.is_some_and(|e| e.is_timeout()) || io_kind(std::io::ErrorKind::TimedOut) {
        return TransportKind::Timeout;
    }
    if reqwest_err.is_some_and(|e| e.is_connect()) {
        // TCP connect never ends in EOF; the peer hung up during the TLS handshake (tokio-rustls
        // reports "tls handshake eof"), e.g. a plain-HTTP port or a server refusing our certificate.
        if io_kind(std::io::ErrorKind::UnexpectedEof) {
            return TransportKind::Tls;
        }
        return TransportKind::Unreachable;
    }
    TransportKind::Other
}

/// Alerts a peer sends while it is still deciding whether to talk to us at all.
fn handshake_alert(alert: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        alert,
        A::HandshakeFailure
            | A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::CertificateRequired
            | A::UnknownCA
            | A::AccessDenied
            | A::ProtocolVersion
            | A::InsufficientSecurity
    )
}

/// `method: outer: inner: ...`, each distinct message once.
fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(err) {
        let msg = e.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
    }
    parts.join(": ")
}

pub(crate) fn transport(
    method: &str,
    err: &(dyn StdError + 'static),
    phase: Phase,
    secrets: &[&str],
) -> Error {
    Error::Transport {
        kind: transport_kind(err, phase),
        message: scrub(&format!("{method}: {}", describe(err)), secrets),
    }
}

/// A non-2xx answer: a CSC error when the body says which, else a bare HTTP error.
pub(crate) fn status(method: &str, status: u16, body: &[u8], secrets: &[&str]) -> Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if !b.error.trim().is_empty() => Error::Csc {
            method: method.to_owned(),
            status,
            code: CscErrorCode::parse(&scrub(b.error.trim(), secrets)),
            description: scrub(b.error_description.as_deref().unwrap_or("").trim(), secrets),
        },
        _ => {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("unexpected status");
            Error::Http {
                status,
                message: format!("{method}: {reason}"),
            }
        }
    }
}

/// A 2xx answer that cannot be used. serde's messages quote unexpected values, which may be a
/// token or SAD, so only the position and the name of a missing field are kept.
pub(crate) fn bad_json(method: &str, err: &serde_json::Error) -> Error {
    let what = match err.classify() {
        serde_json::error::Category::Data => {
            let text = err.to_string();
            match text.strip_prefix("missing field ") {
                Some(rest) => format!(
                    "missing field {}",
                    rest.split_whitespace().next().unwrap_or("")
                ),
                None => "unexpected value".to_owned(),
            }
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            "not JSON".to_owned()
        }
        serde_json::error::Category::Io => "unreadable".to_owned(),
    };
    Error::Protocol(format!(
        "{method}: response {what} (line {}, column {})",
        err.line(),
        err.column()
    ))
}

pub(crate) fn protocol(method: &str, what: impl std::fmt::Display) -> Error {
    Error::Protocol(format!("{method}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    #[test]
    fn scrub_removes_secrets_of_useful_length() {
        let s = scrub(
            "bad PIN 123456 for token abcdefgh",
            &["123456", "abcdefgh", "a"],
        );
        assert_eq!(s, "bad PIN <redacted> for token <redacted>");
    }

    #[test]
    fn csc_error_bodies() {
        let e = status(
            "credentials/authorize",
            400,
            br#"{"error":"invalid_pin","error_description":"Invalid PIN"}"#,
            &[],
        );
        match &e {
            Error::Csc {
                method,
                status,
                code,
                description,
            } => {
                assert_eq!(method, "credentials/authorize");
                assert_eq!(*status, 400);
                assert_eq!(*code, CscErrorCode::InvalidPin);
                assert_eq!(description, "Invalid PIN");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.reason(), Reason::PinIncorrect);
        assert_eq!(
            e.to_string(),
            "credentials/authorize: HTTP 400 invalid_pin: Invalid PIN"
        );
    }

    #[test]
    fn echoed_secrets_are_scrubbed_from_csc_errors() {
        let e = status(
            "credentials/authorize",
            400,
            br#"{"error":"invalid_otp","error_description":"OTP 987654 rejected for PIN 24680"}"#,
            &["24680", "987654"],
        );
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("987654") && !text.contains("24680"),
            "{text}"
        );
        assert_eq!(e.reason(), Reason::OtpIncorrect);
    }

    #[test]
    fn non_csc_error_bodies() {
        let e = status("info", 404, b"<html>Not here</html>", &[]);
        assert!(matches!(e, Error::Http { status: 404, .. }), "{e:?}");
        assert_eq!(e.to_string(), "HTTP 404: info: Not Found");
        assert_eq!(e.reason(), Reason::NotSupported);
        let e = status("info", 502, br#"{"message":"bad gateway"}"#, &[]);
        assert!(matches!(e, Error::Http { status: 502, .. }));
        assert_eq!(e.reason(), Reason::ServiceUnavailable);
        assert!(e.is_retryable());
        let e = status("info", 599, b"", &[]);
        assert!(e.to_string().contains("unexpected status"));
    }

    #[test]
    fn bad_json_never_quotes_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            #[serde(rename = "SAD")]
            sad: Vec<String>,
        }
        let err = serde_json::from_str::<T>(r#"{"SAD":"topsecret-sad"}"#).unwrap_err();
        let e = bad_json("credentials/authorize", &err);
        let text = e.to_string();
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("unexpected value"), "{text}");
        let err = serde_json::from_str::<T>("{}").unwrap_err();
        assert!(bad_json("m", &err)
            .to_string()
            .contains("missing field `SAD`"));
        let err = serde_json::from_str::<T>("<html>").unwrap_err();
        assert!(bad_json("m", &err).to_string().contains("not JSON"));
        assert_eq!(bad_json("m", &err).reason(), Reason::Transport);
    }

    #[test]
    fn io_wrapped_rustls_error_is_tls() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        assert_eq!(transport_kind(&io, Phase::Request), TransportKind::Tls);
        assert_eq!(transport_kind(&io, Phase::Body), TransportKind::Other);
        assert!(
            describe(&io).contains("invalid peer certificate"),
            "{}",
            describe(&io)
        );
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline");
        assert_eq!(transport_kind(&io, Phase::Request), TransportKind::Timeout);
        assert_eq!(transport_kind(&io, Phase::Body), TransportKind::Timeout);
        let io = std::io::Error::other("eh");
        assert_eq!(transport_kind(&io, Phase::Request), TransportKind::Other);
    }
}
