//! One slot's token: its configuration and serial number, and the parts it is made of — the service
//! account (account.rs), the credential model (credentials.rs), the renewal of short-lived credentials
//! (renewer.rs), the user's login (login.rs), and the batch store, renewals, TOTP steps and signing
//! lanes the authorization and signing steps keep per token.
//!
//! Calls its parts; owns no policy of its own.

pub mod account;
pub mod credentials;
pub mod login;
mod renewer;
pub use renewer::reap;

use crate::auth::store::SadStore;
use crate::config::{TokenConfig, TokenMode};
use crate::error::{self, CkResult};
use account::{Account, Connect};
use credentials::{Catalog, Loaded};
use cryptoki_sys::*;
use login::Login;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

pub use credentials::Credential;

pub struct Token {
    pub slot_id: CK_SLOT_ID,
    pub config: TokenConfig,
    /// CK_TOKEN_INFO.serialNumber: 16 hex digits derived from the service and account.
    pub serial: String,
    pub account: Account,
    pub login: Login,
    /// What is left of batch authorizations (auth/store.rs).
    pub sads: SadStore,
    /// Background renewals of those batches (auth/renew.rs).
    pub renewals: crate::auth::renew::Renewals,
    /// Signatures waiting to travel together (operation/coalesce.rs).
    pub lanes: crate::operation::coalesce::Lanes,
    /// Authenticator steps used by the totp-file channel.
    pub totp_steps: crate::totp::UsedSteps,
    catalog: Catalog,
    /// Object handles, shared by every token of the module so that no two objects share one.
    handles: Arc<AtomicU64>,
    /// Sessions applications have open with the token: short-lived credentials are renewed in the
    /// background only while there is one.
    sessions: AtomicUsize,
    renewer: renewer::Renewer,
    me: Weak<Token>,
}

/// 16 hex digits from the service's configured address and the account (GlobalSign DSS: the API key
/// and the identity's subject).
fn serial(config: &TokenConfig) -> String {
    let service = config
        .url
        .clone()
        .or_else(|| config.api_base.clone())
        .or_else(|| config.url_file.as_ref().map(|p| p.display().to_string()))
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(service.as_bytes());
    h.update([0]);
    h.update(config.account.as_bytes());
    if let Some(key) = &config.api_key {
        h.update([0]);
        h.update(key.as_bytes());
        h.update(serde_json::to_vec(&config.subject_dn).unwrap_or_default());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

impl Token {
    /// A token whose service is the one its configuration names.
    pub fn new(slot_id: CK_SLOT_ID, config: TokenConfig, handles: Arc<AtomicU64>) -> Arc<Token> {
        let for_service = config.clone();
        let connect: Connect = Box::new(move || {
            crate::service::connect(&for_service)
                .map_err(|e| error::logged(CKR_DEVICE_ERROR, format!("slot {slot_id}: {e}")))
        });
        Token::with_service(slot_id, config, handles, connect)
    }

    /// A token over any service (unit tests give the fake one).
    pub fn with_service(
        slot_id: CK_SLOT_ID,
        config: TokenConfig,
        handles: Arc<AtomicU64>,
        connect: Connect,
    ) -> Arc<Token> {
        let budget = std::time::Duration::from_millis(config.request_timeout_ms);
        Arc::new_cyclic(|me| Token {
            slot_id,
            serial: serial(&config),
            login: Login::new(config.mode),
            config,
            account: Account::new(slot_id, budget, connect),
            sads: SadStore::default(),
            renewals: Default::default(),
            lanes: Default::default(),
            totp_steps: Default::default(),
            catalog: Catalog::default(),
            handles,
            sessions: AtomicUsize::new(0),
            renewer: renewer::Renewer::default(),
            me: me.clone(),
        })
    }

    fn fetch(&self) -> CkResult<Loaded> {
        credentials::fetch(self.slot_id, &self.config, &self.account, &self.handles)
    }

    /// The credentials and objects new lookups see, fetched from the service on first need (and again
    /// when short-lived ones were not renewed in time); starts the renewal of short-lived ones.
    pub fn loaded(&self) -> CkResult<Arc<Loaded>> {
        let l = self.catalog.get_or_fetch(|| self.fetch())?;
        if l.mode.signs_without_login() {
            self.login.allow_signing_without_login();
        }
        if l.life.is_some() {
            self.renewer.start(self.me.clone());
        }
        Ok(l)
    }

    /// The set that holds object `handle`, whichever renewal it belongs to, while its objects exist.
    pub fn set_of(&self, handle: CK_OBJECT_HANDLE) -> Option<Arc<Loaded>> {
        self.catalog.set_of(handle)
    }

    /// Replaces short-lived credentials that are due (the renewer's work; also safe to call anywhere
    /// off the signing path).
    fn renew(&self) -> CkResult<()> {
        self.catalog.renew(|| self.fetch())
    }

    /// Ends the token's background work at C_Finalize: the renewal of short-lived credentials
    /// (renewer.rs) and of batch authorizations (auth/renew.rs), waiting up to `wait` for each. False
    /// when one is still running then.
    pub fn stop_background(&self, wait: std::time::Duration) -> bool {
        let renewer = self.renewer.stop(wait);
        self.renewals.wait(wait, true) && renewer
    }

    /// An application opened (`true`) or closed a session with the token.
    pub fn session_opened(&self, opened: bool) {
        if opened {
            self.sessions.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = self
                .sessions
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    fn in_use(&self) -> bool {
        self.sessions.load(Ordering::Relaxed) > 0
    }

    /// How applications log in: what the credentials need once they are loaded (the first session),
    /// before that the configured mode. Never a request: C_GetTokenInfo is called by every program that
    /// enumerates tokens (p11-kit, GnuTLS), and must not wait for the service.
    pub fn mode(&self) -> TokenMode {
        self.catalog.current().map_or(self.config.mode, |l| l.mode)
    }

    pub fn is_logged_in(&self) -> bool {
        self.login.is_logged_in()
    }

    /// Ends the login and forgets this process's batches (zeroized on drop). Nothing remote is revoked.
    pub fn logout(&self) {
        self.login.logout();
        self.sads.clear();
    }

    /// The agent that shares this token's batch authorizations of `cred`, if one is configured; never for
    /// SCAL 2 (those SADs are bound to one hash).
    pub fn agent_for(&self, cred: &Credential) -> Option<crate::agent::Agent> {
        // GlobalSign DSS has no SADs to share: the account authorizes every signature.
        if cred.info.scal != crate::service::Scal::One
            || self.config.protocol != crate::config::Protocol::Csc
        {
            return None;
        }
        crate::agent::Agent::for_token(&self.config, &self.account.address()?)
    }
}
