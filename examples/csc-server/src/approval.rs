//! Authorization requests that wait for the user's approval (CSC v2 asynchronous `credentials/authorize`).
//!
//! A request is queued with a handle the client polls (`credentials/authorizeCheck`); the user approves
//! or declines it on the approval page before its deadline; an approved request turns into a SAD once,
//! when the client collects it. Only the handle's SHA-256 is stored, and the page names a request by a
//! separate random id, so nothing on the page lets anyone else collect the SAD.
//!
//! States: pending → approved → (collected: row deleted, SAD issued)
//!                 → declined
//!         pending past its deadline, or approved and not collected in time: expired.
//! Declined and expired requests keep answering so for `RETENTION` seconds after their deadline, then
//! they are forgotten (and their handle reads as unknown).

use crate::db::secret_id;
use crate::sad;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

/// Seconds a decided or expired request stays known after its deadline.
pub const RETENTION: i64 = 600;
/// Requests one user may have waiting at once: the page stays readable, and a client looping on
/// `authorize` cannot bury the request the user is looking for.
pub const MAX_PENDING_PER_USER: i64 = 20;

/// What `credentials/authorize` asks the user to approve.
pub struct NewRequest<'a> {
    pub user: &'a str,
    pub credential: &'a str,
    pub num_signatures: u32,
    /// The hash values sent with the request (SCAL 2: one per signature; SCAL 1: any, or none).
    pub hashes: &'a [Vec<u8>],
    /// SCAL 2: the SAD will be bound to `hashes`.
    pub bound: bool,
    pub hash_algo: Option<&'a str>,
    pub description: Option<&'a str>,
    /// Who asked (address and software of the client), for the user to judge.
    pub client: Option<&'a str>,
    /// Seconds the user has to decide.
    pub timeout: i64,
}

pub struct Queued {
    /// Names the request on the approval page and in the audit trail.
    pub id: String,
    /// The client's bearer secret for `authorizeCheck`.
    pub handle: Zeroizing<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// The user has `MAX_PENDING_PER_USER` requests waiting already.
    TooMany,
}

/// A request as the approval page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub credential: String,
    pub num_signatures: u32,
    pub hashes: Vec<Vec<u8>>,
    pub bound: bool,
    pub hash_algo: Option<String>,
    pub description: Option<String>,
    pub client: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideError {
    /// No such request, or another user's.
    Unknown,
    AlreadyDecided,
    Expired,
}

/// The answer to a poll.
#[derive(Debug)]
pub enum Checked {
    Pending {
        id: String,
    },
    /// Approved and now collected: the request is gone, the SAD exists.
    Granted {
        issued: sad::Issued,
        id: String,
        credential: String,
    },
    Declined {
        id: String,
        credential: String,
    },
    Expired {
        id: String,
        credential: String,
    },
    /// Unknown, already collected, forgotten, or another user's.
    Unknown,
}

fn purge(conn: &Connection, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM approvals WHERE expires_at + ?1 <= ?2",
        params![RETENTION, now],
    )?;
    Ok(())
}

pub fn queue(
    conn: &mut Connection,
    req: &NewRequest<'_>,
    now: i64,
) -> rusqlite::Result<Result<Queued, QueueError>> {
    let tx = conn.savepoint()?;
    purge(&tx, now)?;
    let waiting: i64 = tx.query_row(
        "SELECT count(*) FROM approvals WHERE user = ?1 AND state = 'pending' AND expires_at > ?2",
        params![req.user, now],
        |r| r.get(0),
    )?;
    if waiting >= MAX_PENDING_PER_USER {
        return Ok(Err(QueueError::TooMany));
    }
    let id = URL_SAFE_NO_PAD.encode(crate::random::bytes::<16>().as_ref());
    let handle = crate::random::token();
    tx.execute(
        "INSERT INTO approvals (id, handle, user, credential, num_signatures, bound, hash_algo,
                                description, client, created_at, expires_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending')",
        params![
            id,
            secret_id(&handle),
            req.user,
            req.credential,
            req.num_signatures,
            req.bound,
            req.hash_algo,
            req.description,
            req.client,
            now,
            now + req.timeout
        ],
    )?;
    for (i, h) in req.hashes.iter().enumerate() {
        tx.execute(
            "INSERT INTO approval_hashes (approval, idx, value) VALUES (?1, ?2, ?3)",
            params![id, i as i64, h],
        )?;
    }
    tx.commit()?;
    Ok(Ok(Queued { id, handle }))
}

const REQUEST_COLUMNS: &str =
    "id, credential, num_signatures, bound, hash_algo, description, client, \
                               created_at, expires_at";

