//! Bearer tokens of `auth/login` and of the OAuth 2.0 token endpoint: short-lived access tokens and
//! long-lived refresh tokens, each bound to the OAuth 2.0 client that obtained it (none for
//! `auth/login`). Only SHA-256 hashes are stored.

use crate::db::secret_id;
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Access,
    Refresh,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Refresh => "refresh",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Valid {
        user: String,
        /// The OAuth 2.0 client that obtained it; `None`: `auth/login`.
        client: Option<String>,
    },
    Expired,
    /// Unknown, revoked, or of the other kind.
    Invalid,
}

/// Issues a token for `user`. `lifetime`: seconds, `None` for no expiry. `parent`: the refresh token an
/// access token was obtained with, so that revoking the refresh token ends its access tokens too.
pub fn issue(
    conn: &Connection,
    user: &str,
    kind: Kind,
    now: i64,
    lifetime: Option<i64>,
    parent: Option<&str>,
) -> rusqlite::Result<Zeroizing<String>> {
    issue_for(conn, None, user, kind, now, lifetime, parent)
}

/// `issue` for the OAuth 2.0 client `client` (`None`: `auth/login`).
pub fn issue_for(
    conn: &Connection,
    client: Option<&str>,
    user: &str,
    kind: Kind,
    now: i64,
    lifetime: Option<i64>,
    parent: Option<&str>,
) -> rusqlite::Result<Zeroizing<String>> {
    let token = crate::random::token();
    conn.execute(
        "INSERT INTO tokens (hash, user, kind, created_at, expires_at, parent, client)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            secret_id(&token),
            user,
            kind.as_str(),
            now,
            lifetime.map(|l| now + l),
            parent.map(secret_id),
            client
        ],
    )?;
    Ok(token)
}

pub fn lookup(conn: &Connection, token: &str, kind: Kind, now: i64) -> rusqlite::Result<Lookup> {
    let row: Option<(String, Option<i64>, bool, Option<String>)> = conn
        .prepare_cached(
            "SELECT user, expires_at, revoked, client FROM tokens WHERE hash = ?1 AND kind = ?2",
        )?
        .query_row(params![secret_id(token), kind.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(match row {
        None | Some((_, _, true, _)) => Lookup::Invalid,
        Some((_, Some(exp), _, _)) if exp <= now => Lookup::Expired,
        Some((user, _, false, client)) => Lookup::Valid { user, client },
    })
}

/// Revokes `token` if it belongs to `user`, with the access tokens obtained through it. Returns whether
/// it did.
pub fn revoke(conn: &Connection, user: &str, token: &str) -> rusqlite::Result<bool> {
    revoke_where(conn, token, "user = ?2", user)
}

/// Revokes `token` if the OAuth 2.0 client `client` obtained it, with the access tokens obtained
/// through it (RFC 7009 §2.1). Returns whether it did.
pub fn revoke_of_client(conn: &Connection, client: &str, token: &str) -> rusqlite::Result<bool> {
    revoke_where(conn, token, "client = ?2", client)
}

fn revoke_where(
    conn: &Connection,
    token: &str,
    owner: &str,
    value: &str,
) -> rusqlite::Result<bool> {
    let id = secret_id(token);
    let user: Option<String> = conn
        .query_row(
            &format!("SELECT user FROM tokens WHERE hash = ?1 AND {owner}"),
            params![id, value],
            |r| r.get(0),
        )
        .optional()?;
    let Some(user) = user else {
        return Ok(false);
    };
    let n = conn.execute(
        "UPDATE tokens SET revoked = 1 WHERE hash = ?1 AND user = ?2",
        params![id, user],
    )?;
    if n > 0 {
        conn.execute(
            "UPDATE tokens SET revoked = 1 WHERE parent = ?1 AND user = ?2",
            params![id, user],
        )?;
    }
    Ok(n > 0)
}

/// Ends a refresh token that was exchanged for a new one (rotation, RFC 6749 §6); the access tokens
/// it gave live on until they expire.
pub fn retire(conn: &Connection, token: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE tokens SET revoked = 1 WHERE hash = ?1",
        [secret_id(token)],
    )?;
    Ok(())
}

/// Forgets access tokens that expired more than a day ago (they then read as invalid, not expired).
pub fn purge(conn: &Connection, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM tokens WHERE kind = 'access' AND expires_at < ?1",
        [now - 86_400],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn with_user(conn: &Connection, name: &str) {
        conn.execute(
            "INSERT INTO users (name, position, display_name, password_hash, pin_hash) VALUES (?1, 0, ?1, 'x', 'x')",
            [name],
        )
        .unwrap();
    }

    #[test]
    fn lifecycle() {
        let db = Db::in_memory();
        let conn = db.lock();
        with_user(&conn, "alice");
        with_user(&conn, "bob");
        let refresh = issue(&conn, "alice", Kind::Refresh, 1000, None, None).unwrap();
        let access = issue(&conn, "alice", Kind::Access, 1000, Some(60), Some(&refresh)).unwrap();
        let other = issue(&conn, "alice", Kind::Access, 1000, Some(60), None).unwrap();
        let valid = Lookup::Valid {
            user: "alice".into(),
            client: None,
        };
        assert_eq!(lookup(&conn, &access, Kind::Access, 1059).unwrap(), valid);
        assert_eq!(
            lookup(&conn, &access, Kind::Access, 1060).unwrap(),
            Lookup::Expired
        );
        // Kinds are not interchangeable.
        assert_eq!(
            lookup(&conn, &access, Kind::Refresh, 1000).unwrap(),
            Lookup::Invalid
        );
        assert_eq!(
            lookup(&conn, &refresh, Kind::Access, 1000).unwrap(),
            Lookup::Invalid
        );
        assert_eq!(
            lookup(&conn, &refresh, Kind::Refresh, i64::MAX).unwrap(),
            valid
        );
        assert_eq!(
            lookup(&conn, "nonsense", Kind::Access, 1000).unwrap(),
            Lookup::Invalid
        );
        // Only the owner can revoke; revoking the refresh token ends the access tokens it issued.
        assert!(!revoke(&conn, "bob", &refresh).unwrap());
        assert!(revoke(&conn, "alice", &refresh).unwrap());
        assert_eq!(
            lookup(&conn, &refresh, Kind::Refresh, 1000).unwrap(),
            Lookup::Invalid
        );
        assert_eq!(
            lookup(&conn, &access, Kind::Access, 1000).unwrap(),
            Lookup::Invalid
        );
        assert_eq!(lookup(&conn, &other, Kind::Access, 1000).unwrap(), valid);
        // Not stored in the clear.
        let stored: i64 = conn
            .query_row(
                "SELECT count(*) FROM tokens WHERE hash = ?1",
                [access.as_bytes()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0);
    }
}
