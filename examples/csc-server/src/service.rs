//! The signing service itself, independent of HTTP and of the API version: accounts and tokens,
//! credentials, the PIN/OTP checks with their lockouts, SADs, signing, and the audit trail. The HTTP
//! layer (`api`) maps v1/v2 JSON onto these calls. Every call blocks (SQLite, Argon2, RSA): run them
//! off the async executor.

use crate::algorithms::{self, AlgorithmRequest, HashAlg};
use crate::audit::{self, Event};
use crate::clock::Clock;
use crate::db::{self, Db};
use crate::error::{CscError, CscResult};
use crate::files::StateDir;
use crate::keys::PrivateKey;
use crate::model::{KeyKind, OtpKind};
use crate::otp::{self, Outbox};
use crate::passwords;
use crate::pki::CertInfo;
use crate::sad::{self, SadError};
use crate::sessions::Sessions;
use crate::tokens::{self, Lookup};
use crate::vault::{purpose, Vault};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::Zeroizing;

pub struct Settings {
    pub sad_lifetime: i64,
    pub access_token_lifetime: i64,
    /// Consecutive failures (password, PIN, OTP) that lock.
    pub max_attempts: u32,
    /// Seconds the user has to approve a request of an approval credential; an approved request's SAD
    /// can be collected for as long again.
    pub approval_timeout: i64,
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
}

/// The authenticated user of a request.
pub struct Caller {
    pub user: String,
}

pub struct Tokens {
    pub access_token: Zeroizing<String>,
    pub refresh_token: Option<Zeroizing<String>>,
    pub expires_in: i64,
}

pub struct AuthorizeRequest<'a> {
    pub credential_id: &'a str,
    pub num_signatures: u64,
    pub hashes: Option<Vec<Vec<u8>>>,
    pub hash_algo: Option<&'a str>,
    pub pin: Option<Zeroizing<String>>,
    pub otp: Option<Zeroizing<String>>,
    pub description: Option<&'a str>,
    /// Who asks (client address and software), shown on the approval page.
    pub client: Option<&'a str>,
    /// The client's API version can poll `credentials/authorizeCheck` (v2); approval credentials
    /// need it.
    pub can_poll: bool,
}

/// The outcome of `credentials/authorize` and `credentials/authorizeCheck`.
pub enum Authorization {
    Granted(sad::Issued),
    /// Waiting for the user's approval: the client polls with `handle`.
    Pending {
        handle: Zeroizing<String>,
        /// The request's name on the approval page and in the audit trail.
        id: String,
    },
}

/// Shows neither the SAD nor the handle: both are bearer secrets.
impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::Granted(issued) => f.debug_tuple("Granted").field(issued).finish(),
            Authorization::Pending { id, .. } => f
                .debug_struct("Pending")
                .field("id", id)
                .finish_non_exhaustive(),
        }
    }
}

pub struct SignRequest<'a> {
    pub credential_id: &'a str,
    pub sad: Zeroizing<String>,
    pub hashes: Vec<Vec<u8>>,
    pub algorithm: AlgorithmRequest<'a>,
}

pub struct Service {
    db: Db,
    vault: Vault,
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
}

pub const MAX_DESCRIPTION: usize = 500;

impl Service {
    pub fn load(state: &StateDir, settings: Settings) -> Result<Service, String> {
        let vault = Vault::load(&state.master_key()).map_err(|e| e.to_string())?;
        let db = Db::open(&state.database())?;
        Service::new(
            db,
            vault,
            settings,
            Clock::system(),
            Outbox::new(state.sms_outbox()),
        )
        .map_err(|e| format!("loading {}: {e}", state.database().display()))
    }

    pub fn new(
        db: Db,
        vault: Vault,
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
        Ok(Service {
            db,
            vault,
            settings,
            clock,
            credentials,
            ca_der,
            user_locks: users.into_iter().map(|u| (u, Mutex::new(()))).collect(),
            outbox,
            sessions: Sessions::default(),
        })
    }

    fn now(&self) -> i64 {
        self.clock.now()
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
        let conn = self.db.lock();
        audit::append(
            &conn,
            self.now(),
            &Event {
                outcome: &outcome,
                ..ev
            },
        )?;
        result
    }

    // ---- accounts and tokens ----

