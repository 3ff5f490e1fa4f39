//! GlobalSign DSS error answers: the `application/problem+json` body the API documentation v2.6 shows
//! for its 400 and 401 answers (`description` required, `id` and an `errors` object of error type →
//! details optional), turned into [`Error::Dss`].
//!
//! The documentation found publicly shows the bodies of 400 ("Request could not be parsed") and 401
//! ("Returned on unsuccessful authentication"); pdf-tools' provider reference says only that an
//! exhausted quota and an exceeded rate limit are distinct failures ("PermissionException: If the
//! account's quota is reached", "RetryException: If one of the account's rate limits is exceeded").
//! Their statuses are not public, so this client reads: 429 (RFC 6585 "Too Many Requests", with its
//! `Retry-After`) as a rate limit; 402, or any refusal whose problem names a quota, as an exhausted
//! quota; 404 as an identity that no longer exists. The reference emulator answers so
//! (examples/globalsign-dss-emulator/README.md lists this among what is not verified).

use crate::error::{Error, GlobalsignProblem};
use crate::failure::scrub;
use std::time::Duration;

fn mentions_quota(text: &str) -> bool {
    text.to_ascii_lowercase().contains("quota")
}

pub(crate) fn decode(
    method: &str,
    status: u16,
    body: &[u8],
    secrets: &[&str],
    retry_after: Option<Duration>,
) -> Error {
    let parsed = serde_json::from_slice::<super::wire::Problem>(body).ok();
    let description = parsed
        .as_ref()
        .map(|p| p.description.trim().to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("unexpected status")
                .to_owned()
        });
    let quota = parsed.as_ref().is_some_and(|p| {
        mentions_quota(&p.description) || p.errors.keys().any(|k| mentions_quota(k))
    });
    let problem = match status {
        402 => GlobalsignProblem::QuotaExhausted,
        400 | 403 | 409 | 422 if quota => GlobalsignProblem::QuotaExhausted,
        400 => GlobalsignProblem::BadRequest,
        401 => GlobalsignProblem::Unauthorized,
        403 => GlobalsignProblem::Forbidden,
        404 | 410 => GlobalsignProblem::NotFound,
        429 => GlobalsignProblem::RateLimited,
        503 => GlobalsignProblem::Unavailable,
        500..=599 => GlobalsignProblem::ServerError,
        _ => GlobalsignProblem::Other,
    };
    Error::Dss {
        method: method.to_owned(),
        status,
        problem,
        description: scrub(&description, secrets),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    fn reason(method: &str, status: u16, body: &str) -> Reason {
        decode(method, status, body.as_bytes(), &[], None).reason()
    }

    #[test]
    fn statuses_and_bodies_become_reasons() {
        let cases = [
            (
                "login",
                401,
                r#"{"description":"Unauthorized"}"#,
                Reason::WrongPassword,
            ),
            (
                "sign",
                401,
                r#"{"description":"Unauthorized"}"#,
                Reason::TokenExpired,
            ),
            (
                "login",
                400,
                r#"{"description":"Bad Request"}"#,
                Reason::InvalidRequest,
            ),
            (
                "sign",
                429,
                r#"{"description":"Too Many Requests"}"#,
                Reason::RateLimited,
            ),
            ("sign", 402, "", Reason::QuotaExhausted),
            (
                "sign",
                403,
                r#"{"description":"Forbidden","errors":{"quota":"signatures exhausted"}}"#,
                Reason::QuotaExhausted,
            ),
            (
                "sign",
                403,
                r#"{"description":"Forbidden"}"#,
                Reason::AccessDenied,
            ),
            (
                "sign",
                404,
                r#"{"description":"Not Found"}"#,
                Reason::CredentialExpired,
            ),
            ("identity", 503, "<html>", Reason::ServiceUnavailable),
            ("identity", 502, "", Reason::ServiceUnavailable),
            ("identity", 418, "", Reason::Other),
        ];
        for (method, status, body, want) in cases {
            assert_eq!(
                reason(method, status, body),
                want,
                "{method} {status} {body}"
            );
        }
    }

    #[test]
    fn the_wait_and_the_description_are_kept_and_secrets_scrubbed() {
        let e = decode(
            "login",
            429,
            br#"{"description":"slow down, key e510e289e6cd8947"}"#,
            &["e510e289e6cd8947"],
            Some(Duration::from_secs(7)),
        );
        let text = e.to_string();
        assert!(text.contains("retry after 7 s"), "{text}");
        assert!(!text.contains("e510e289e6cd8947"), "{text}");
        assert!(e.is_retryable() && !e.maybe_processed());
        let e = decode("identity", 404, b"not json", &[], None);
        assert!(e.to_string().contains("Not Found"), "{e}");
    }
}
