//! One slot's token: the service client, the account session (access token), the credential cache with
//! its objects, the user's login state and the SAD cache.
//!
//! Locks here guard state only and are never held across a request or a prompt; the *gates*
//! (`load_gate`, `access_gate`, per-credential `auth_gate`) are held across one request on purpose, so
//! that concurrent callers wait for one fetch / one account login / one authorization instead of each
//! repeating it (an OTP can be used once). The `auth_gate` is also held while the user answers a prompt
//! for that credential: other signers of the same credential then use the batch the answer unlocks
//! instead of asking the user again; everything else keeps working.

use crate::config::{OtpChannel, TokenConfig, TokenMode};
use crate::error::{self, CkResult, Step};
use crate::mechanism::{self, KeyKind};
use crate::object::{self, Object};
use cryptoki_sys::*;
use parking_lot::Mutex;
use remote_client::{CredentialInfo, CscClient, Reason, Scal, Secret};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A credential as the token presents it.
pub struct Credential {
    pub info: CredentialInfo,
    /// CKA_LABEL of its certificate and keys.
    pub label: String,
    pub key: KeyKind,
    /// The signing mechanisms it allows (CKA_ALLOWED_MECHANISMS of its private key).
    pub mechanisms: Vec<CK_MECHANISM_TYPE>,
    pub always_authenticate: bool,
}

pub struct TokenObject {
    pub handle: CK_OBJECT_HANDLE,
    pub object: Object,
    /// Index into `Loaded::credentials` of the credential the object stands for (`None`: a CA certificate).
    pub credential: Option<usize>,
}

/// What the service told us about the account's credentials, fetched once, read without the network.
pub struct Loaded {
    pub credentials: Vec<Credential>,
    /// Sorted by handle.
    pub objects: Vec<TokenObject>,
    /// Union of the credentials' signing mechanisms, in first-seen order.
    pub mechanisms: Vec<CK_MECHANISM_TYPE>,
}

