//! The credential model of one token: what the service says about the account's credentials, fetched
//! as a *set*, turned into PKCS#11 objects with handles of their own, and read without the network
//! afterwards; and the visibility rule (private objects only for a logged-in user).
//!
//! A CSC token has one set, fetched once. A token whose credentials are short-lived (GlobalSign DSS
//! identities, whose certificate and key change every ten minutes or so) gets a new set before the
//! current one ends ([`Life`]): new objects with new handles and CKA_IDs, so that a key handle always
//! stands for the key of the certificate found with it, and a signature is never made with a renewed
//! key under a certificate an application already read. The older sets stay readable and usable by
//! handle until their certificates expire (README, "GlobalSign DSS").
//!
//! Calls the account (for the fetch), the object factories and the second-factor policy (what each
//! credential needs, decided once here).

use super::account::Account;
use crate::auth::policy::{self, Need};
use crate::config::{TokenConfig, TokenMode};
use crate::error::{CkResult, Step};
use crate::mechanism::{self, KeyKind, PublicKey};
use crate::object::{self, Attribute, Object};
use crate::service::CredentialInfo;
use crate::service::{Error, Listed};
use cryptoki_sys::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A set stops being shown to sessions this long before it ends (at most a tenth of its life), so that
/// an operation started on it still has time to reach the service.
const SHOW_MARGIN: Duration = Duration::from_secs(60);

/// When a set of short-lived credentials is replaced and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    /// A fresh set is fetched from then on.
    pub renew_at: Instant,
    /// Until then sessions that looked at this set keep seeing it; afterwards they see the newest.
    pub shown_until: Instant,
    /// The earliest notAfter of its certificates: its objects are gone then.
    pub ends: Instant,
}

impl Life {
    /// The life of a set fetched now whose first certificate ends at `not_after`: renewed `before` its
    /// end, but not before half of what was left at the fetch (an identity another process made may have
    /// little left).
    pub fn of(not_after: SystemTime, before: Duration) -> Life {
        let now = Instant::now();
        let left = not_after
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Life {
            renew_at: now + left.saturating_sub(before).max(left / 2),
            shown_until: now + left - SHOW_MARGIN.min(left / 10),
            ends: now + left,
        }
    }
}

/// A credential as the token presents it.
pub struct Credential {
    pub info: CredentialInfo,
    /// CKA_LABEL of its certificate and keys.
    pub label: String,
    pub key: KeyKind,
    /// The signing mechanisms it allows (CKA_ALLOWED_MECHANISMS of its private key).
    pub mechanisms: Vec<CK_MECHANISM_TYPE>,
    /// What authorizing it takes.
    pub need: Need,
    pub always_authenticate: bool,
    /// The public key every signature of the service is checked against (from the certificate).
    pub public_key: PublicKey,
}

impl Credential {
    pub fn id(&self) -> &str {
        &self.info.id
    }
}

pub struct TokenObject {
    pub handle: CK_OBJECT_HANDLE,
    pub object: Object,
    /// The credential the object stands for (`None`: a CA certificate).
    pub credential: Option<Arc<Credential>>,
}

impl TokenObject {
    /// The visibility rule: private objects only while the user is logged in.
    pub fn visible(&self, logged_in: bool) -> bool {
        logged_in || !self.object.is_private()
    }
}

/// The account's credentials and their objects.
pub struct Loaded {
    pub credentials: Vec<Arc<Credential>>,
    /// Sorted by handle.
    pub objects: Vec<TokenObject>,
    /// Union of the credentials' signing mechanisms, in first-seen order.
    pub mechanisms: Vec<CK_MECHANISM_TYPE>,
    /// Short-lived credentials only: when the set is replaced and ends.
    pub life: Option<Life>,
    /// How applications log in: the configured mode, or login-free when no credential needs a PIN or a
    /// code (implicit authorization), so that no application is asked for a PIN nobody needs.
    pub mode: TokenMode,
}

impl Loaded {
    /// Whether sessions may still be shown this set.
    pub fn shown(&self) -> bool {
        self.life.is_none_or(|l| Instant::now() < l.shown_until)
    }

