//! Accounts and tokens: `auth/login` with the password (and its lockout) or a refresh token,
//! bearer-token authentication of every other call, and `auth/revoke`.

use super::{Caller, Service};
use crate::audit::Event;
use crate::error::{CscError, CscResult};
use crate::lockouts::{self, Counter};
use crate::passwords;
use crate::tokens::{self, Lookup};
use rusqlite::OptionalExtension;
use zeroize::Zeroizing;

pub struct Tokens {
    pub access_token: Zeroizing<String>,
    pub refresh_token: Option<Zeroizing<String>>,
    pub expires_in: i64,
}

impl Service {
    /// The caller a request names: its bearer access token (from `auth/login` or an OAuth 2.0 client,
    /// each only while that way is accepted), else its API key, else — when requests without
    /// credentials are accepted — the anonymous account.
    pub fn authenticate_request(
        &self,
        bearer: Option<&str>,
        api_key: Option<&str>,
    ) -> CscResult<Caller> {
        let accepted = &self.settings.accepted;
        if bearer.is_some() {
            return self.authenticate(bearer);
        }
        if let Some(key) = api_key {
            if !accepted.api_key {
                return Err(CscError::invalid_token_because("API keys are not accepted"));
            }
            return self.authenticate_api_key(key);
        }
        match &accepted.anonymous {
            Some(user) => Ok(Caller { user: user.clone() }),
            None => Err(CscError::missing_token()),
        }
    }

    pub fn authenticate(&self, bearer: Option<&str>) -> CscResult<Caller> {
        let token = bearer.ok_or_else(CscError::missing_token)?;
        let conn = self.db.lock();
        match tokens::lookup(&conn, token, tokens::Kind::Access, self.now())? {
            Lookup::Valid { user, client }
                if self.settings.accepted.token_accepted(client.as_deref()) =>
            {
                Ok(Caller { user })
            }
            Lookup::Valid { .. } | Lookup::Invalid => Err(CscError::invalid_token()),
            Lookup::Expired => Err(CscError::expired_token()),
        }
    }

    fn authenticate_api_key(&self, key: &str) -> CscResult<Caller> {
        let conn = self.db.lock();
        let user: Option<String> = conn
            .prepare_cached("SELECT user FROM api_keys WHERE hash = ?1")?
            .query_row([crate::db::secret_id(key)], |r| r.get(0))
            .optional()?;
        user.map(|user| Caller { user })
            .ok_or_else(|| CscError::invalid_token_because("Invalid API key"))
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
        let hash = self.password_hash(user)?;
        if !passwords::verify(password, &hash) {
            self.count_password_failure(user)?;
            return Err(CscError::bad_credentials());
        }
        let now = self.now();
        let conn = self.db.lock();
        lockouts::success(&conn, Counter::Password, user)?;
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

    /// The stored password hash of `user`, unless password logins are locked. Runs under the user's
    /// lock (`auth/login` and the approval page).
    pub(super) fn password_hash(&self, user: &str) -> CscResult<String> {
        let conn = self.db.lock();
        if lockouts::locked(&conn, Counter::Password, user)? {
            return Err(CscError::login_locked());
        }
        Ok(conn.query_row(
            "SELECT password_hash FROM users WHERE name = ?1",
            [user],
            |r| r.get(0),
        )?)
    }

    /// One more consecutive wrong password (`auth/login` and the approval page alike); the one that
    /// reaches `max_attempts` locks password logins.
    pub(super) fn count_password_failure(&self, user: &str) -> CscResult<()> {
        lockouts::failure(
            &self.db.lock(),
            Counter::Password,
            user,
            self.settings.max_attempts,
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
            // OAuth 2.0 refresh tokens belong to their client and go to oauth2/token.
            Lookup::Valid { user, client: None } => {
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
            Lookup::Valid { .. } | Lookup::Expired | Lookup::Invalid => {
                (Err(CscError::bad_refresh_token()), None)
            }
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
}