impl Loaded {
    pub fn object(&self, handle: CK_OBJECT_HANDLE) -> Option<&TokenObject> {
        self.objects
            .binary_search_by_key(&handle, |o| o.handle)
            .ok()
            .map(|i| &self.objects[i])
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

/// The user's login (shared by every session of the token, as PKCS#11 defines it).
#[derive(Default)]
pub struct LoginState {
    /// Changes at every login and logout, so that operations and SADs of an earlier login are recognised.
    pub epoch: u64,
    pub user: Option<UserLogin>,
}

pub struct UserLogin {
    /// What C_Login(CKU_USER) received: the PIN, possibly followed by an OTP (see auth.rs). Once the OTP
    /// part has been used it is cut off, leaving the PIN.
    pub passcode: Secret,
    pub otp_spent: bool,
}

struct CachedSad {
    sad: Secret,
    remaining: u32,
    expires: Instant,
    epoch: u64,
}

/// Why a request failed: already mapped and logged, or a service error for the caller to decide on.
pub enum CallError {
    Ck(CK_RV),
    Remote(remote_client::Error),
}

impl CallError {
    pub fn into_rv(self, slot: CK_SLOT_ID, step: Step) -> CK_RV {
        match self {
            CallError::Ck(rv) => rv,
            CallError::Remote(e) => error::from_remote(slot, step, &e),
        }
    }
}

pub struct Token {
    pub slot_id: CK_SLOT_ID,
    pub config: TokenConfig,
    /// CK_TOKEN_INFO.serialNumber: 16 hex digits derived from the service and account.
    pub serial: String,
    handles: Arc<AtomicU64>,
    client: Mutex<Option<Arc<CscClient>>>,
    access: Mutex<Option<Secret>>,
    access_gate: Mutex<()>,
    loaded: Mutex<Option<Arc<Loaded>>>,
    load_gate: Mutex<()>,
    login: Mutex<LoginState>,
    sads: Mutex<HashMap<usize, CachedSad>>,
    auth_gates: Mutex<HashMap<usize, Arc<Mutex<()>>>>,
    /// Authenticator steps used by the totp-file channel.
    pub totp_steps: crate::totp::UsedSteps,
}

const READ_TRIES: u32 = 3;

impl Token {
    pub fn new(slot_id: CK_SLOT_ID, config: TokenConfig, handles: Arc<AtomicU64>) -> Token {
        let service = config
            .url
            .clone()
            .or_else(|| config.url_file.as_ref().map(|p| p.display().to_string()))
            .unwrap_or_default();
        let mut h = Sha256::new();
        h.update(service.as_bytes());
        h.update([0]);
        h.update(config.account.as_bytes());
        let serial = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        Token {
            slot_id,
            config,
            serial,
            handles,
            client: Mutex::new(None),
            access: Mutex::new(None),
            access_gate: Mutex::new(()),
            loaded: Mutex::new(None),
            load_gate: Mutex::new(()),
            login: Mutex::new(LoginState::default()),
            sads: Mutex::new(HashMap::new()),
            auth_gates: Mutex::new(HashMap::new()),
            totp_steps: Default::default(),
        }
    }

    // ----- login state -----

    pub fn is_logged_in(&self) -> bool {
        self.login.lock().user.is_some()
    }

    /// The epoch signing operations and SADs belong to: the login's, or on a login-free token the
    /// current one even without a login (its PIN is collected at signing time).
    pub fn signing_epoch(&self) -> Option<u64> {
        let l = self.login.lock();
        (l.user.is_some() || self.config.mode == TokenMode::LoginFree).then_some(l.epoch)
    }

    pub fn login_user(&self, passcode: Secret) -> CkResult<()> {
        let mut l = self.login.lock();
        if l.user.is_some() {
            return Err(CKR_USER_ALREADY_LOGGED_IN);
        }
        l.epoch += 1;
        l.user = Some(UserLogin {
            passcode,
            otp_spent: false,
        });
        Ok(())
    }

    /// Forgets the PIN, any unused OTP and every cached SAD (zeroized on drop). Nothing remote is revoked.
    pub fn logout(&self) {
        {
            let mut l = self.login.lock();
            l.epoch += 1;
            l.user = None;
        }
        self.sads.lock().clear();
    }

    pub fn with_login<R>(&self, f: impl FnOnce(&mut LoginState) -> R) -> R {
        f(&mut self.login.lock())
    }

    // ----- SAD cache (SCAL 1 batches) -----
    //
    // With a `cloudtoken agent` (agent.rs) the agent holds what is left of a batch instead of this
    // process, so that the user's next processes sign without a new code; never both, or the
    // service's signature count would be spent twice.

    /// Takes one signature's worth of a cached SAD for the credential, if one is left and fresh: this
    /// process's, else the agent's.
    pub fn take_sad_use(&self, cred: usize, epoch: u64) -> Option<Secret> {
        self.take_own_sad_use(cred, epoch).or_else(|| {
            let (agent, id) = self.agent_for(cred)?;
            agent.take_one(&id).map(|(sad, _)| sad)
        })
    }

    fn take_own_sad_use(&self, cred: usize, epoch: u64) -> Option<Secret> {
        let mut sads = self.sads.lock();
        let entry = sads.get_mut(&cred)?;
        if entry.epoch != epoch || entry.remaining == 0 || Instant::now() >= entry.expires {
            sads.remove(&cred);
            return None;
        }
        entry.remaining -= 1;
        let sad = entry.sad.clone();
        if entry.remaining == 0 {
            sads.remove(&cred);
        }
        Some(sad)
    }

    pub fn has_usable_sad(&self, cred: usize, epoch: u64) -> bool {
        self.sads
            .lock()
            .get(&cred)
            .is_some_and(|e| e.epoch == epoch && e.remaining > 0 && Instant::now() < e.expires)
            || self
                .agent_for(cred)
                .is_some_and(|(agent, id)| agent.has_signature(&id))
    }

    /// Keeps a SAD for `remaining` more signatures (in the agent if there is one), unless the user
    /// logged out meanwhile.
    pub fn store_sad(
        &self,
        cred: usize,
        sad: Secret,
        remaining: u32,
        expires_in: Duration,
        epoch: u64,
    ) {
        if remaining == 0 || self.signing_epoch() != Some(epoch) {
            return;
        }
        // Stop using it a little before the service does.
        let margin = Duration::from_secs(2).min(expires_in / 4);
        let lifetime = expires_in.saturating_sub(margin);
        if let Some((agent, id)) = self.agent_for(cred) {
            if agent.put(&id, &sad, remaining, lifetime) {
                return;
            }
        }
        self.sads.lock().insert(
            cred,
            CachedSad {
                sad,
                remaining,
                expires: Instant::now() + lifetime,
                epoch,
            },
        );
    }

    pub fn drop_sad(&self, cred: usize) {
        self.sads.lock().remove(&cred);
        if let Some((agent, id)) = self.agent_for(cred) {
            agent.forget(&id);
        }
    }

    /// The agent that shares this token's batch authorizations, with the credential's ID; never for
    /// SCAL 2 (those SADs are bound to one hash).
    fn agent_for(&self, cred: usize) -> Option<(crate::agent::Agent, String)> {
        let loaded = self.loaded.lock().clone()?;
        let c = loaded.credentials.get(cred)?;
        if c.info.scal != Scal::One {
            return None;
        }
        Some((
            crate::agent::Agent::for_token(&self.config)?,
            c.info.id.clone(),
        ))
    }

    /// Serialises authorizations of one credential: a second signer waits and then uses the first one's
    /// batch instead of spending another OTP.
    pub fn auth_gate(&self, cred: usize) -> Arc<Mutex<()>> {
        self.auth_gates.lock().entry(cred).or_default().clone()
    }

    // ----- credentials and objects -----

    /// The credentials and objects, fetched from the service on first need.
    pub fn loaded(&self) -> CkResult<Arc<Loaded>> {
        if let Some(l) = self.loaded.lock().clone() {
            return Ok(l);
        }
        let _gate = self.load_gate.lock();
        if let Some(l) = self.loaded.lock().clone() {
            return Ok(l);
        }
        let l = Arc::new(self.fetch()?);
        *self.loaded.lock() = Some(l.clone());
        Ok(l)
    }

    fn fetch(&self) -> CkResult<Loaded> {
        let ids = self.read(Step::ListCredentials, |c, t| c.list_credentials(t))?;
        let mut credentials = Vec::new();
        let mut objects = Vec::new();
        let mut mechanisms: Vec<CK_MECHANISM_TYPE> = Vec::new();
        let mut ca_seen: Vec<Vec<u8>> = Vec::new();
        for id in ids {
            let info = self.read(Step::CredentialInfo, |c, t| c.credential_info(t, &id))?;
            if !info.key.status.eq_ignore_ascii_case("enabled") {
                log::warn!(
                    "slot {}: credential {id} skipped: its key is {}",
                    self.slot_id,
                    info.key.status
                );
                continue;
            }
            let key = match info.certificates.first() {
                Some(der) => object::key_kind_of_certificate(der).ok(),
                None => None,
            }
            .or_else(|| KeyKind::from_key_info(&info.key));
            let Some(key) = key else {
                log::warn!(
                    "slot {}: credential {id} skipped: unsupported key",
                    self.slot_id
                );
                continue;
            };
            let mechs = mechanism::mechanisms_for(&info.key, &key);
            let label = crate::naming::credential_label(&info);
            let always_authenticate = self.config.always_authenticate
                || (info.scal == Scal::Two && self.needs_context_login(&info));
            let ckaid = crate::naming::credential_ckaid(&id);
            let mut objs = match object::objects_for_credential(
                &info,
                &label,
                &ckaid,
                &mechs,
                always_authenticate,
            ) {
                Ok(o) => o,
                Err(e) => {
                    log::warn!("slot {}: credential {id} skipped: {e}", self.slot_id);
                    continue;
                }
            };
            if self.config.mode == TokenMode::LoginFree {
                // Applications that never log in (LibreOffice) must find the key to offer it.
                objs.private_key.set_private(false);
            }
            let index = credentials.len();
            for o in [objs.certificate, objs.public_key, objs.private_key] {
                objects.push(TokenObject {
                    handle: self.next_handle(),
                    object: o,
                    credential: Some(index),
                });
            }
            for ca in objs.ca_certificates {
                let value = ca.value(CKA_VALUE).unwrap_or_default().to_vec();
                if ca_seen.contains(&value) {
                    continue;
                }
                ca_seen.push(value);
                objects.push(TokenObject {
                    handle: self.next_handle(),
                    object: ca,
                    credential: None,
                });
            }
            for m in &mechs {
                if !mechanisms.contains(m) {
                    mechanisms.push(*m);
                }
            }
            credentials.push(Credential {
                info,
                label,
                key: objs.key_kind,
                mechanisms: mechs,
                always_authenticate,
            });
        }
        log::info!(
            "slot {}: {} credential(s), {} object(s)",
            self.slot_id,
            credentials.len(),
            objects.len()
        );
        Ok(Loaded {
            credentials,
            objects,
            mechanisms,
        })
    }

    /// Whether a SCAL 2 key must ask the application for a context login per signature: only when the
    /// credential's OTP can come from nowhere else (no prompt, no applicable TOTP secret), so that the
    /// default works for applications that never make a context login.
    fn needs_context_login(&self, info: &CredentialInfo) -> bool {
        let Some(otp) = &info.auth.otp else {
            // Nothing to collect per signature (an approval credential answers out of band).
            return false;
        };
        let c = &self.config;
        let by_file =
            otp.otp_type == remote_client::OtpType::Offline && self.totp_applies(&info.id);
        c.has_channel(OtpChannel::Context)
            && !c.has_channel(OtpChannel::Prompt)
            && !(by_file && c.has_channel(OtpChannel::TotpFile))
    }

    /// Whether `totp_secret_file` is the secret of this credential.
    pub fn totp_applies(&self, credential_id: &str) -> bool {
        self.config.totp_secret_file.is_some()
            && self
                .config
                .totp_credential
                .as_deref()
                .is_none_or(|c| c == credential_id)
    }

    fn next_handle(&self) -> CK_OBJECT_HANDLE {
        self.handles.fetch_add(1, Ordering::Relaxed) as CK_OBJECT_HANDLE
    }

    // ----- the service -----

    fn client(&self) -> CkResult<Arc<CscClient>> {
        let mut slot = self.client.lock();
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let cc = self
            .config
            .client_config()
            .map_err(|e| error::logged(CKR_DEVICE_ERROR, format!("slot {}: {e}", self.slot_id)))?;
        let client = Arc::new(
            CscClient::new(&cc).map_err(|e| error::from_remote(self.slot_id, Step::Connect, &e))?,
        );
        *slot = Some(client.clone());
        Ok(client)
    }

    /// The account's access token: cached, else obtained with the refresh token or the password file.
    fn access_token(&self, client: &CscClient) -> CkResult<Secret> {
        if let Some(t) = self.access.lock().clone() {
            return Ok(t);
        }
        let _gate = self.access_gate.lock();
        if let Some(t) = self.access.lock().clone() {
            return Ok(t);
        }
        let t = &self.config;
        let slot = self.slot_id;
        let secret_err = |e: String| error::logged(CKR_DEVICE_ERROR, format!("slot {slot}: {e}"));
        let tokens = if let Some(path) = &t.refresh_token_file {
            let refresh = crate::config::read_secret_file(path).map_err(secret_err)?;
            let tokens = retry_reads(|| client.refresh(&refresh))
                .map_err(|e| error::from_remote(slot, Step::Login, &e))?;
            if let Some(new) = &tokens.refresh_token {
                if new.expose() != refresh.expose() {
                    // The service rotated the refresh token: the old one may no longer work.
                    if let Err(e) = crate::config::write_secret_file(path, new) {
                        log::error!("slot {slot}: cannot store the rotated refresh token: {e}");
                    }
                }
            }
            tokens
        } else if let Some(path) = &t.password_file {
            let password = crate::config::read_secret_file(path).map_err(secret_err)?;
            retry_reads(|| client.login(&t.account, &password, false))
                .map_err(|e| error::from_remote(slot, Step::Login, &e))?
        } else {
            return Err(error::logged(
                CKR_DEVICE_ERROR,
                format!("slot {slot}: no account secret configured"),
            ));
        };
        log::debug!("slot {slot}: logged in to the service account");
        *self.access.lock() = Some(tokens.access_token.clone());
        Ok(tokens.access_token)
    }

    /// One request with the account's access token, renewing the token once if the service says it
    /// expired. The service error is returned unmapped, for callers that act on it.
    pub fn call_raw<T>(
        &self,
        f: impl Fn(&CscClient, &Secret) -> remote_client::Result<T>,
    ) -> Result<T, CallError> {
        let client = self.client().map_err(CallError::Ck)?;
        let token = self.access_token(&client).map_err(CallError::Ck)?;
        match f(&client, &token) {
            Err(e) if e.reason() == Reason::TokenExpired => {
                log::info!(
                    "slot {}: access token expired; logging in again",
                    self.slot_id
                );
                {
                    let mut a = self.access.lock();
                    if a.as_ref().is_some_and(|t| t.expose() == token.expose()) {
                        *a = None;
                    }
                }
                let token = self.access_token(&client).map_err(CallError::Ck)?;
                f(&client, &token).map_err(CallError::Remote)
            }
            r => r.map_err(CallError::Remote),
        }
    }

    pub fn call<T>(
        &self,
        step: Step,
        f: impl Fn(&CscClient, &Secret) -> remote_client::Result<T>,
    ) -> CkResult<T> {
        self.call_raw(f).map_err(|e| e.into_rv(self.slot_id, step))
    }

    /// A request that changes nothing, retried with back-off on transient failures.
    pub fn read<T>(
        &self,
        step: Step,
        f: impl Fn(&CscClient, &Secret) -> remote_client::Result<T>,
    ) -> CkResult<T> {
        self.call(step, |c, t| retry_reads(|| f(c, t)))
    }
}

fn retry_reads<T>(f: impl Fn() -> remote_client::Result<T>) -> remote_client::Result<T> {
    let mut delay = Duration::from_millis(200);
    let mut tries = 1;
    loop {
        match f() {
            Err(e) if e.is_retryable() && tries < READ_TRIES => {
                log::warn!("retrying after a transient failure: {e}");
                std::thread::sleep(delay);
                delay *= 2;
                tries += 1;
            }
            r => return r,
        }
    }
}