    /// Whether its objects still exist.
    pub fn alive(&self) -> bool {
        self.life.is_none_or(|l| Instant::now() < l.ends)
    }

    pub fn object(&self, handle: CK_OBJECT_HANDLE) -> Option<&TokenObject> {
        self.objects
            .binary_search_by_key(&handle, |o| o.handle)
            .ok()
            .map(|i| &self.objects[i])
    }

    /// The object behind `handle` as a session sees it; CKR_OBJECT_HANDLE_INVALID for one it may not see.
    pub fn visible_object(
        &self,
        handle: CK_OBJECT_HANDLE,
        logged_in: bool,
    ) -> CkResult<&TokenObject> {
        self.object(handle)
            .filter(|o| o.visible(logged_in))
            .ok_or(CKR_OBJECT_HANDLE_INVALID)
    }

    /// C_FindObjectsInit's matches.
    pub fn find(&self, template: &[Attribute], logged_in: bool) -> Vec<CK_OBJECT_HANDLE> {
        self.objects
            .iter()
            .filter(|o| o.visible(logged_in) && o.object.matches(template))
            .map(|o| o.handle)
            .collect()
    }

    /// Key sizes (as `KeyKind::bits`) of the credentials that offer `mech`.
    pub fn key_bits(&self, mech: CK_MECHANISM_TYPE) -> Option<std::ops::RangeInclusive<u32>> {
        let bits = self
            .credentials
            .iter()
            .filter(|c| c.mechanisms.contains(&mech))
            .map(|c| c.key.bits());
        let (min, max) = bits.fold(None, |acc: Option<(u32, u32)>, b| {
            Some(acc.map_or((b, b), |(lo, hi)| (lo.min(b), hi.max(b))))
        })?;
        Some(min..=max)
    }
}

/// The fetched sets, shared; one fetch at a time.
#[derive(Default)]
pub struct Catalog {
    sets: Mutex<Sets>,
    /// Held across a fetch, so that concurrent first sessions wait for one fetch.
    gate: Mutex<()>,
}

#[derive(Default)]
struct Sets {
    /// The set new lookups see.
    current: Option<Arc<Loaded>>,
    /// Replaced sets whose objects still exist.
    older: Vec<Arc<Loaded>>,
}

impl Catalog {
    fn shown_current(&self) -> Option<Arc<Loaded>> {
        self.sets.lock().current.clone().filter(|l| l.shown())
    }

    /// The set new lookups see: fetched on first need, and again (in the caller's request) when the
    /// current one is no longer shown and no renewal replaced it in time.
    pub fn get_or_fetch(&self, fetch: impl FnOnce() -> CkResult<Loaded>) -> CkResult<Arc<Loaded>> {
        if let Some(l) = self.shown_current() {
            return Ok(l);
        }
        let _gate = self.gate.lock();
        if let Some(l) = self.shown_current() {
            return Ok(l);
        }
        let l = Arc::new(fetch()?);
        self.install(l.clone());
        Ok(l)
    }

    /// Replaces the current set by a fresh one if it is due for renewal (nothing when another caller
    /// renewed it meanwhile).
    pub fn renew(&self, fetch: impl FnOnce() -> CkResult<Loaded>) -> CkResult<()> {
        let due = |sets: &Sets| {
            sets.current
                .as_ref()
                .is_some_and(|c| c.life.is_some_and(|l| Instant::now() >= l.renew_at))
        };
        if !due(&self.sets.lock()) {
            return Ok(());
        }
        let _gate = self.gate.lock();
        if !due(&self.sets.lock()) {
            return Ok(());
        }
        let l = Arc::new(fetch()?);
        self.install(l);
        Ok(())
    }

    fn install(&self, fresh: Arc<Loaded>) {
        let mut sets = self.sets.lock();
        if let Some(old) = sets.current.replace(fresh) {
            sets.older.push(old);
        }
        sets.older.retain(|l| l.alive());
    }

    /// When the current set is due for renewal (`None`: nothing to renew, or nothing fetched yet).
    pub fn renew_at(&self) -> Option<Instant> {
        self.sets.lock().current.as_ref()?.life.map(|l| l.renew_at)
    }

