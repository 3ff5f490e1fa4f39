//! The signing service itself, independent of HTTP and of the API version. This module holds the
//! service's state (database, vault, settings, the credentials, the per-user locks), the audit helper
//! every operation ends with, and the credential lookups; the operations live in the submodules:
//! `accounts` (login, tokens), `authorization` (second factors, lockouts, SADs), `signing`
//! (signHash), `approvals` (out-of-band approval). The HTTP layer (`api`) maps v1/v2 JSON onto these
//! calls. Every call blocks (SQLite, Argon2, the key store): run them off the async executor.

use crate::audit::{self, Event};
use crate::clock::Clock;
use crate::db::{self, Db, Durability};
use crate::error::{CscError, CscResult};
use crate::files::StateDir;
use crate::keys::Keys;
use crate::model::{KeyKind, OtpKind};
use crate::otp::Outbox;
use crate::pki::CertInfo;
use crate::sad::SadError;
use crate::sessions::Sessions;
use crate::vault::Vault;
use hsm_store::Store;
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Settings {
    /// Seconds a SAD stays valid, unless its credential has a lifetime of its own ...
    pub sad_lifetime: i64,
    /// ... or this says one, by credential ID (`serve --credential-sad-lifetime ID=SECONDS`).
    pub credential_sad_lifetimes: HashMap<String, i64>,
    pub access_token_lifetime: i64,
    /// Consecutive failures (password, PIN, OTP) that lock.
    pub max_attempts: u32,
    /// Seconds the user has to approve a request of an approval credential; an approved request's SAD
    /// can be collected for as long again.
    pub approval_timeout: i64,
    /// The ways of signing in that are accepted (`serve --auth`).
    pub accepted: crate::access::Accepted,
}

/// A credential as `credentials/info` shows it. Immutable while the service runs; the mutable state
/// (counters, TOTP step, SMS code) stays in the database.
pub struct Credential {
    pub id: String,
    pub user: String,
    pub label: String,
    pub key: KeyKind,
    pub otp: OtpKind,
    pub scal: u8,
    pub multisign: u32,
    pub cert_der: Vec<u8>,
    pub cert: CertInfo,
    /// The label of the credential's key in the HSM.
    pub key_label: String,
    /// Seconds its SADs stay valid, when not the service's default.
    pub sad_lifetime: Option<i64>,
}

/// The authenticated user of a request.
pub struct Caller {
    pub user: String,
}

pub struct Service {
    db: Db,
    vault: Vault,
    /// The credentials' keys, in the HSM.
    keys: Keys,
    settings: Settings,
    clock: Clock,
    credentials: Vec<Credential>,
    ca_der: Vec<u8>,
    /// Held across "read counters, verify, update counters" so that parallel guesses cannot outrun a
    /// lockout. One per user: the PIN is per user, and OTP state belongs to the user's credentials.
    user_locks: HashMap<String, Mutex<()>>,
    outbox: Outbox,
    /// Approval page logins.
    sessions: Sessions,
    /// Authorization requests between `oauth2/authorize` and the user's decision, and the codes issued.
    oauth2: crate::oauth2::Pending,
    /// `https://HOST:PORT` once the listener is bound: the OAuth 2.0 base `info` names.
    public_url: std::sync::OnceLock<String>,
}

pub const MAX_DESCRIPTION: usize = 500;

impl Service {
    /// The service of a state folder, with its keys in `hsm` (the token `hsm.toml` names).
    pub fn load(
        state: &StateDir,
        hsm: Arc<Store>,
        durability: Durability,
        settings: Settings,
    ) -> Result<Service, String> {
        let vault = Vault::load(&state.master_key()).map_err(|e| e.to_string())?;
        let db = Db::open_with(&state.database(), durability)?;
        Service::new(
            db,
            vault,
            hsm,
            settings,
            Clock::system(),
            Outbox::new(state.sms_outbox()),
        )
        .map_err(|e| format!("loading {}: {e}", state.database().display()))
    }

    pub fn new(
        db: Db,
        vault: Vault,
        hsm: Arc<Store>,
        settings: Settings,
        clock: Clock,
        outbox: Outbox,
    ) -> Result<Service, String> {
        let (credentials, users, ca_der) = {
            let conn = db.lock();
            let credentials = load_credentials(&conn)?;
            let mut stmt = conn
                .prepare("SELECT name FROM users")
                .map_err(|e| e.to_string())?;
            let users: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| e.to_string())?;
            let ca_der = db::get_meta(&conn, "ca_cert")
                .map_err(|e| e.to_string())?
                .ok_or("no CA certificate")?;
            (credentials, users, ca_der)
        };
        let keys = Keys::load(
            hsm,
            credentials
                .iter()
                .map(|c| (c.id.as_str(), c.key_label.as_str(), c.key)),
        )
        .map_err(|e| e.to_string())?;
        if let Some(id) = settings
            .credential_sad_lifetimes
            .keys()
            .find(|id| !credentials.iter().any(|c| &c.id == *id))
        {
            return Err(format!(
                "a SAD lifetime is set for {id}, which is no credential"
            ));
        }
        for c in &credentials {
            if keys.spki_der(&c.id) != Some(c.cert.spki_der.as_slice()) {
                return Err(format!(
                    "{}: the HSM key {:?} is not the key of the certificate",
                    c.id, c.key_label
                ));
            }
        }
        Ok(Service {
            db,
            vault,
            keys,
            settings,
            clock,
            credentials,
            ca_der,
            user_locks: users.into_iter().map(|u| (u, Mutex::new(()))).collect(),
            outbox,
            sessions: Sessions::default(),
            oauth2: crate::oauth2::Pending::default(),
            public_url: std::sync::OnceLock::new(),
        })
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Seconds a new SAD of `credential` stays valid.
    fn sad_lifetime(&self, credential: &str) -> i64 {
        let own = self.credentials.iter().find(|c| c.id == credential);
        self.settings
            .credential_sad_lifetimes
            .get(credential)
            .copied()
            .or(own.and_then(|c| c.sad_lifetime))
            .unwrap_or(self.settings.sad_lifetime)
    }