    pub fn authenticate(&self, bearer: Option<&str>) -> CscResult<Caller> {
        let token = bearer.ok_or_else(CscError::missing_token)?;
        let conn = self.db.lock();
        match tokens::lookup(&conn, token, tokens::Kind::Access, self.now())? {
            Lookup::Valid { user } => Ok(Caller { user }),
            Lookup::Expired => Err(CscError::expired_token()),
            Lookup::Invalid => Err(CscError::invalid_token()),
        }
    }

    pub fn login_password(
        &self,
        user: &str,
        password: &[u8],
        remember_me: bool,
    ) -> CscResult<Tokens> {
        let known = self.user_locks.contains_key(user);
        let result = self.login_password_inner(user, password, remember_me);
        let ev = Event {
            event: "auth/login",
            // An unknown name may be a mistyped password: it is not recorded.
            user: known.then_some(user),
            credential: None,
            hashes: &[],
            outcome: "",
            detail: Some(if known {
                "password"
            } else {
                "password, unknown user"
            }),
        };
        self.audited(ev, result)
    }

    fn login_password_inner(
        &self,
        user: &str,
        password: &[u8],
        remember_me: bool,
    ) -> CscResult<Tokens> {
        let Some(_guard) = self.user_lock(user) else {
            passwords::verify_dummy(password);
            return Err(CscError::bad_credentials());
        };
        let (hash, locked): (String, bool) = self.db.lock().query_row(
            "SELECT password_hash, login_locked FROM users WHERE name = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if locked {
            return Err(CscError::login_locked());
        }
        if !passwords::verify(password, &hash) {
            self.count_password_failure(user)?;
            return Err(CscError::bad_credentials());
        }
        let now = self.now();
        let conn = self.db.lock();
        conn.execute(
            "UPDATE users SET login_failures = 0 WHERE name = ?1",
            [user],
        )?;
        tokens::purge(&conn, now)?;
        let refresh_token = if remember_me {
            Some(tokens::issue(
                &conn,
                user,
                tokens::Kind::Refresh,
                now,
                None,
                None,
            )?)
        } else {
            None
        };
        let access_token = tokens::issue(
            &conn,
            user,
            tokens::Kind::Access,
            now,
            Some(self.settings.access_token_lifetime),
            refresh_token.as_deref().map(|s| s.as_str()),
        )?;
        Ok(Tokens {
            access_token,
            refresh_token,
            expires_in: self.settings.access_token_lifetime,
        })
    }

    /// One more consecutive wrong password (`auth/login` and the approval page alike); the one that
    /// reaches `max_attempts` locks password logins.
    fn count_password_failure(&self, user: &str) -> CscResult<()> {
        self.db.lock().execute(
            "UPDATE users SET login_failures = login_failures + 1,
                              login_locked = (login_failures + 1 >= ?2)
             WHERE name = ?1",
            params![user, self.settings.max_attempts],
        )?;
        Ok(())
    }

    /// A new access token for a refresh token. Refresh tokens are long-lived and not rotated (the
    /// module keeps the enrollment token in a file); the password lockout does not stop them.
    pub fn login_refresh(&self, refresh_token: &str) -> CscResult<Tokens> {
        let now = self.now();
        let conn = self.db.lock();
        let (result, user) = match tokens::lookup(&conn, refresh_token, tokens::Kind::Refresh, now)?
        {
            Lookup::Valid { user } => {
                let issued = tokens::issue(
                    &conn,
                    &user,
                    tokens::Kind::Access,
                    now,
                    Some(self.settings.access_token_lifetime),
                    Some(refresh_token),
                );
                let result = issued.map_err(CscError::from).map(|access_token| Tokens {
                    access_token,
                    refresh_token: None,
                    expires_in: self.settings.access_token_lifetime,
                });
                (result, Some(user))
            }
            Lookup::Expired | Lookup::Invalid => (Err(CscError::bad_refresh_token()), None),
        };
        drop(conn);
        let ev = Event {
            event: "auth/login",
            user: user.as_deref(),
            credential: None,
            hashes: &[],
            outcome: "",
            detail: Some("refresh token"),
        };
        self.audited(ev, result)
    }

