//! The service account of one token: the service client (built on first need), the access token (signed
//! in on first need, renewed when it expires), and the one rule for repeating requests:
//!
//! - a *read* (list, info) may be repeated: on a transient failure it is retried with back-off;
//! - any request the service refused because the access token expired did nothing there, so it is sent
//!   again once with a renewed token ([`Account::call`]: authorize, an approval poll, sending an OTP);
//! - a signature request ([`Account::act`]) is sent once: a lost answer is never repaired by sending it
//!   again, because a signature request sent twice spends the authorization twice. Before it the access
//!   token is renewed if it is about to expire, so that a 401 is rare; after a 401 the token is renewed
//!   for the next request, and this one fails.
//!
//! Calls the service seam; the gate is the only lock held across a request (one sign-in at a time).

use crate::error::{self, CkResult, Step};
use crate::service::{Access, Error, Reason, Service};
use cryptoki_sys::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tries of a read, the first included.
const READ_TRIES: u32 = 3;
/// First pause between tries of a read; it doubles.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// The longest `Retry-After` a read waits for; an application waiting on C_OpenSession or C_Sign should
/// not hang for the service's maintenance window.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(5);
/// An access token that expires sooner than this is renewed before it carries a signature request.
const RENEW_MARGIN: Duration = Duration::from_secs(5);

/// Builds the service on first need (so that a token whose service is unreachable still loads).
pub type Connect = Box<dyn Fn() -> CkResult<Arc<dyn Service>> + Send + Sync>;

/// Why a request failed: already mapped and logged, or a service error for the caller to decide on.
#[derive(Debug)]
pub enum CallError {
    Ck(CK_RV),
    Remote(Error),
}

impl CallError {
    pub fn into_rv(self, slot: CK_SLOT_ID, step: Step) -> CK_RV {
        match self {
            CallError::Ck(rv) => rv,
            CallError::Remote(e) => error::from_remote(slot, step, &e),
        }
    }
}

struct Held {
    access: Access,
    /// When to stop trusting it (from the service's lifetime).
    expires: Option<Instant>,
}

pub struct Account {
    slot: CK_SLOT_ID,
    /// How long one read may take, its retries and pauses included.
    budget: Duration,
    connect: Connect,
    service: Mutex<Option<Arc<dyn Service>>>,
    access: Mutex<Option<Arc<Held>>>,
    /// Held across one sign-in, so that concurrent callers wait for it instead of each signing in.
    gate: Mutex<()>,
}

impl Account {
    pub fn new(slot: CK_SLOT_ID, budget: Duration, connect: Connect) -> Account {
        Account {
            slot,
            budget,
            connect,
            service: Mutex::new(None),
            access: Mutex::new(None),
            gate: Mutex::new(()),
        }
    }