/// The `REQUEST_COLUMNS` of a row, starting at column `at`; the hashes are loaded apart.
fn request_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Request> {
    Ok(Request {
        id: r.get(at)?,
        credential: r.get(at + 1)?,
        num_signatures: r.get(at + 2)?,
        bound: r.get(at + 3)?,
        hash_algo: r.get(at + 4)?,
        description: r.get(at + 5)?,
        client: r.get(at + 6)?,
        created_at: r.get(at + 7)?,
        expires_at: r.get(at + 8)?,
        hashes: Vec::new(),
    })
}

/// Owner, state and request of the row `key_column = key`.
fn load_owned(
    conn: &Connection,
    key_column: &str,
    key: &dyn rusqlite::ToSql,
) -> rusqlite::Result<Option<(String, String, Request)>> {
    conn.query_row(
        &format!("SELECT user, state, {REQUEST_COLUMNS} FROM approvals WHERE {key_column} = ?1"),
        [key],
        |r| Ok((r.get(0)?, r.get(1)?, request_at(r, 2)?)),
    )
    .optional()
}

fn load_hashes(conn: &Connection, id: &str) -> rusqlite::Result<Vec<Vec<u8>>> {
    let mut stmt =
        conn.prepare("SELECT value FROM approval_hashes WHERE approval = ?1 ORDER BY idx")?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    rows.collect()
}

/// The user's requests that wait for a decision, oldest first.
pub fn pending_of(conn: &Connection, user: &str, now: i64) -> rusqlite::Result<Vec<Request>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {REQUEST_COLUMNS} FROM approvals
         WHERE user = ?1 AND state = 'pending' AND expires_at > ?2 ORDER BY created_at, rowid"
    ))?;
    let mut out: Vec<Request> = stmt
        .query_map(params![user, now], |r| request_at(r, 0))?
        .collect::<rusqlite::Result<_>>()?;
    for r in &mut out {
        r.hashes = load_hashes(conn, &r.id)?;
    }
    Ok(out)
}

/// The user's decision on request `id`. An approved request can be collected for `collect_window`
/// seconds. Returns the request decided on.
pub fn decide(
    conn: &mut Connection,
    user: &str,
    id: &str,
    decision: Decision,
    collect_window: i64,
    now: i64,
) -> rusqlite::Result<Result<Request, DecideError>> {
    let tx = conn.savepoint()?;
    let row = load_owned(&tx, "id", &id)?;
    let mut req = match row {
        Some((owner, _, _)) if owner != user => return Ok(Err(DecideError::Unknown)),
        None => return Ok(Err(DecideError::Unknown)),
        Some((_, state, _)) if state != "pending" => return Ok(Err(DecideError::AlreadyDecided)),
        Some((_, _, req)) if req.expires_at <= now => return Ok(Err(DecideError::Expired)),
        Some((_, _, req)) => req,
    };
    match decision {
        Decision::Approve => tx.execute(
            "UPDATE approvals SET state = 'approved', decided_at = ?2, expires_at = ?3 WHERE id = ?1",
            params![id, now, now + collect_window],
        )?,
        Decision::Decline => tx.execute(
            "UPDATE approvals SET state = 'declined', decided_at = ?2 WHERE id = ?1",
            params![id, now],
        )?,
    };
    req.hashes = load_hashes(&tx, id)?;
    tx.commit()?;
    Ok(Ok(req))
}