    pub fn revoke(&self, caller: &Caller, token: &str) -> CscResult<()> {
        let revoked = tokens::revoke(&self.db.lock(), &caller.user, token)?;
        let result = if revoked {
            Ok(())
        } else {
            Err(CscError::invalid_param("token"))
        };
        let ev = Event {
            event: "auth/revoke",
            user: Some(&caller.user),
            credential: None,
            hashes: &[],
            outcome: "",
            detail: None,
        };
        self.audited(ev, result)
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

    // ---- second factor ----

    /// `credentials/sendOTP` (v1) and `credentials/getChallenge` (v2): a new SMS code replaces any
    /// pending one.
    pub fn send_otp(
        &self,
        caller: &Caller,
        credential_id: &str,
        description: Option<&str>,
    ) -> CscResult<()> {
        let result = self.send_otp_inner(caller, credential_id, description);
        let ev = Event {
            event: "credentials/sendOTP",
            user: Some(&caller.user),
            credential: self.own_credential_id(caller, credential_id),
            hashes: &[],
            outcome: "",
            detail: description,
        };
        self.audited(ev, result)
    }

    fn send_otp_inner(
        &self,
        caller: &Caller,
        credential_id: &str,
        description: Option<&str>,
    ) -> CscResult<()> {
        let cred = self.credential(caller, credential_id)?;
        check_description(description)?;
        match cred.otp {
            OtpKind::Sms => {}
            OtpKind::Totp => {
                return Err(CscError::invalid_request(
                    "The credential's OTP comes from an authenticator app; nothing to send",
                ))
            }
            OtpKind::Approval => return Err(CscError::invalid_request(
                "The credential takes no OTP: the user approves each request on the approval page",
            )),
        }
        let _guard = self.user_lock(&cred.user);
        let now = self.now();
        let code = otp::sms_code();
        {
            let conn = self.db.lock();
            let locked: bool = conn.query_row(
                "SELECT otp_locked FROM credentials WHERE id = ?1",
                [&cred.id],
                |r| r.get(0),
            )?;
            if locked {
                return Err(CscError::otp_locked());
            }
            conn.execute(
                "UPDATE credentials SET sealed_sms = ?2, sms_expires = ?3 WHERE id = ?1",
                params![
                    cred.id,
                    self.vault
                        .seal(&purpose::sms_code(&cred.id), code.as_bytes()),
                    now + otp::SMS_LIFETIME
                ],
            )?;
        }
        self.outbox
            .send(now, &cred.user, &cred.id, &code, description)
            .map_err(|e| CscError::internal("SMS outbox", e))
    }

    // ---- authorization ----

    pub fn authorize(
        &self,
        caller: &Caller,
        req: AuthorizeRequest<'_>,
    ) -> CscResult<Authorization> {
        let hashes = req.hashes.clone().unwrap_or_default();
        let credential = self.own_credential_id(caller, req.credential_id);
        let detail = format!(
            "numSignatures={}{}",
            req.num_signatures,
            req.description
                .map(|d| format!("; description: {d}"))
                .unwrap_or_default()
        );
        let result = self.authorize_inner(caller, req);
        let ev = Event {
            event: "credentials/authorize",
            user: Some(&caller.user),
            credential,
            hashes: &hashes,
            outcome: "",
            detail: Some(&detail),
        };
        self.audited_as(ev, result, |a| match a {
            Authorization::Granted(_) => "ok".to_owned(),
            Authorization::Pending { id, .. } => format!("pending approval: request {id}"),
        })
    }

    fn authorize_inner(
        &self,
        caller: &Caller,
        req: AuthorizeRequest<'_>,
    ) -> CscResult<Authorization> {
        let cred = self.credential(caller, req.credential_id)?;
        if cred.otp == OtpKind::Approval && !req.can_poll {
            return Err(CscError::invalid_request(
                "The credential is authorized by approval on the user's device, which needs CSC API \
                 v2 (credentials/authorizeCheck)",
            ));
        }
        if req.num_signatures < 1 || req.num_signatures > u64::from(cred.multisign) {
            return Err(CscError::invalid_param("numSignatures"));
        }
        check_description(req.description)?;
        let hash_algo = match req.hash_algo {
            Some(oid) => Some(
                HashAlg::from_oid(oid)
                    .ok_or_else(|| CscError::invalid_param("hashAlgorithmOID"))?,
            ),
            None => None,
        };
        if let Some(hashes) = &req.hashes {
            let fits = |h: &Vec<u8>| match hash_algo {
                Some(alg) => h.len() == alg.len(),
                None => HashAlg::from_len(h.len()).is_some(),
            };
            if !hashes.iter().all(fits) {
                return Err(CscError::invalid_param("hashes"));
            }
        }
        let bound = if cred.scal == 2 {
            match &req.hashes {
                Some(h) if h.len() as u64 == req.num_signatures => Some(h.as_slice()),
                _ => return Err(CscError::invalid_param("hashes")),
            }
        } else {
            None
        };
        let pin = req
            .pin
            .as_ref()
            .ok_or_else(|| CscError::missing("string", "PIN"))?;
        if cred.otp == OtpKind::Approval {
            if req.otp.is_some() {
                return Err(CscError::invalid_request(
                    "The credential takes no OTP: the user approves each request on the approval page",
                ));
            }
            let _guard = self.user_lock(&cred.user);
            self.check_factors(cred, pin, None)?;
            let queued = self.queue_approval(cred, &req, bound.is_some(), hash_algo)?;
            return Ok(Authorization::Pending {
                handle: queued.handle,
                id: queued.id,
            });
        }
        let otp = req
            .otp
            .as_ref()
            .ok_or_else(|| CscError::missing("string", "OTP"))?;

        let _guard = self.user_lock(&cred.user);
        self.check_factors(cred, pin, Some(otp))?;
        let grant = sad::Grant {
            user: &cred.user,
            credential: &cred.id,
            num_signatures: req.num_signatures as u32,
            bound_hashes: bound,
            hash_algo: hash_algo.map(HashAlg::oid),
            lifetime: self.settings.sad_lifetime,
        };
        Ok(Authorization::Granted(sad::issue(
            &mut self.db.lock(),
            &grant,
            self.now(),
        )?))
    }

    /// Lock states, then the PIN, then the OTP (`None` for approval credentials, which have none). A
    /// wrong PIN leaves the OTP unspent. Each factor's failure counter is reset by its success. Runs
    /// under the user's lock.
    fn check_factors(
        &self,
        cred: &Credential,
        pin: &str,
        otp_value: Option<&str>,
    ) -> CscResult<()> {
        let max = self.settings.max_attempts;
        let (pin_hash, pin_locked, otp_locked): (String, bool, bool) = self.db.lock().query_row(
            "SELECT u.pin_hash, u.pin_locked, c.otp_locked FROM users u JOIN credentials c ON c.user = u.name
             WHERE c.id = ?1",
            [&cred.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if pin_locked {
            return Err(CscError::pin_locked());
        }
        if otp_locked && otp_value.is_some() {
            return Err(CscError::otp_locked());
        }
        if !passwords::verify(pin.as_bytes(), &pin_hash) {
            self.db.lock().execute(
                "UPDATE users SET pin_failures = pin_failures + 1, pin_locked = (pin_failures + 1 >= ?2)
                 WHERE name = ?1",
                params![cred.user, max],
            )?;
            return Err(CscError::invalid_pin());
        }
        let conn = self.db.lock();
        conn.execute(
            "UPDATE users SET pin_failures = 0 WHERE name = ?1",
            [&cred.user],
        )?;
        let Some(otp_value) = otp_value else {
            return Ok(());
        };
        if self.otp_matches(&conn, cred, otp_value)? {
            conn.execute(
                "UPDATE credentials SET otp_failures = 0 WHERE id = ?1",
                [&cred.id],
            )?;
            Ok(())
        } else {
            conn.execute(
                "UPDATE credentials SET otp_failures = otp_failures + 1, otp_locked = (otp_failures + 1 >= ?2)
                 WHERE id = ?1",
                params![cred.id, max],
            )?;
            Err(CscError::invalid_otp())
        }
    }

    /// Checks and, when it matches, spends the OTP (records the TOTP step, deletes the SMS code).
    fn otp_matches(&self, conn: &Connection, cred: &Credential, value: &str) -> CscResult<bool> {
        let now = self.now();
        match cred.otp {
            OtpKind::Totp => {
                let (sealed, period, last): (Vec<u8>, i64, Option<i64>) = conn.query_row(
                    "SELECT sealed_totp, totp_period, totp_last_step FROM credentials WHERE id = ?1",
                    [&cred.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                let secret = self
                    .vault
                    .open(&purpose::totp_secret(&cred.id), &sealed)
                    .map_err(|e| CscError::internal("TOTP secret", e))?;
                let accepted =
                    otp::verify_totp(&secret, period as u64, value, now, last.map(|s| s as u64));
                if let Some(step) = accepted {
                    conn.execute(
                        "UPDATE credentials SET totp_last_step = ?2 WHERE id = ?1",
                        params![cred.id, step as i64],
                    )?;
                }
                Ok(accepted.is_some())
            }
            OtpKind::Sms => {
                let pending: Option<(Option<Vec<u8>>, Option<i64>)> = conn
                    .query_row(
                        "SELECT sealed_sms, sms_expires FROM credentials WHERE id = ?1",
                        [&cred.id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((Some(sealed), Some(expires))) = pending else {
                    return Ok(false);
                };
                if expires <= now {
                    return Ok(false);
                }
                let code = self
                    .vault
                    .open(&purpose::sms_code(&cred.id), &sealed)
                    .map_err(|e| CscError::internal("SMS code", e))?;
                let ok = otp::codes_equal(&code, value.as_bytes());
                if ok {
                    conn.execute(
                        "UPDATE credentials SET sealed_sms = NULL, sms_expires = NULL WHERE id = ?1",
                        [&cred.id],
                    )?;
                }
                Ok(ok)
            }
            // Approval credentials have no code to match.
            OtpKind::Approval => Ok(false),
        }
    }

    pub fn extend_transaction(
        &self,
        caller: &Caller,
        credential_id: &str,
        sad_value: &str,
        hashes: Option<Vec<Vec<u8>>>,
        hash_algo: Option<&str>,
    ) -> CscResult<sad::Issued> {
        let shown = hashes.clone().unwrap_or_default();
        let result = (|| {
            let cred = self.credential(caller, credential_id)?;
            let hashes = hashes.unwrap_or_default();
            if cred.scal == 2 && hashes.is_empty() {
                return Err(CscError::invalid_param("hashes"));
            }
            let u = sad::Use {
                sad: sad_value,
                user: &cred.user,
                credential: &cred.id,
                hashes: if cred.scal == 2 { &hashes } else { &[] },
                hash_algo,
            };
            let now = self.now();
            sad::extend(&mut self.db.lock(), &u, self.settings.sad_lifetime, now)?
                .map_err(sad_error)
        })();
        let ev = Event {
            event: "credentials/extendTransaction",
            user: Some(&caller.user),
            credential: self.own_credential_id(caller, credential_id),
            hashes: &shown,
            outcome: "",
            detail: None,
        };
        self.audited(ev, result)
    }

    // ---- signing ----

    pub fn sign_hash(&self, caller: &Caller, req: SignRequest<'_>) -> CscResult<Vec<Vec<u8>>> {
        let result = self.sign_hash_inner(caller, &req);
        let ev = Event {
            event: "signatures/signHash",
            user: Some(&caller.user),
            credential: self.own_credential_id(caller, req.credential_id),
            hashes: &req.hashes,
            outcome: "",
            detail: Some(req.algorithm.sign_algo),
        };
        self.audited(ev, result)
    }

    fn sign_hash_inner(&self, caller: &Caller, req: &SignRequest<'_>) -> CscResult<Vec<Vec<u8>>> {
        let cred = self.credential(caller, req.credential_id)?;
        if req.hashes.is_empty() {
            return Err(CscError::invalid_param("hashes"));
        }
        // Everything that can be refused is refused before the SAD is spent.
        let op = algorithms::resolve(cred.key, &req.algorithm)?;
        op.check_hashes(&req.hashes)?;
        let u = sad::Use {
            sad: &req.sad,
            user: &cred.user,
            credential: &cred.id,
            hashes: &req.hashes,
            hash_algo: op.hash().map(HashAlg::oid),
        };
        let now = self.now();
        sad::consume(&mut self.db.lock(), &u, now)?.map_err(sad_error)?;

        let sealed: Vec<u8> = self.db.lock().query_row(
            "SELECT sealed_key FROM credentials WHERE id = ?1",
            [&cred.id],
            |r| r.get(0),
        )?;
        let pkcs8 = self
            .vault
            .open(&purpose::credential_key(&cred.id), &sealed)
            .map_err(|e| CscError::internal("credential key", e))?;
        let key = PrivateKey::from_pkcs8(cred.key, &pkcs8)
            .map_err(|e| CscError::internal("credential key", e))?;
        req.hashes
            .iter()
            .map(|h| {
                key.sign(op, h)
                    .map_err(|e| CscError::internal("signing", e))
            })
            .collect()
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
            "SELECT id, user, label, key_kind, otp_kind, scal, multisign, certificate
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
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for row in rows {
        let (id, user, label, key, otp, scal, multisign, cert_der) =
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
        });
    }
    Ok(out)
}

pub mod approvals;
#[cfg(test)]
mod tests;
