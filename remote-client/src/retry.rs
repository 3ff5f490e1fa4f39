//! Which failed requests are sent again, when, and for how long: the one retry policy of every request this
//! crate sends. It knows errors and clocks, not HTTP; the transport hands it one attempt at a time.

use crate::error::{Error, Result};
use std::time::{Duration, Instant, SystemTime};

/// How a client repeats requests that failed for a passing reason.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per method call, the first included (1: never repeat). A request the service may act on
    /// (authorize, signHash, sendOTP, a token grant) is repeated only when the failure shows the service
    /// cannot have acted on it ([`Error::maybe_processed`]).
    pub attempts: u32,
    /// Pause before the second attempt, doubled before each later one. A `Retry-After` from the service
    /// (429, 503) replaces it.
    pub backoff: Duration,
    /// The most one method call may take, every attempt and pause included; each attempt gets what is
    /// left of it (at most the request timeout). A `Retry-After` that would end past it ends the call at
    /// once with the service's error. `None`: no bound beyond the attempts, and a `Retry-After` longer
    /// than one request's timeout ends the call.
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    /// One attempt: repeating is the caller's choice.
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Duration::from_millis(200),
            deadline: None,
        }
    }
}

impl RetryPolicy {
    pub(crate) fn check(&self) -> Result<()> {
        if self.attempts == 0 {
            return Err(Error::Config("retry attempts must be at least 1".into()));
        }
        if self.deadline.is_some_and(|d| d.is_zero()) {
            return Err(Error::Config(
                "retry deadline must be greater than zero".into(),
            ));
        }
        Ok(())
    }
}

/// Whether sending a request twice can make the service act twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Changes nothing at the service (or changes it the same way each time).
    Read,
    /// Spends or creates something: a signature, a SAD, an SMS, a single-use code, a rotated token.
    Write,
}

/// A failed attempt and the service's word on when to come back.
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: Error,
    pub retry_after: Option<Duration>,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed {
            error,
            retry_after: None,
        }
    }
}

/// Runs `attempt` (given the time it may take) until it succeeds, the failure is not worth repeating,
/// the attempts are used up or the deadline leaves no room for another.
pub(crate) fn run<T>(
    policy: &RetryPolicy,
    effect: Effect,
    timeout: Duration,
    mut attempt: impl FnMut(Duration) -> std::result::Result<T, Failed>,
) -> Result<T> {
    let deadline = policy.deadline.map(|d| Instant::now() + d);
    let mut pause = policy.backoff;
    let mut tries = 0;
    loop {
        tries += 1;
        let budget = match deadline {
            Some(end) => end.saturating_duration_since(Instant::now()).min(timeout),
            None => timeout,
        };
        let failed = match attempt(budget) {
            Ok(value) => return Ok(value),
            Err(failed) => failed,
        };
        let again = tries < policy.attempts
            && failed.error.is_retryable()
            && (effect == Effect::Read || !failed.error.maybe_processed());
        if !again {
            return Err(failed.error);
        }
        let wait = failed.retry_after.unwrap_or(pause);
        let room = match deadline {
            Some(end) => end.saturating_duration_since(Instant::now()),
            None => timeout,
        };
        if wait >= room {
            log::debug!(
                "not retrying: the service asks to wait {} ms, {} ms are left",
                wait.as_millis(),
                room.as_millis()
            );
            return Err(failed.error);
        }
        log::warn!(
            "retrying in {} ms after a transient failure: {}",
            wait.as_millis(),
            failed.error
        );
        std::thread::sleep(wait);
        pause = pause.saturating_mul(2);
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP date, as a wait from `now`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long values saturate rather than fail: the deadline bounds the wait anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn unavailable(status: u16) -> Error {
        Error::Http {
            status,
            message: String::new(),
        }
    }

    fn policy(attempts: u32, deadline: Option<Duration>) -> RetryPolicy {
        RetryPolicy {
            attempts,
            backoff: Duration::from_millis(1),
            deadline,
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        // RFC 9110's example date is 784111777 in Unix time.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_are_repeated_until_they_succeed() {
        let calls = Cell::new(0);
        let got = run(
            &policy(3, None),
            Effect::Read,
            Duration::from_secs(1),
            |_| {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    Err(unavailable(502).into())
                } else {
                    Ok(7)
                }
            },
        );
        assert_eq!(got.unwrap(), 7);
        assert_eq!(calls.get(), 3);
    }

    /// How many attempts `run` makes when every one fails with `failure()`.
    fn tries(policy: &RetryPolicy, effect: Effect, failure: impl Fn() -> Failed) -> usize {
        let calls = Cell::new(0);
        run(policy, effect, Duration::from_secs(1), |_| {
            calls.set(calls.get() + 1);
            Err::<(), _>(failure())
        })
        .unwrap_err();
        calls.get()
    }

    fn hinted(status: u16, wait: Duration) -> impl Fn() -> Failed {
        move || Failed {
            error: unavailable(status),
            retry_after: Some(wait),
        }
    }

    #[test]
    fn writes_are_repeated_only_when_the_service_cannot_have_acted() {
        for (status, expected) in [(502, 1), (500, 1), (504, 1), (503, 2), (429, 2)] {
            let n = tries(&policy(2, None), Effect::Write, || {
                unavailable(status).into()
            });
            assert_eq!(n, expected, "HTTP {status}");
        }
    }

    #[test]
    fn permanent_failures_are_not_repeated() {
        assert_eq!(
            tries(&policy(5, None), Effect::Read, || unavailable(404).into()),
            1
        );
    }

    #[test]
    fn a_retry_after_past_the_deadline_ends_the_call_at_once() {
        let started = Instant::now();
        let deadline = policy(5, Some(Duration::from_secs(2)));
        let n = tries(
            &deadline,
            Effect::Read,
            hinted(503, Duration::from_secs(30)),
        );
        assert_eq!(n, 1);
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn a_short_retry_after_is_honoured_and_attempts_share_the_deadline() {
        let budgets = std::cell::RefCell::new(Vec::new());
        let started = Instant::now();
        let got = run(
            &policy(3, Some(Duration::from_millis(900))),
            Effect::Read,
            Duration::from_secs(5),
            |budget| {
                budgets.borrow_mut().push(budget);
                if budgets.borrow().len() == 1 {
                    Err(Failed {
                        error: unavailable(429),
                        retry_after: Some(Duration::from_millis(300)),
                    })
                } else {
                    Ok(())
                }
            },
        );
        got.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        let budgets = budgets.into_inner();
        assert!(budgets[0] <= Duration::from_millis(900), "{budgets:?}");
        assert!(budgets[1] <= Duration::from_millis(600), "{budgets:?}");
    }

    #[test]
    fn without_a_deadline_a_retry_after_longer_than_the_timeout_ends_the_call() {
        let n = tries(
            &policy(3, None),
            Effect::Read,
            hinted(503, Duration::from_secs(2)),
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn bad_policies_are_configuration_errors() {
        assert!(policy(0, None).check().is_err());
        assert!(policy(1, Some(Duration::ZERO)).check().is_err());
        assert!(RetryPolicy::default().check().is_ok());
    }
}
