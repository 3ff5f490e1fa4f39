//! Failure counters and locks of the four secrets a person gives: the account password (`auth/login`
//! and the approval page), the signing PIN (per user), a credential's OTP, and the account code of the
//! approval page login. `max` consecutive failures lock; a success resets the counter; nothing
//! unlocks. The callers hold the user's lock across "is it locked, verify, count" so that parallel
//! guesses cannot outrun a lockout.

use rusqlite::{params, Connection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// The account password; `key` is the user name.
    Password,
    /// The signing PIN; `key` is the user name.
    Pin,
    /// A credential's OTP; `key` is the credential ID.
    Otp,
    /// The approval page login code; `key` is the user name.
    AccountCode,
}

impl Counter {
    fn locked_sql(self) -> &'static str {
        match self {
            Counter::Password => "SELECT login_locked FROM users WHERE name = ?1",
            Counter::Pin => "SELECT pin_locked FROM users WHERE name = ?1",
            Counter::Otp => "SELECT otp_locked FROM credentials WHERE id = ?1",
            Counter::AccountCode => "SELECT account_otp_locked FROM users WHERE name = ?1",
        }
    }

    fn failure_sql(self) -> &'static str {
        match self {
            Counter::Password => {
                "UPDATE users SET login_failures = login_failures + 1,
                                  login_locked = (login_failures + 1 >= ?2) WHERE name = ?1"
            }
            Counter::Pin => {
                "UPDATE users SET pin_failures = pin_failures + 1,
                                  pin_locked = (pin_failures + 1 >= ?2) WHERE name = ?1"
            }
            Counter::Otp => {
                "UPDATE credentials SET otp_failures = otp_failures + 1,
                                        otp_locked = (otp_failures + 1 >= ?2) WHERE id = ?1"
            }
            Counter::AccountCode => {
                "UPDATE users SET account_otp_failures = account_otp_failures + 1,
                                  account_otp_locked = (account_otp_failures + 1 >= ?2)
                 WHERE name = ?1"
            }
        }
    }

    fn success_sql(self) -> &'static str {
        match self {
            Counter::Password => "UPDATE users SET login_failures = 0 WHERE name = ?1",
            Counter::Pin => "UPDATE users SET pin_failures = 0 WHERE name = ?1",
            Counter::Otp => "UPDATE credentials SET otp_failures = 0 WHERE id = ?1",
            Counter::AccountCode => "UPDATE users SET account_otp_failures = 0 WHERE name = ?1",
        }
    }
}

/// Whether the secret is locked. An unknown key reads as not locked (the callers look it up first).
pub fn locked(conn: &Connection, counter: Counter, key: &str) -> rusqlite::Result<bool> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(counter.locked_sql())?
        .query_row([key], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// One more consecutive failure; the one that reaches `max` locks.
pub fn failure(conn: &Connection, counter: Counter, key: &str, max: u32) -> rusqlite::Result<()> {
    conn.prepare_cached(counter.failure_sql())?
        .execute(params![key, max])?;
    Ok(())
}

/// A success: the count of consecutive failures starts again (a lock stays).
pub fn success(conn: &Connection, counter: Counter, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(counter.success_sql())?.execute([key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn fill(conn: &Connection) {
        for user in ["alice", "bob"] {
            conn.execute(
                "INSERT INTO users (name, position, display_name, password_hash, pin_hash)
                 VALUES (?1, 0, ?1, 'x', 'x')",
                [user],
            )
            .unwrap();
        }
        for (id, user) in [("alice-1", "alice"), ("alice-2", "alice")] {
            conn.execute(
                "INSERT INTO credentials (id, position, user, label, key_kind, otp_kind, scal,
                                          multisign, key_label, certificate)
                 VALUES (?1, 0, ?2, ?1, 'ec-p256', 'totp', 1, 1, ?1, x'00')",
                [id, user],
            )
            .unwrap();
        }
    }

    #[test]
    fn the_failure_that_reaches_max_locks_and_success_resets_only_the_count() {
        for (counter, key, other) in [
            (Counter::Password, "alice", "bob"),
            (Counter::Pin, "alice", "bob"),
            (Counter::AccountCode, "alice", "bob"),
            (Counter::Otp, "alice-1", "alice-2"),
        ] {
            let db = Db::in_memory();
            let conn = db.lock();
            fill(&conn);
            failure(&conn, counter, key, 3).unwrap();
            failure(&conn, counter, key, 3).unwrap();
            // A success in between starts the count again.
            success(&conn, counter, key).unwrap();
            failure(&conn, counter, key, 3).unwrap();
            failure(&conn, counter, key, 3).unwrap();
            assert!(!locked(&conn, counter, key).unwrap(), "{counter:?}");
            failure(&conn, counter, key, 3).unwrap();
            assert!(locked(&conn, counter, key).unwrap(), "{counter:?}");
            // Nothing unlocks, and the neighbour is untouched.
            success(&conn, counter, key).unwrap();
            assert!(locked(&conn, counter, key).unwrap(), "{counter:?}");
            assert!(!locked(&conn, counter, other).unwrap(), "{counter:?}");
            // The other counters of the same user or credential are untouched too.
            for c in [
                Counter::Password,
                Counter::Pin,
                Counter::AccountCode,
                Counter::Otp,
            ] {
                let k = if c == Counter::Otp {
                    "alice-1"
                } else {
                    "alice"
                };
                if c != counter {
                    assert!(!locked(&conn, c, k).unwrap(), "{counter:?} locked {c:?}");
                }
            }
        }
    }
}
