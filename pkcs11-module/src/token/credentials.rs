//! The credential model of one token: what the service says about the account's credentials, fetched
//! once, turned into PKCS#11 objects with stable handles, and read without the network afterwards; and the
//! visibility rule (private objects only for a logged-in user).
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
use cryptoki_sys::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// How applications log in: the configured mode, or login-free when no credential needs a PIN or a
    /// code (implicit authorization), so that no application is asked for a PIN nobody needs.
    pub mode: TokenMode,
}

impl Loaded {
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

/// The fetched credentials, shared; one fetch at a time.
#[derive(Default)]
pub struct Catalog {
    loaded: Mutex<Option<Arc<Loaded>>>,
    /// Held across the fetch, so that concurrent first sessions wait for one fetch.
    gate: Mutex<()>,
}

impl Catalog {
    pub fn get_or_fetch(&self, fetch: impl FnOnce() -> CkResult<Loaded>) -> CkResult<Arc<Loaded>> {
        if let Some(l) = self.loaded.lock().clone() {
            return Ok(l);
        }
        let _gate = self.gate.lock();
        if let Some(l) = self.loaded.lock().clone() {
            return Ok(l);
        }
        let l = Arc::new(fetch()?);
        *self.loaded.lock() = Some(l.clone());
        Ok(l)
    }

    /// What has been fetched, without fetching.
    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.loaded.lock().clone()
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
    // Retried as a whole on transient failures of the list; a credential whose own answer is an error
    // is skipped with a log line, the others stay visible.
    let listed = account.read(Step::ListCredentials, |s, a| {
        let mut all = s.credentials(a)?;
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
    })?;
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
    Ok(Loaded {
        credentials,
        objects,
        mechanisms,
        mode,
    })
}
