//! The audit trail: one row per security-relevant event, chained by SHA-256 so that altering, inserting,
//! reordering or removing any row but the newest shows up in `csc-server audit-verify`.
//!
//! entry_hash(n) = SHA-256(entry_hash(n-1) || canonical(n)), entry_hash(0) = 32 zero bytes, where
//! canonical(n) is the JSON array [seq, time, event, user, credential, hashes, outcome, detail] of the
//! stored column values.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;
use sha2::{Digest, Sha256};

const GENESIS: [u8; 32] = [0u8; 32];

/// The audit table, append-only for the service itself (the hash chain catches whoever drops rows).
pub const SCHEMA: &str = r#"
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    time       TEXT NOT NULL,
    event      TEXT NOT NULL,
    user       TEXT,
    credential TEXT,
    hashes     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT,
    prev_hash  BLOB NOT NULL,
    entry_hash BLOB NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// What happened. Never holds a secret: hashes are the public values to be signed.
pub struct Event<'a> {
    pub event: &'a str,
    pub user: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub hashes: &'a [Vec<u8>],
    /// "ok" or the error the client got.
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[allow(clippy::too_many_arguments)]
fn canonical(
    seq: i64,
    time: &str,
    event: &str,
    user: Option<&str>,
    credential: Option<&str>,
    hashes: &str,
    outcome: &str,
    detail: Option<&str>,
) -> Vec<u8> {
    json!([seq, time, event, user, credential, hashes, outcome, detail])
        .to_string()
        .into_bytes()
}

fn chain(prev: &[u8], content: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(content);
    h.finalize().to_vec()
}

