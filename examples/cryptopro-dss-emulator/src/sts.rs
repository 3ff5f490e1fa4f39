//! The identity service's token endpoint, `POST /STS/oauth/token` (RFC 6749), as the DSS documentation
//! describes its resource-owner flow (articles/authentication/oauth/resourceowner-flow.html): form
//! parameters `grant_type=password`, `username`, `password`, `client_id`, `resource` =
//! urn:cryptopro:dss:signserver:<name> (an RFC 8707 resource indicator), and `grant_type=refresh_token`.
//! A refresh token is issued with every sign-in and rotated on every use (the old one is revoked).
//! Errors are RFC 6749 §5.2's (RFC 8707's `invalid_target` for another resource).

use crate::error::{DssError, DssResult};
use crate::model::RESOURCE;
use crate::service::Emulator;
use csc_server::audit::Event;
use csc_server::db::secret_id;
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The form fields of a token request.
#[derive(Deserialize, Default)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<Zeroizing<String>>,
    pub refresh_token: Option<Zeroizing<String>>,
    pub client_id: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

pub struct Tokens {
    pub access_token: Zeroizing<String>,
    pub refresh_token: Zeroizing<String>,
    pub expires_in: i64,
}

/// Never the tokens themselves.
impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// One token request. `basic_client` is the client id of an HTTP Basic client authentication (a
    /// public client sends an empty secret there, or its id in the form).
    pub fn token(&self, form: &TokenForm, basic_client: Option<&str>) -> DssResult<Tokens> {
        let client = basic_client
            .or(form.client_id.as_deref())
            .ok_or_else(|| DssError::new(401, "invalid_client", "Missing client_id"))?;
        let known: bool = self
            .db
            .lock()
            .query_row(
                "SELECT count(*) FROM clients WHERE id = ?1",
                [client],
                |r| r.get(0),
            )
            .map(|n: i64| n > 0)?;
        if !known {
            return Err(DssError::new(401, "invalid_client", "Unknown client"));
        }
        match form.resource.as_deref() {
            Some(RESOURCE) => {}
            Some(_) => {
                return Err(DssError::new(
                    400,
                    "invalid_target",
                    "Unknown resource: this identity service issues tokens for the signature service only",
                ))
            }
            None => return Err(DssError::invalid_request("Missing resource")),
        }
        if let Some(scope) = &form.scope {
            if scope
                .split(' ')
                .any(|s| !matches!(s, "dss" | "offline_access" | ""))
            {
                return Err(DssError::new(400, "invalid_scope", "Unknown scope"));
            }
        }
        match form.grant_type.as_deref() {
            Some("password") => self.password_grant(form),
            Some("refresh_token") => self.refresh_grant(form),
            Some(_) => Err(DssError::new(
                400,
                "unsupported_grant_type",
                "Supported: password, refresh_token",
            )),
            None => Err(DssError::invalid_request("Missing grant_type")),
        }
    }

    fn password_grant(&self, form: &TokenForm) -> DssResult<Tokens> {
        let (Some(user), Some(password)) = (form.username.as_deref(), form.password.as_ref())
        else {
            return Err(DssError::invalid_request("Missing username or password"));
        };
        let user: String = user.chars().take(64).collect();
        let checked = self.check_password(&user, password.as_bytes());
        let known = checked.is_ok()
            || checked
                .as_ref()
                .is_err_and(|e| e.description.contains("locked"));
        let ev = Event {
            event: "oauth/token",
            user: known.then_some(user.as_str()),
            credential: None,
            hashes: &[],
            outcome: "",
            detail: Some("password grant"),
        };
        self.audited(ev, |conn| {
            checked?;
            self.tokens(conn, &user)
        })
    }

    fn refresh_grant(&self, form: &TokenForm) -> DssResult<Tokens> {
        let presented = form
            .refresh_token
            .as_ref()
            .ok_or_else(|| DssError::invalid_request("Missing refresh_token"))?;
        let hash = secret_id(presented);
        let now = self.now();
        let row: Option<(String, i64, bool)> = self
            .db
            .lock()
            .query_row(
                "SELECT user, expires_at, revoked FROM tokens WHERE hash = ?1 AND kind = 'refresh'",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let user = row.as_ref().map(|(u, _, _)| u.clone());
        let ev = Event {
            event: "oauth/token",
            user: user.as_deref(),
            credential: None,
            hashes: &[],
            outcome: "",
            detail: Some("refresh_token grant"),
        };
        self.audited(ev, |conn| match row {
            Some((user, expires, false)) if expires > now => {
                // Rotation: the refresh token is used up by this answer.
                conn.execute("UPDATE tokens SET revoked = 1 WHERE hash = ?1", [&hash])?;
                self.tokens(conn, &user)
            }
            _ => Err(DssError::new(
                400,
                "invalid_grant",
                "Invalid, expired or revoked refresh token",
            )),
        })
    }

    /// A fresh access token and refresh token for `user`.
    fn tokens(&self, conn: &rusqlite::Connection, user: &str) -> DssResult<Tokens> {
        let lifetime = self.settings.access_lifetime;
        let access_token = self.issue(conn, user, "access", None, lifetime)?;
        // Refresh tokens last 30 days.
        let refresh_token = self.issue(conn, user, "refresh", None, 30 * 86_400)?;
        conn.execute(
            "DELETE FROM tokens WHERE expires_at < ?1 AND kind IN ('access', 'refresh')",
            params![self.now() - 86_400],
        )?;
        Ok(Tokens {
            access_token,
            refresh_token,
            expires_in: lifetime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::emulator;

    fn form(pairs: &[(&str, &str)]) -> TokenForm {
        let mut f = TokenForm {
            client_id: Some(crate::model::CLIENT_ID.into()),
            resource: Some(RESOURCE.into()),
            ..TokenForm::default()
        };
        for (k, v) in pairs {
            match *k {
                "grant_type" => f.grant_type = Some(v.to_string()),
                "username" => f.username = Some(v.to_string()),
                "password" => f.password = Some(Zeroizing::new(v.to_string())),
                "refresh_token" => f.refresh_token = Some(Zeroizing::new(v.to_string())),
                "client_id" => f.client_id = Some(v.to_string()),
                "resource" => f.resource = Some(v.to_string()),
                "scope" => f.scope = Some(v.to_string()),
                _ => unreachable!(),
            }
        }
        f
    }

    #[test]
    fn password_and_refresh_grants_with_rotation_and_lockout() {
        let (dir, e) = emulator(1_900_000_000);
        let demo: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("state/demo.json")).unwrap())
                .unwrap();
        let password = demo["users"][0]["password"].as_str().unwrap().to_owned();
        let ok = form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", &password),
        ]);
        let t = e.token(&ok, None).unwrap();
        assert_eq!(t.expires_in, 3600);
        assert_eq!(
            e.bearer(&e.db.lock(), &t.access_token, &["access"])
                .unwrap()
                .user,
            "alice"
        );
        // The refresh token works once; its successor works; the used one does not.
        let r = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &t.refresh_token),
        ]);
        let t2 = e.token(&r, None).unwrap();
        assert_eq!(e.token(&r, None).unwrap_err().error, "invalid_grant");
        let r2 = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &t2.refresh_token),
        ]);
        assert!(e.token(&r2, None).is_ok());
        // Refusals, each with its RFC 6749 / RFC 8707 code.
        for (f, code) in [
            (
                form(&[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "wrong"),
                ]),
                "invalid_grant",
            ),
            (
                form(&[
                    ("grant_type", "password"),
                    ("username", "nobody"),
                    ("password", "x"),
                ]),
                "invalid_grant",
            ),
            (
                form(&[("grant_type", "password"), ("username", "alice")]),
                "invalid_request",
            ),
            (
                form(&[("grant_type", "client_credentials")]),
                "unsupported_grant_type",
            ),
            (
                form(&[("grant_type", "password"), ("client_id", "other")]),
                "invalid_client",
            ),
            (
                form(&[("grant_type", "password"), ("resource", "urn:other")]),
                "invalid_target",
            ),
            (
                form(&[("grant_type", "password"), ("scope", "admin")]),
                "invalid_scope",
            ),
        ] {
            assert_eq!(e.token(&f, None).unwrap_err().error, code);
        }
        // Five failures in a row lock the password (the wrong one above was the first).
        let wrong = form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong"),
        ]);
        for _ in 0..4 {
            e.token(&wrong, None).unwrap_err();
        }
        let locked = e.token(&ok, None).unwrap_err();
        assert!(locked.description.contains("locked"), "{locked:?}");
    }
}
