//! The emulator's state while it serves: the database, the vault, the settings, the page sessions; and
//! what every part uses — bearer tokens (issued as random strings, stored as SHA-256, looked up by kind),
//! the account password check with its lockout, and the audit trail. HTTP-free: api.rs and page.rs are
//! the web side.

use crate::error::{DssError, DssResult};
use crate::store;
use csc_server::audit::{self, Event};
use csc_server::clock::Clock;
use csc_server::db::{secret_id, Db};
use csc_server::files::StateDir;
use csc_server::lockouts::{self, Counter};
use csc_server::sessions::{PageLoginError, Sessions};
use csc_server::vault::Vault;
use csc_server::{passwords, random};
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Seconds an OAuth access token lasts.
    pub access_lifetime: i64,
    /// Seconds the user has to confirm (and the client, to collect a confirmed one).
    pub confirmation_timeout: i64,
    /// Seconds the token of a confirmed sign-in (session) lasts.
    pub session_lifetime: i64,
    /// Consecutive failures of the password or of the page's code that lock it.
    pub max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            access_lifetime: 3600,
            confirmation_timeout: 120,
            session_lifetime: 300,
            max_attempts: 5,
        }
    }
}

pub struct Emulator {
    pub(crate) db: Db,
    pub(crate) vault: Vault,
    pub(crate) settings: Settings,
    pub(crate) clock: Clock,
    pub sessions: Sessions,
}

/// What a bearer token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    pub user: String,
    pub kind: String,
    pub transaction: Option<String>,
    pub hash: Vec<u8>,
}

impl Emulator {
    pub fn load(state: &StateDir, settings: Settings) -> Result<Emulator, String> {
        let vault = Vault::load(&state.master_key()).map_err(|e| e.to_string())?;
        let db = store::open(&state.database())?;
        Ok(Emulator::new(db, vault, settings, Clock::system()))
    }

    pub(crate) fn new(db: Db, vault: Vault, settings: Settings, clock: Clock) -> Emulator {
        Emulator {
            db,
            vault,
            settings,
            clock,
            sessions: Sessions::default(),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    fn meta(&self, name: &str) -> Result<Vec<u8>, String> {
        csc_server::db::get_meta(&self.db.lock(), name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("state.db has no {name}"))
    }

    /// The HTTPS server configuration: the TLS certificate `init` issued, its key unsealed.
    pub fn tls_config(&self) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
        let key = self
            .vault
            .open(csc_server::vault::purpose::TLS_KEY, &self.meta("tls_key")?)
            .map_err(|e| e.to_string())?;
        csc_server::server::tls_config(self.meta("tls_cert")?, self.meta("ca_cert")?, &key)
    }

    /// Checks that the HSM token of the state folder holds the key of every RSA certificate, as a
    /// protected (non-extractable) key whose public key the certificate carries. Returns how many.
    pub fn check_hsm(&self) -> Result<usize, String> {
        let token = String::from_utf8(self.meta("hsm_token")?).map_err(|e| e.to_string())?;
        let pin = self
            .vault
            .open(crate::init::HSM_PIN, &self.meta(crate::init::HSM_PIN)?)
            .map_err(|e| e.to_string())?;
        let pin = std::str::from_utf8(&pin).map_err(|e| e.to_string())?;
        let module =
            hsm_store::Module::load(std::path::Path::new(hsm_store::softhsm::DEFAULT_MODULE))
                .map_err(|e| e.to_string())?;
        let store = hsm_store::Store::open(module, &token, pin, 1).map_err(|e| e.to_string())?;
        let keys: Vec<(String, Vec<u8>)> = {
            let conn = self.db.lock();
            let mut stmt = conn
                .prepare("SELECT hsm_label, der FROM certificates WHERE hsm_label IS NOT NULL")
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| e.to_string())?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| e.to_string())?
        };
        for (label, der) in &keys {
            let key = store
                .key(label)
                .map_err(|e| format!("the HSM store: {e}"))?;
            if !crate::certs::carries(der, key.spki_der()) {
                return Err(format!(
                    "the certificate of HSM key {label} carries another key"
                ));
            }
        }
        Ok(keys.len())
    }

    /// Runs `f` on the connection, then records `ev` with the outcome: "ok" or the client's error.
    pub(crate) fn audited<T>(
        &self,
        ev: Event<'_>,
        f: impl FnOnce(&Connection) -> DssResult<T>,
    ) -> DssResult<T> {
        let conn = self.db.lock();
        let result = f(&conn);
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.error.to_owned(),
        };
        let ev = Event {
            outcome: &outcome,
            ..ev
        };
        if let Err(e) = audit::append(&conn, self.now(), &ev) {
            log::error!("audit trail: {e}");
            return Err(DssError::internal("audit trail"));
        }
        result
    }

    /// A new bearer token of `kind` for `user`, lasting `lifetime` seconds.
    pub(crate) fn issue(
        &self,
        conn: &Connection,
        user: &str,
        kind: &str,
        transaction: Option<&str>,
        lifetime: i64,
    ) -> DssResult<Zeroizing<String>> {
        let token = random::token();
        let now = self.now();
        conn.execute(
            "INSERT INTO tokens (hash, user, kind, transaction_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                secret_id(&token),
                user,
                kind,
                transaction,
                now,
                now + lifetime
            ],
        )?;
        Ok(token)
    }

    /// The live token `secret` of one of `kinds` (not expired, revoked or used); `invalid_token` else.
    pub(crate) fn bearer(
        &self,
        conn: &Connection,
        secret: &str,
        kinds: &[&str],
    ) -> DssResult<Bearer> {
        let hash = secret_id(secret);
        let row: Option<(String, String, Option<String>, i64, bool, bool)> = conn
            .query_row(
                "SELECT user, kind, transaction_id, expires_at, used, revoked FROM tokens
                 WHERE hash = ?1",
                [&hash],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()?;
        match row {
            Some((user, kind, transaction, expires, used, revoked))
                if kinds.contains(&kind.as_str()) && expires > self.now() && !used && !revoked =>
            {
                Ok(Bearer {
                    user,
                    kind,
                    transaction,
                    hash,
                })
            }
            _ => Err(DssError::invalid_token()),
        }
    }

    /// Marks a single-use token spent.
    pub(crate) fn spend(&self, conn: &Connection, bearer: &Bearer) -> DssResult<()> {
        conn.execute("UPDATE tokens SET used = 1 WHERE hash = ?1", [&bearer.hash])?;
        Ok(())
    }

    /// The account password of `user`, with the lockout (`max_attempts` consecutive failures lock; a
    /// success resets the count). An unknown user takes as long as a wrong password.
    pub(crate) fn check_password(&self, user: &str, password: &[u8]) -> DssResult<()> {
        let hash: Option<String> = self
            .db
            .lock()
            .query_row(
                "SELECT password_hash FROM users WHERE name = ?1",
                [user],
                |r| r.get(0),
            )
            .optional()?;
        let Some(hash) = hash else {
            passwords::verify_dummy(password);
            return Err(bad_credentials());
        };
        if lockouts::locked(&self.db.lock(), Counter::Password, user)? {
            return Err(DssError::new(
                401,
                "invalid_grant",
                "The account is locked after too many failed sign-ins",
            ));
        }
        let ok = passwords::verify(password, &hash);
        let conn = self.db.lock();
        if ok {
            lockouts::success(&conn, Counter::Password, user)?;
            Ok(())
        } else {
            lockouts::failure(&conn, Counter::Password, user, self.settings.max_attempts)?;
            Err(bad_credentials())
        }
    }
}

