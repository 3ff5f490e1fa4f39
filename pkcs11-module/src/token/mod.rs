//! One slot's token: its configuration and serial number, and the parts it is made of — the service
//! account (account.rs), the credential model (credentials.rs), the user's login (login.rs), and the
//! batch store, renewals, TOTP steps and signing lanes the authorization and signing steps keep per
//! token.
//!
//! Calls its parts; owns no policy of its own.

pub mod account;
pub mod credentials;
pub mod login;

use crate::auth::store::SadStore;
use crate::config::{TokenConfig, TokenMode};
use crate::error::{self, CkResult};
use account::{Account, Connect};
use credentials::{Catalog, Loaded};
use cryptoki_sys::*;
use login::Login;
use sha2::{Digest, Sha256};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

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
}

/// 16 hex digits from the service's configured address and the account.
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
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

impl Token {
    /// A token whose service is the one its configuration names.
    pub fn new(slot_id: CK_SLOT_ID, config: TokenConfig, handles: Arc<AtomicU64>) -> Token {
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
    ) -> Token {
        let budget = std::time::Duration::from_millis(config.request_timeout_ms);
        Token {
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
        }
    }

    /// The credentials and objects, fetched from the service on first need.
    pub fn loaded(&self) -> CkResult<Arc<Loaded>> {
        let loaded = self.catalog.get_or_fetch(|| {
            credentials::fetch(self.slot_id, &self.config, &self.account, &self.handles)
        })?;
        if loaded.mode.signs_without_login() {
            self.login.allow_signing_without_login();
        }
        Ok(loaded)
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
        if cred.info.scal != crate::service::Scal::One {
            return None;
        }
        crate::agent::Agent::for_token(&self.config, &self.account.address()?)
    }
}