    /// The set that holds the object `handle`, if its objects still exist.
    pub fn set_of(&self, handle: CK_OBJECT_HANDLE) -> Option<Arc<Loaded>> {
        let sets = self.sets.lock();
        sets.current
            .iter()
            .chain(sets.older.iter())
            .find(|l| l.alive() && l.object(handle).is_some())
            .cloned()
    }

    /// The current set, without fetching (whether or not it is still shown).
    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.sets.lock().current.clone()
    }
}

/// The answers of a listing, or the first transient failure among them, so that the listing is retried
/// as a whole.
fn retry_whole(mut all: Listed) -> Result<Listed, Error> {
    match all
        .iter()
        .position(|(_, r)| matches!(r, Err(e) if e.is_retryable()))
    {
        Some(i) => match all.swap_remove(i).1 {
            Err(e) => Err(e),
            Ok(_) => Ok(all),
        },
        None => Ok(all),
    }
}

/// Lists the account's credentials and builds their objects. A credential that cannot be used (disabled
/// key, unsupported key, unreadable certificate) is skipped with a warning; the others stay visible.
pub fn fetch(
    slot: CK_SLOT_ID,
    config: &TokenConfig,
    account: &Account,
    handles: &AtomicU64,
) -> CkResult<Loaded> {
    let next_handle = || handles.fetch_add(1, Ordering::Relaxed) as CK_OBJECT_HANDLE;
    let renewal = account.service()?.renewal();
    // Retried as a whole on transient failures of the list; a credential whose own answer is an error
    // is skipped with a log line, the others stay visible. Short-lived credentials may be created by
    // their request, so it is not retried as a read is.
    let listed = match renewal {
        None => account.read(Step::ListCredentials, |s, a| retry_whole(s.credentials(a)?))?,
        Some(_) => {
            let ids = account
                .call(|s, a| s.issue_credentials(a))
                .map_err(|e| e.into_rv(slot, Step::IssueCredentials))?;
            account.read(Step::ListCredentials, |s, a| {
                retry_whole(
                    ids.iter()
                        .map(|id| (id.clone(), s.credential_info(a, id)))
                        .collect(),
                )
            })?
        }
    };
    let mut not_after: Option<SystemTime> = None;
    let mut credentials = Vec::new();
    let mut objects = Vec::new();
    let mut mechanisms: Vec<CK_MECHANISM_TYPE> = Vec::new();
    let mut ca_seen: Vec<Vec<u8>> = Vec::new();
    for (id, info) in listed {
        let info = match info {
            Ok(i) => i,
            Err(e) => {
                log::warn!("slot {slot}: credential {id} skipped: it cannot be read: {e}");
                continue;
            }
        };
        if !info.key.status.eq_ignore_ascii_case("enabled") {
            log::warn!(
                "slot {slot}: credential {id} skipped: its key is {}",
                info.key.status
            );
            continue;
        }
        let key = info
            .certificates
            .first()
            .and_then(|der| object::key_kind_of_certificate(der).ok())
            .or_else(|| KeyKind::from_key_info(&info.key));
        let Some(key) = key else {
            log::warn!("slot {slot}: credential {id} skipped: unsupported key");
            continue;
        };
        let mechs = mechanism::mechanisms_for(&info.key, &key);
        let label = crate::naming::credential_label(&info);
        let need = Need::of(&info, config.otp_length);
        let always_authenticate = policy::always_authenticate(config, &info, &need);
        let ckaid = crate::naming::credential_ckaid(&id);
        let objs = match object::objects_for_credential(
            &info,
            &label,
            &ckaid,
            &mechs,
            always_authenticate,
        ) {
            Ok(o) => o,
            Err(e) => {
                log::warn!("slot {slot}: credential {id} skipped: {e}");
                continue;
            }
        };
        let Some(mut public_key) = PublicKey::from_spki(&objs.spki, &objs.key_kind) else {
            log::warn!("slot {slot}: credential {id} skipped: its public key cannot be read");
            continue;
        };
        if renewal.is_some() {
            match info
                .certificates
                .first()
                .and_then(|der| object::certificate_facts(der).ok())
            {
                Some(f) => not_after = Some(not_after.map_or(f.not_after, |n| n.min(f.not_after))),
                None => {
                    log::warn!(
                        "slot {slot}: credential {id} skipped: its certificate has no validity"
                    );
                    continue;
                }
            }
        }
        if let Some(openssl) = &config.openssl_path {
            public_key = public_key.with_openssl(openssl);
        }
        if mechs.is_empty() {
            log::info!(
                "slot {slot}: credential {id} is listed but cannot sign: the service offers no \
                 signature of a hash for its key"
            );
        }
        let credential = Arc::new(Credential {
            label,
            key: objs.key_kind,
            mechanisms: mechs.clone(),
            need,
            always_authenticate,
            public_key,
            info,
        });
        for o in [objs.certificate, objs.public_key, objs.private_key] {
            objects.push(TokenObject {
                handle: next_handle(),
                object: o,
                credential: Some(credential.clone()),
            });
        }
        for ca in objs.ca_certificates {
            let value = ca.value(CKA_VALUE).unwrap_or_default().to_vec();
            if ca_seen.contains(&value) {
                continue;
            }
            ca_seen.push(value);
            objects.push(TokenObject {
                handle: next_handle(),
                object: ca,
                credential: None,
            });
        }
        for m in &mechs {
            if !mechanisms.contains(m) {
                mechanisms.push(*m);
            }
        }
        credentials.push(credential);
    }
    let implicit = !credentials.is_empty()
        && credentials
            .iter()
            .all(|c: &Arc<Credential>| !c.need.pin && !c.need.otp);
    let mode = if implicit {
        if config.mode != TokenMode::LoginFree {
            log::info!(
                "slot {slot}: no credential needs a PIN or a code: the token needs no login"
            );
        }
        TokenMode::LoginFree
    } else {
        config.mode
    };
    for o in &mut objects {
        if o.object.class() == CKO_PRIVATE_KEY {
            o.object.set_private(mode.keys_private());
        }
    }
    log::info!(
        "slot {slot}: {} credential(s), {} object(s)",
        credentials.len(),
        objects.len()
    );
    let life = match (renewal, not_after) {
        (Some(r), Some(end)) => Some(Life::of(end, r.before_expiry)),
        _ => None,
    };
    if let Some(l) = &life {
        log::info!(
            "slot {slot}: the certificates end in {} s; renewal in {} s",
            l.ends.saturating_duration_since(Instant::now()).as_secs(),
            l.renew_at
                .saturating_duration_since(Instant::now())
                .as_secs()
        );
    }
    Ok(Loaded {
        credentials,
        objects,
        mechanisms,
        life,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_renewed_before_it_is_hidden_and_hidden_before_it_ends() {
        let end = SystemTime::now() + Duration::from_secs(600);
        let l = Life::of(end, Duration::from_secs(300));
        let now = Instant::now();
        let secs = |i: Instant| i.saturating_duration_since(now).as_secs_f64();
        assert!((secs(l.renew_at) - 300.0).abs() < 2.0, "{l:?}");
        assert!((secs(l.shown_until) - 540.0).abs() < 2.0, "{l:?}");
        assert!((secs(l.ends) - 600.0).abs() < 2.0, "{l:?}");
        // Twenty seconds left (a test lifetime, or an identity another process made): renewed at half.
        let l = Life::of(
            SystemTime::now() + Duration::from_secs(20),
            Duration::from_secs(300),
        );
        assert!((secs(l.renew_at) - 10.0).abs() < 1.0, "{l:?}");
        assert!((secs(l.shown_until) - 18.0).abs() < 1.0, "{l:?}");
        // Already expired: due at once, never shown.
        let l = Life::of(
            SystemTime::now() - Duration::from_secs(5),
            Duration::from_secs(300),
        );
        assert!(l.renew_at <= Instant::now() + Duration::from_millis(50));
        assert!(l.shown_until <= Instant::now() + Duration::from_millis(50));
    }
}