impl Emulator {
    /// Signs a person in to the confirmation page with the account password and the code of the account's
    /// authenticator (the user's phone); returns the new page session's token. Password failures count
    /// towards the token endpoint's lockout, code failures towards their own; a code is never accepted
    /// twice.
    pub fn page_login(
        &self,
        user: &str,
        password: &[u8],
        code: &str,
    ) -> Result<Zeroizing<String>, PageLoginError> {
        let result = self.page_login_checks(user, password, code);
        let ev = Event {
            event: "confirm-page/login",
            user: result.as_ref().ok().map(|_| user),
            credential: None,
            hashes: &[],
            outcome: match &result {
                Ok(()) => "ok",
                Err(PageLoginError::Locked) => "locked",
                Err(_) => "rejected",
            },
            detail: Some("password and code"),
        };
        if let Err(e) = audit::append(&self.db.lock(), self.now(), &ev) {
            log::error!("audit trail: {e}");
            return Err(PageLoginError::Internal);
        }
        result.map(|()| self.sessions.create(user, self.now()))
    }

    fn page_login_checks(
        &self,
        user: &str,
        password: &[u8],
        code: &str,
    ) -> Result<(), PageLoginError> {
        match self.check_password(user, password) {
            Ok(()) => {}
            Err(e) if e.description.contains("locked") => return Err(PageLoginError::Locked),
            Err(e) if e.status >= 500 => return Err(PageLoginError::Internal),
            Err(_) => return Err(PageLoginError::Rejected),
        }
        let internal = |_| PageLoginError::Internal;
        let conn = self.db.lock();
        if lockouts::locked(&conn, Counter::AccountCode, user).map_err(internal)? {
            return Err(PageLoginError::Locked);
        }
        let max = self.settings.max_attempts;
        match csc_server::otp::check_account_code(&conn, &self.vault, user, code, self.now(), max) {
            Ok(true) => Ok(()),
            Ok(false) => Err(PageLoginError::Rejected),
            Err(_) => Err(PageLoginError::Internal),
        }
    }

    /// The page session named by the cookie `token`.
    pub fn page_session(&self, token: &str) -> Option<csc_server::sessions::Session> {
        self.sessions.get(token, self.now())
    }
}

pub(crate) fn bad_credentials() -> DssError {
    DssError::new(400, "invalid_grant", "Invalid user name or password")
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An emulator over a fresh database with the demo users and certificates (made as `init` makes them,
    /// keys included), on a settable clock.
    pub fn emulator(now: i64) -> (tempfile::TempDir, Emulator) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        csc_server::init::prepare_dir(state.path()).unwrap();
        let hsm = crate::init::Hsm::scratch();
        crate::init::fill(&state, &crate::init::Options { totp_period: 30 }, &hsm).unwrap();
        let vault = Vault::load(&state.master_key()).unwrap();
        let db = store::open(&state.database()).unwrap();
        let e = Emulator::new(db, vault, Settings::default(), Clock::fixed(now));
        (dir, e)
    }
}