/// Appends one entry. Run it on the connection that made the change it records, under the same lock,
/// so the chain has one writer (the service: in `Db::write`, so it is durable before the answer).
pub fn append(conn: &Connection, now: i64, ev: &Event<'_>) -> rusqlite::Result<()> {
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_vec()),
    };
    let time = crate::clock::rfc3339(now);
    let hashes = json!(ev.hashes.iter().map(|h| hex(h)).collect::<Vec<_>>()).to_string();
    let content = canonical(
        seq,
        &time,
        ev.event,
        ev.user,
        ev.credential,
        &hashes,
        ev.outcome,
        ev.detail,
    );
    let entry = chain(&prev, &content);
    conn.prepare_cached(
        "INSERT INTO audit (seq, time, event, user, credential, hashes, outcome, detail, prev_hash, entry_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![seq, time, ev.event, ev.user, ev.credential, hashes, ev.outcome, ev.detail, prev, entry])?;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Ok { entries: u64 },
    Broken { seq: i64, reason: &'static str },
}

pub fn verify(conn: &Connection) -> rusqlite::Result<Verification> {
    let mut stmt = conn.prepare(
        "SELECT seq, time, event, user, credential, hashes, outcome, detail, prev_hash, entry_hash
         FROM audit ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_vec();
    let mut expected_seq = 1i64;
    let mut entries = 0u64;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let time: String = r.get(1)?;
        let event: String = r.get(2)?;
        let user: Option<String> = r.get(3)?;
        let credential: Option<String> = r.get(4)?;
        let hashes: String = r.get(5)?;
        let outcome: String = r.get(6)?;
        let detail: Option<String> = r.get(7)?;
        let prev_hash: Vec<u8> = r.get(8)?;
        let entry_hash: Vec<u8> = r.get(9)?;
        if seq != expected_seq {
            // The entry before this one was removed (or rows were renumbered).
            return Ok(Verification::Broken {
                seq,
                reason: "sequence gap: an entry before it is missing",
            });
        }
        if prev_hash != prev {
            return Ok(Verification::Broken {
                seq,
                reason: "does not link to the previous entry",
            });
        }
        let content = canonical(
            seq,
            &time,
            &event,
            user.as_deref(),
            credential.as_deref(),
            &hashes,
            &outcome,
            detail.as_deref(),
        );
        if chain(&prev, &content) != entry_hash {
            return Ok(Verification::Broken {
                seq,
                reason: "content does not match its hash",
            });
        }
        prev = entry_hash;
        expected_seq += 1;
        entries += 1;
    }
    Ok(Verification::Ok { entries })
}

/// The verdict of `audit-verify` (of every service whose trail is this table) as the command prints
/// it, or the error it fails with.
pub fn verify_report(conn: &Connection) -> Result<String, String> {
    match verify(conn).map_err(|e| format!("reading the audit trail: {e}"))? {
        Verification::Ok { entries } => Ok(format!("audit chain OK ({entries} entries)")),
        Verification::Broken { seq, reason } => {
            Err(format!("audit chain broken at entry {seq}: {reason}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn fill(conn: &Connection, n: usize) {
        for i in 0..n {
            let hashes = vec![vec![i as u8; 32]];
            append(
                conn,
                1_700_000_000 + i as i64,
                &Event {
                    event: "signHash",
                    user: Some("alice"),
                    credential: Some("alice-p256"),
                    hashes: &hashes,
                    outcome: "ok",
                    detail: None,
                },
            )
            .unwrap();
        }
    }

    fn tamper(conn: &Connection, sql: &str) {
        conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            .unwrap();
        conn.execute_batch(sql).unwrap();
    }

    #[test]
    fn intact_chain_verifies() {
        let db = Db::in_memory();
        let conn = db.lock();
        assert_eq!(verify(&conn).unwrap(), Verification::Ok { entries: 0 });
        fill(&conn, 5);
        assert_eq!(verify(&conn).unwrap(), Verification::Ok { entries: 5 });
        let hashes: String = conn
            .query_row("SELECT hashes FROM audit WHERE seq = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(hashes, format!("[\"{}\"]", "01".repeat(32)));
    }

    #[test]
    fn the_report_says_what_audit_verify_prints() {
        let db = Db::in_memory();
        let conn = db.lock();
        fill(&conn, 3);
        assert_eq!(
            verify_report(&conn),
            Ok("audit chain OK (3 entries)".to_owned())
        );
        tamper(&conn, "UPDATE audit SET user = 'bob' WHERE seq = 2");
        assert_eq!(
            verify_report(&conn),
            Err("audit chain broken at entry 2: content does not match its hash".to_owned())
        );
    }

    #[test]
    fn the_service_cannot_rewrite_history() {
        let db = Db::in_memory();
        let conn = db.lock();
        fill(&conn, 2);
        assert!(conn.execute("UPDATE audit SET outcome = 'x'", []).is_err());
        assert!(conn.execute("DELETE FROM audit", []).is_err());
    }

    #[test]
    fn every_kind_of_tampering_is_detected() {
        let cases: &[(&str, i64)] = &[
            ("UPDATE audit SET outcome = 'invalid_pin: Invalid PIN' WHERE seq = 3", 3),
            ("UPDATE audit SET user = 'bob' WHERE seq = 1", 1),
            ("UPDATE audit SET hashes = '[]' WHERE seq = 4", 4),
            ("UPDATE audit SET detail = 'note' WHERE seq = 2", 2),
            ("UPDATE audit SET time = '2000-01-01T00:00:00Z' WHERE seq = 5", 5),
            ("DELETE FROM audit WHERE seq = 3", 4),
            ("DELETE FROM audit WHERE seq = 1", 2),
            // Swapping two entries' contents breaks the links.
            (
                "UPDATE audit SET seq = 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; \
                 UPDATE audit SET seq = 3 WHERE seq = 100;",
                2,
            ),
        ];
        for (sql, first_broken) in cases {
            let db = Db::in_memory();
            let conn = db.lock();
            fill(&conn, 6);
            tamper(&conn, sql);
            match verify(&conn).unwrap() {
                Verification::Broken { seq, .. } => assert_eq!(seq, *first_broken, "{sql}"),
                ok => panic!("tampering not detected ({sql}): {ok:?}"),
            }
        }
    }

    #[test]
    fn recomputing_one_hash_is_not_enough() {
        // An attacker who rewrites an entry and fixes its own hash still breaks the next link.
        let db = Db::in_memory();
        let conn = db.lock();
        fill(&conn, 4);
        let (prev, time): (Vec<u8>, String) = conn
            .query_row("SELECT prev_hash, time FROM audit WHERE seq = 2", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let content = canonical(
            2,
            &time,
            "signHash",
            Some("mallory"),
            Some("alice-p256"),
            "[]",
            "ok",
            None,
        );
        let forged = chain(&prev, &content);
        tamper(&conn, "");
        conn.execute(
            "UPDATE audit SET user = 'mallory', hashes = '[]', entry_hash = ?1 WHERE seq = 2",
            [forged],
        )
        .unwrap();
        assert_eq!(
            verify(&conn).unwrap(),
            Verification::Broken {
                seq: 3,
                reason: "does not link to the previous entry"
            }
        );
    }
}