    /// The service, built on first use.
    pub fn service(&self) -> CkResult<Arc<dyn Service>> {
        let mut slot = self.service.lock();
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = (self.connect)()?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// The current access, signing in when there is none (or when `stale` is the one held).
    fn access(&self, service: &dyn Service, stale: Option<&Arc<Held>>) -> CkResult<Arc<Held>> {
        let current = |held: &Option<Arc<Held>>| {
            held.as_ref()
                .filter(|h| stale.is_none_or(|s| !Arc::ptr_eq(h, s)))
                .cloned()
        };
        if let Some(h) = current(&self.access.lock()) {
            return Ok(h);
        }
        let _gate = self.gate.lock();
        if let Some(h) = current(&self.access.lock()) {
            return Ok(h);
        }
        let access = retry(self.slot, self.budget, service, || service.sign_in())
            .map_err(|e| error::from_remote(self.slot, Step::Login, &e))?;
        log::debug!("slot {}: signed in to the service account", self.slot);
        let held = Arc::new(Held {
            expires: access.lifetime.map(|l| Instant::now() + l),
            access,
        });
        *self.access.lock() = Some(held.clone());
        Ok(held)
    }

    /// A request that changes nothing: retried on transient failures, and sent again with a new access
    /// token when the service says the token expired. `step` names it in the log line of a failure.
    pub fn read<T>(
        &self,
        step: Step,
        f: impl Fn(&dyn Service, &Access) -> Result<T, Error>,
    ) -> CkResult<T> {
        self.call(|s, a| retry(self.slot, self.budget, s, || f(s, a)))
            .map_err(|e| e.into_rv(self.slot, step))
    }

    /// One request, sent again once with a renewed access token when the service refused the token (it
    /// then did nothing). The service error is returned unmapped, for callers that act on it.
    pub fn call<T>(
        &self,
        f: impl Fn(&dyn Service, &Access) -> Result<T, Error>,
    ) -> Result<T, CallError> {
        let service = self.service().map_err(CallError::Ck)?;
        let held = self.access(&*service, None).map_err(CallError::Ck)?;
        match f(&*service, &held.access) {
            Err(e) if e.reason() == Reason::TokenExpired && service.renews() => {
                log::info!("slot {}: access token expired; logging in again", self.slot);
                let held = self.access(&*service, Some(&held)).map_err(CallError::Ck)?;
                f(&*service, &held.access).map_err(CallError::Remote)
            }
            r => r.map_err(CallError::Remote),
        }
    }

    /// A signature request: sent once, whatever happens. An access token about to expire is renewed first;
    /// one the service refuses is dropped for the next call, and the refusal returned.
    pub fn act<T>(
        &self,
        f: impl FnOnce(&dyn Service, &Access) -> Result<T, Error>,
    ) -> Result<T, CallError> {
        let service = self.service().map_err(CallError::Ck)?;
        let mut held = self.access(&*service, None).map_err(CallError::Ck)?;
        if held
            .expires
            .is_some_and(|at| at <= Instant::now() + RENEW_MARGIN)
        {
            log::info!(
                "slot {}: access token about to expire; logging in again first",
                self.slot
            );
            held = self.access(&*service, Some(&held)).map_err(CallError::Ck)?;
        }
        let result = f(&*service, &held.access);
        if let Err(e) = &result {
            if e.reason() == Reason::TokenExpired {
                let mut a = self.access.lock();
                if a.as_ref().is_some_and(|h| Arc::ptr_eq(h, &held)) {
                    *a = None;
                }
            }
        }
        result.map_err(CallError::Remote)
    }

    /// The service's address, for log lines and the agent's key (`None` while it cannot be built).
    pub fn address(&self) -> Option<String> {
        self.service().ok().map(|s| s.address().to_owned())
    }
}

/// Repeats `f` on transient failures, with back-off, or after the pause the service asked for
/// (`Retry-After`), as long as the whole stays within `budget` (a stalled attempt that used it up is not
/// repeated) and the service's pause is at most [`LONGEST_RETRY_AFTER`].
fn retry<T>(
    slot: CK_SLOT_ID,
    budget: Duration,
    service: &dyn Service,
    f: impl Fn() -> Result<T, Error>,
) -> Result<T, Error> {
    let start = Instant::now();
    let mut delay = FIRST_RETRY;
    let mut tries = 1;
    loop {
        match f() {
            Err(e) if e.is_retryable() && tries < READ_TRIES => {
                let pause = match service.retry_after() {
                    Some(asked) if asked > LONGEST_RETRY_AFTER => {
                        log::warn!(
                            "slot {slot}: the service asks to wait {} s; not retrying: {e}",
                            asked.as_secs()
                        );
                        return Err(e);
                    }
                    Some(asked) => asked,
                    None => delay,
                };
                if start.elapsed() + pause >= budget {
                    log::warn!(
                        "slot {slot}: no time left to retry within the request timeout: {e}"
                    );
                    return Err(e);
                }
                log::warn!(
                    "slot {slot}: retrying in {} ms after a transient failure: {e}",
                    pause.as_millis()
                );
                std::thread::sleep(pause);
                delay *= 2;
                tries += 1;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::fake::{self, FakeService, Fault, Method};

    fn account(fake: &Arc<FakeService>) -> Account {
        let fake = fake.clone();
        Account::new(
            7,
            Duration::from_secs(30),
            Box::new(move || Ok(fake.clone() as Arc<dyn Service>)),
        )
    }

    #[test]
    fn reads_are_retried_after_transient_failures() {
        let fake = Arc::new(FakeService::new());
        let a = account(&fake);
        fake.inject(Method::List, Fault::Fail(fake::unavailable()));
        fake.inject(
            Method::List,
            Fault::Fail(fake::server_error("credentials/list")),
        );
        let ids = a
            .read(Step::ListCredentials, |s, t| s.list_credentials(t))
            .unwrap();
        assert_eq!(ids, vec!["fake-p256".to_owned()]);
        assert_eq!(fake.calls(Method::List), 3);
        assert_eq!(fake.calls(Method::SignIn), 1);
    }

    #[test]
    fn reads_give_up_after_three_tries() {
        let fake = Arc::new(FakeService::new());
        let a = account(&fake);
        for _ in 0..3 {
            fake.inject(Method::List, Fault::Fail(fake::unavailable()));
        }
        let rv = a
            .read(Step::ListCredentials, |s, t| s.list_credentials(t))
            .unwrap_err();
        assert_eq!(rv, CKR_DEVICE_ERROR);
        assert_eq!(fake.calls(Method::List), 3);
    }

    #[test]
    fn a_read_that_used_up_its_time_is_not_repeated() {
        let fake = Arc::new(FakeService::new());
        let service = fake.clone();
        let a = Account::new(
            7,
            Duration::from_millis(300),
            Box::new(move || Ok(service.clone() as Arc<dyn Service>)),
        );
        a.read(Step::ListCredentials, |s, t| s.list_credentials(t))
            .unwrap();
        // A slow failure leaves no time for a second try; a quick one is tried again.
        fake.inject(
            Method::List,
            Fault::SlowFail(Duration::from_millis(350), fake::unavailable()),
        );
        let rv = a
            .read(Step::ListCredentials, |s, t| s.list_credentials(t))
            .unwrap_err();
        assert_eq!(rv, CKR_DEVICE_ERROR);
        assert_eq!(fake.calls(Method::List), 2);
        fake.inject(Method::List, Fault::Fail(fake::unavailable()));
        a.read(Step::ListCredentials, |s, t| s.list_credentials(t))
            .unwrap();
        assert_eq!(fake.calls(Method::List), 4);
    }

    #[test]
    fn an_expired_access_token_is_renewed_once_for_a_read() {
        let fake = Arc::new(FakeService::new());
        let a = account(&fake);
        a.read(Step::ListCredentials, |s, t| s.list_credentials(t))
            .unwrap();
        fake.inject(Method::Info, Fault::ExpireAccess);
        let info = a
            .read(Step::ListCredentials, |s, t| {
                s.credential_info(t, "fake-p256")
            })
            .unwrap();
        assert_eq!(info.id, "fake-p256");
        assert_eq!(fake.calls(Method::SignIn), 2);
        assert_eq!(fake.calls(Method::Info), 2);
    }

    #[test]
    fn an_act_is_never_sent_twice() {
        let fake = Arc::new(FakeService::new());
        let a = account(&fake);
        fake.inject(Method::Authorize, Fault::Fail(fake::unavailable()));
        let e = a
            .act(|s, t| {
                s.authorize(
                    t,
                    &remote_client::AuthorizeRequest {
                        credential_id: "fake-p256".into(),
                        num_signatures: 1,
                        hashes: vec![],
                        hash_algorithm_oid: None,
                        pin: Some(remote_client::Secret::new(fake::PIN)),
                        otp: None,
                        description: None,
                        client_data: None,
                    },
                )
            })
            .unwrap_err();
        assert!(matches!(e, CallError::Remote(ref e) if e.reason() == Reason::ServiceUnavailable));
        assert_eq!(fake.calls(Method::Authorize), 1);
    }

    #[test]
    fn a_refused_access_token_is_replaced_for_the_next_call() {
        let fake = Arc::new(FakeService::new());
        let a = account(&fake);
        fake.inject(Method::List, Fault::ExpireAccess);
        let e = a.act(|s, t| s.list_credentials(t)).unwrap_err();
        assert!(matches!(e, CallError::Remote(ref e) if e.reason() == Reason::TokenExpired));
        assert_eq!(fake.calls(Method::List), 1);
        a.act(|s, t| s.list_credentials(t)).unwrap();
        assert_eq!(fake.calls(Method::SignIn), 2);
    }

    #[test]
    fn a_failing_sign_in_is_a_device_error() {
        let fake = Arc::new(FakeService::new());
        let a = account(&fake);
        fake.inject(
            Method::SignIn,
            Fault::Fail(Error::Config("refresh file: empty".into())),
        );
        let rv = a
            .read(Step::ListCredentials, |s, t| s.list_credentials(t))
            .unwrap_err();
        assert_eq!(rv, CKR_DEVICE_ERROR);
    }
}