/// A poll with `handle` by `user`. An approved request becomes a SAD valid for `sad_lifetime(its
/// credential)` seconds, in the same transaction that forgets the request, so it is collected exactly
/// once.
pub fn check(
    conn: &mut Connection,
    handle: &str,
    user: &str,
    sad_lifetime: &dyn Fn(&str) -> i64,
    now: i64,
) -> rusqlite::Result<Checked> {
    let tx = conn.savepoint()?;
    purge(&tx, now)?;
    let row = load_owned(&tx, "handle", &secret_id(handle))?;
    let (state, req) = match row {
        Some((owner, state, req)) if owner == user => (state, req),
        _ => {
            tx.commit()?;
            return Ok(Checked::Unknown);
        }
    };
    let checked = match state.as_str() {
        "declined" => Checked::Declined {
            id: req.id,
            credential: req.credential,
        },
        _ if req.expires_at <= now => Checked::Expired {
            id: req.id,
            credential: req.credential,
        },
        "approved" => {
            let hashes = load_hashes(&tx, &req.id)?;
            let grant = sad::Grant {
                user,
                credential: &req.credential,
                num_signatures: req.num_signatures,
                bound_hashes: req.bound.then_some(hashes.as_slice()),
                hash_algo: req.hash_algo.as_deref(),
                lifetime: sad_lifetime(&req.credential),
            };
            let issued = sad::issue_in(&tx, &grant, now)?;
            tx.execute("DELETE FROM approvals WHERE id = ?1", [&req.id])?;
            Checked::Granted {
                issued,
                id: req.id,
                credential: req.credential,
            }
        }
        _ => Checked::Pending { id: req.id },
    };
    tx.commit()?;
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    const T0: i64 = 1_000_000;

    fn h(b: u8) -> Vec<u8> {
        vec![b; 32]
    }

    fn new_request<'a>(user: &'a str, hashes: &'a [Vec<u8>], bound: bool) -> NewRequest<'a> {
        NewRequest {
            user,
            credential: "alice-p256-approve",
            num_signatures: hashes.len().max(1) as u32,
            hashes,
            bound,
            hash_algo: Some("2.16.840.1.101.3.4.2.1"),
            description: Some("Sign contract.pdf"),
            client: Some("127.0.0.1, test"),
            timeout: 120,
        }
    }

    fn queue_ok(conn: &mut Connection, req: &NewRequest<'_>, now: i64) -> Queued {
        queue(conn, req, now).unwrap().unwrap()
    }

    fn use_sad<'a>(sad: &'a str, hashes: &'a [Vec<u8>]) -> sad::Use<'a> {
        sad::Use {
            sad,
            user: "alice",
            credential: "alice-p256-approve",
            hashes,
            hash_algo: Some("2.16.840.1.101.3.4.2.1"),
        }
    }

    #[test]
    fn approved_request_is_collected_once_as_a_bound_sad() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let hashes = [h(1), h(2)];
        let q = queue_ok(&mut conn, &new_request("alice", &hashes, true), T0);
        assert_ne!(q.id, *q.handle, "the page id is not the handle");
        assert!(matches!(
            check(&mut conn, &q.handle, "alice", &|_| 300, T0 + 1).unwrap(),
            Checked::Pending { .. }
        ));

        let shown = pending_of(&conn, "alice", T0 + 2).unwrap();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].id, q.id);
        assert_eq!(shown[0].hashes, hashes);
        assert_eq!(shown[0].description.as_deref(), Some("Sign contract.pdf"));
        assert_eq!(shown[0].expires_at, T0 + 120);
        assert!(pending_of(&conn, "bob", T0 + 2).unwrap().is_empty());

        let decided = decide(&mut conn, "alice", &q.id, Decision::Approve, 60, T0 + 10)
            .unwrap()
            .unwrap();
        assert_eq!(decided.hashes, hashes);
        assert!(pending_of(&conn, "alice", T0 + 11).unwrap().is_empty());
        // Deciding twice is refused.
        assert_eq!(
            decide(&mut conn, "alice", &q.id, Decision::Decline, 60, T0 + 11).unwrap(),
            Err(DecideError::AlreadyDecided)
        );

        let sad = match check(&mut conn, &q.handle, "alice", &|_| 300, T0 + 12).unwrap() {
            Checked::Granted {
                issued,
                id,
                credential,
            } => {
                assert_eq!(id, q.id);
                assert_eq!(credential, "alice-p256-approve");
                assert_eq!(issued.expires_in, 300);
                issued.sad
            }
            other => panic!("{other:?}"),
        };
        // Collected: the handle is spent.
        assert!(matches!(
            check(&mut conn, &q.handle, "alice", &|_| 300, T0 + 13).unwrap(),
            Checked::Unknown
        ));
        // The SAD signs exactly the approved hashes.
        assert_eq!(
            sad::consume(&mut conn, &use_sad(&sad, &[h(9)]), T0 + 14).unwrap(),
            Err(sad::SadError::NotAuthorized)
        );
        assert_eq!(
            sad::consume(&mut conn, &use_sad(&sad, &hashes), T0 + 14).unwrap(),
            Ok(())
        );
    }

    #[test]
    fn unbound_request_grants_a_batch() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let mut req = new_request("alice", &[], false);
        req.num_signatures = 60;
        req.hash_algo = None;
        let q = queue_ok(&mut conn, &req, T0);
        decide(&mut conn, "alice", &q.id, Decision::Approve, 60, T0 + 1)
            .unwrap()
            .unwrap();
        let Checked::Granted { issued, .. } =
            check(&mut conn, &q.handle, "alice", &|_| 300, T0 + 2).unwrap()
        else {
            panic!("not granted");
        };
        let sixty: Vec<Vec<u8>> = (0..60).map(|i| h(i as u8)).collect();
        let mut u = use_sad(&issued.sad, &sixty);
        u.hash_algo = None;
        assert_eq!(sad::consume(&mut conn, &u, T0 + 3).unwrap(), Ok(()));
    }

    #[test]
    fn declined_request_answers_declined_until_forgotten() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let hashes = [h(1)];
        let q = queue_ok(&mut conn, &new_request("alice", &hashes, true), T0);
        decide(&mut conn, "alice", &q.id, Decision::Decline, 60, T0 + 5)
            .unwrap()
            .unwrap();
        for t in [T0 + 6, T0 + 119, T0 + 120 + RETENTION - 1] {
            assert!(
                matches!(
                    check(&mut conn, &q.handle, "alice", &|_| 300, t).unwrap(),
                    Checked::Declined { .. }
                ),
                "at {t}"
            );
        }
        assert!(matches!(
            check(
                &mut conn,
                &q.handle,
                "alice",
                &|_| 300,
                T0 + 120 + RETENTION
            )
            .unwrap(),
            Checked::Unknown
        ));
        assert_eq!(
            decide(&mut conn, "alice", &q.id, Decision::Approve, 60, T0 + 7).unwrap(),
            Err(DecideError::Unknown),
            "forgotten"
        );
    }

    #[test]
    fn deadlines_expire_pending_and_uncollected_requests() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let hashes = [h(1)];
        // Not decided in time.
        let late = queue_ok(&mut conn, &new_request("alice", &hashes, true), T0);
        assert!(matches!(
            check(&mut conn, &late.handle, "alice", &|_| 300, T0 + 119).unwrap(),
            Checked::Pending { .. }
        ));
        assert!(matches!(
            check(&mut conn, &late.handle, "alice", &|_| 300, T0 + 120).unwrap(),
            Checked::Expired { .. }
        ));
        assert!(pending_of(&conn, "alice", T0 + 120).unwrap().is_empty());
        assert_eq!(
            decide(
                &mut conn,
                "alice",
                &late.id,
                Decision::Approve,
                60,
                T0 + 120
            )
            .unwrap(),
            Err(DecideError::Expired)
        );
        // Approved but not collected within the window.
        let slow = queue_ok(&mut conn, &new_request("alice", &hashes, true), T0);
        decide(
            &mut conn,
            "alice",
            &slow.id,
            Decision::Approve,
            60,
            T0 + 100,
        )
        .unwrap()
        .unwrap();
        // The collection window runs from the approval, past the decision deadline.
        let ok = queue_ok(&mut conn, &new_request("alice", &hashes, true), T0);
        decide(&mut conn, "alice", &ok.id, Decision::Approve, 60, T0 + 100)
            .unwrap()
            .unwrap();
        assert!(matches!(
            check(&mut conn, &ok.handle, "alice", &|_| 300, T0 + 159).unwrap(),
            Checked::Granted { .. }
        ));
        assert!(matches!(
            check(&mut conn, &slow.handle, "alice", &|_| 300, T0 + 160).unwrap(),
            Checked::Expired { .. }
        ));
    }

    #[test]
    fn only_the_owner_sees_checks_and_decides() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let hashes = [h(1)];
        let q = queue_ok(&mut conn, &new_request("alice", &hashes, true), T0);
        assert!(matches!(
            check(&mut conn, &q.handle, "bob", &|_| 300, T0 + 1).unwrap(),
            Checked::Unknown
        ));
        assert!(matches!(
            check(&mut conn, "made-up handle", "alice", &|_| 300, T0 + 1).unwrap(),
            Checked::Unknown
        ));
        assert_eq!(
            decide(&mut conn, "bob", &q.id, Decision::Approve, 60, T0 + 1).unwrap(),
            Err(DecideError::Unknown)
        );
        assert_eq!(
            decide(
                &mut conn,
                "alice",
                "no-such-id",
                Decision::Approve,
                60,
                T0 + 1
            )
            .unwrap(),
            Err(DecideError::Unknown)
        );
        // The id is not a handle.
        assert!(matches!(
            check(&mut conn, &q.id, "alice", &|_| 300, T0 + 1).unwrap(),
            Checked::Unknown
        ));
        assert!(matches!(
            check(&mut conn, &q.handle, "alice", &|_| 300, T0 + 1).unwrap(),
            Checked::Pending { .. }
        ));
        // The handle is not stored in the clear.
        let stored: i64 = conn
            .query_row(
                "SELECT count(*) FROM approvals WHERE handle = ?1",
                [q.handle.as_bytes()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0);
    }

    #[test]
    fn the_queue_per_user_is_bounded() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let hashes = [h(1)];
        for _ in 0..MAX_PENDING_PER_USER {
            queue_ok(&mut conn, &new_request("alice", &hashes, true), T0);
        }
        assert_eq!(
            queue(&mut conn, &new_request("alice", &hashes, true), T0)
                .unwrap()
                .err(),
            Some(QueueError::TooMany)
        );
        // Other users are not affected, and expired requests do not count.
        queue_ok(&mut conn, &new_request("bob", &hashes, true), T0);
        queue_ok(&mut conn, &new_request("alice", &hashes, true), T0 + 120);
    }
}