    fn user_lock(&self, user: &str) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.user_locks
            .get(user)
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Appends the audit entry for an operation's outcome. The operation's answer is released only
    /// once it is recorded.
    fn audited<T>(&self, ev: Event<'_>, result: CscResult<T>) -> CscResult<T> {
        self.audited_as(ev, result, |_| "ok".to_owned())
    }

    /// `audited`, with the outcome of a success described by `ok`.
    fn audited_as<T>(
        &self,
        ev: Event<'_>,
        result: CscResult<T>,
        ok: impl FnOnce(&T) -> String,
    ) -> CscResult<T> {
        let outcome = match &result {
            Ok(v) => ok(v),
            Err(e) => e.outcome(),
        };
        let now = self.now();
        let ev = Event {
            outcome: &outcome,
            ..ev
        };
        // Durable before the answer goes out, with every change the operation made before it.
        self.db.write(|conn| audit::append(conn, now, &ev))?;
        result
    }

    // ---- credentials ----

    /// The caller's credentials, in table order.
    pub fn credentials_of<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> impl Iterator<Item = &'a Credential> + 'a {
        self.credentials
            .iter()
            .filter(move |c| c.user == caller.user)
    }

    /// One of the caller's credentials. Unknown and foreign IDs get the same answer.
    pub fn credential(&self, caller: &Caller, id: &str) -> CscResult<&Credential> {
        self.credentials
            .iter()
            .find(|c| c.id == id && c.user == caller.user)
            .ok_or_else(CscError::invalid_credential)
    }

    /// For the audit trail: the credential ID when it is the caller's (other IDs are not recorded).
    fn own_credential_id(&self, caller: &Caller, id: &str) -> Option<&str> {
        self.credential(caller, id).ok().map(|c| c.id.as_str())
    }

    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    pub fn accepted(&self) -> &crate::access::Accepted {
        &self.settings.accepted
    }

    /// Set once by `serve` when the listener is bound.
    pub fn set_public_url(&self, url: &str) {
        let _ = self.public_url.set(url.trim_end_matches('/').to_owned());
    }

    /// The OAuth 2.0 server's base for `info.oauth2`, when OAuth 2.0 is accepted.
    pub fn oauth2_base(&self) -> Option<&str> {
        self.settings
            .accepted
            .oauth2
            .then(|| self.public_url.get().map(String::as_str))
            .flatten()
    }
}

fn sad_error(e: SadError) -> CscError {
    match e {
        SadError::Expired => CscError::sad_expired(),
        SadError::TooFew => CscError::sad_too_few(),
        SadError::NotAuthorized => CscError::hash_not_authorized(),
    }
}

fn check_description(d: Option<&str>) -> CscResult<()> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => {
            Err(CscError::invalid_param("description"))
        }
        _ => Ok(()),
    }
}

fn load_credentials(conn: &Connection) -> Result<Vec<Credential>, String> {
    let mut stmt = conn
        .prepare(
            "SELECT id, user, label, key_kind, otp_kind, scal, multisign, certificate, key_label,
                    sad_lifetime
             FROM credentials ORDER BY position",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, u8>(5)?,
                r.get::<_, u32>(6)?,
                r.get::<_, Vec<u8>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<i64>>(9)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for row in rows {
        let (id, user, label, key, otp, scal, multisign, cert_der, key_label, sad_lifetime) =
            row.map_err(|e| e.to_string())?;
        let key = KeyKind::parse(&key).ok_or_else(|| format!("{id}: unknown key kind {key}"))?;
        let otp = OtpKind::parse(&otp).ok_or_else(|| format!("{id}: unknown OTP kind {otp}"))?;
        let cert = CertInfo::parse(&cert_der).map_err(|e| format!("{id}: {e}"))?;
        out.push(Credential {
            id,
            user,
            label,
            key,
            otp,
            scal,
            multisign,
            cert_der,
            cert,
            key_label,
            sad_lifetime,
        });
    }
    Ok(out)
}

mod accounts;
pub mod approvals;
mod authorization;
pub mod oauth;
mod signing;
#[cfg(test)]
mod tests;

pub use authorization::{Authorization, AuthorizeRequest};
pub use signing::SignRequest;
