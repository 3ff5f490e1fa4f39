//! The one SQLite connection all requests share, and group commit: the writes of concurrent requests
//! go into one open transaction, and one COMMIT makes all of them durable at once, instead of one
//! commit per statement and request.
//!
//! - `lock`: the connection, for reads and for writes that the same request's later `write` covers
//!   (they join the open transaction, if there is one).
//! - `write_pending`: writes that join the open transaction (opening one) and return at once; the
//!   caller must end with `write`, which makes them durable (`signHash` spends the SAD this way
//!   before signing, and its audit entry commits both).
//! - `write`: the same, then waits until that transaction is committed. Whoever writes last commits:
//!   while other `write` callers are on their way to the connection, the transaction waits for them
//!   (at most `MAX_GROUP_AGE`, `MAX_GROUP_WRITES`). Transactions commit in order, so a committed
//!   `write` means every earlier change is committed too.
//!
//! A failed COMMIT rolls the transaction back and leaves the database refusing every later `write`
//! (a change a client was not yet told about may be lost; one it was told about never is): the
//! service needs a restart.

use rusqlite::Connection;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A transaction waiting for more writers commits when it has this many writes ...
const MAX_GROUP_WRITES: usize = 256;
/// ... or is this old.
const MAX_GROUP_AGE: Duration = Duration::from_millis(2);

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("an earlier commit failed ({0}); the service must be restarted")]
    CommitFailed(String),
}

impl From<WriteError> for crate::error::CscError {
    fn from(e: WriteError) -> crate::error::CscError {
        crate::error::CscError::internal("database", e)
    }
}

pub struct Db {
    state: Mutex<State>,
    committed: Condvar,
    /// `write` callers on their way to the connection.
    joining: AtomicUsize,
}

struct State {
    conn: Connection,
    open: Option<Group>,
    next: u64,
    /// The newest committed transaction.
    durable: u64,
    failed: Option<String>,
}

struct Group {
    number: u64,
    opened: Instant,
    writes: usize,
}

/// The locked connection.
pub struct Conn<'a>(MutexGuard<'a, State>);

impl Deref for Conn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0.conn
    }
}

/// Counts a `write` caller as joining until it holds the connection (also when it unwinds).
struct Joining<'a>(&'a AtomicUsize);

impl Drop for Joining<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl State {
    /// The number of the open transaction, opening one if there is none.
    fn join(&mut self) -> Result<u64, WriteError> {
        if let Some(e) = &self.failed {
            return Err(WriteError::CommitFailed(e.clone()));
        }
        if self.open.is_none() {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.next += 1;
            self.open = Some(Group {
                number: self.next,
                opened: Instant::now(),
                writes: 0,
            });
        }
        let group = self.open.as_mut().expect("a transaction is open");
        group.writes += 1;
        Ok(group.number)
    }

    fn commit(&mut self) {
        let Some(group) = self.open.take() else {
            return;
        };
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => self.durable = group.number,
            Err(e) => {
                log::error!("database commit failed: {e}");
                let _ = self.conn.execute_batch("ROLLBACK");
                self.failed = Some(e.to_string());
            }
        }
    }
}

impl Db {
    pub fn new(conn: Connection) -> Db {
        Db {
            state: Mutex::new(State {
                conn,
                open: None,
                next: 0,
                durable: 0,
                failed: None,
            }),
            committed: Condvar::new(),
            joining: AtomicUsize::new(0),
        }
    }

    /// A panic while the connection was held leaves SQLite consistent (each change is a statement
    /// or a savepoint), so a poisoned lock is taken over.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, inside the open transaction if there is one.
    pub fn lock(&self) -> Conn<'_> {
        Conn(self.state())
    }

    /// Runs `f` in the open transaction and returns without waiting for its commit: a later
    /// `write` of the same request makes it durable.
    pub fn write_pending<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, WriteError> {
        let mut s = self.state();
        s.join()?;
        Ok(f(&mut s.conn)?)
    }

    /// Runs `f` in the open transaction and returns once it is committed, with every change made
    /// before it.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, WriteError> {
        self.joining.fetch_add(1, Ordering::SeqCst);
        let joining = Joining(&self.joining);
        let mut s = self.state();
        drop(joining);
        let mine = s.join()?;
        let result = f(&mut s.conn);
        loop {
            if s.durable >= mine {
                return Ok(result?);
            }
            if let Some(e) = &s.failed {
                return Err(WriteError::CommitFailed(e.clone()));
            }
            let due = s.open.as_ref().is_some_and(|g| {
                g.number == mine
                    && (self.joining.load(Ordering::SeqCst) == 0
                        || g.writes >= MAX_GROUP_WRITES
                        || g.opened.elapsed() >= MAX_GROUP_AGE)
            });
            if due {
                s.commit();
                self.committed.notify_all();
                continue;
            }
            // Someone joining will commit; the timeout re-checks the age in case they do not.
            s = self
                .committed
                .wait_timeout(s, MAX_GROUP_AGE / 2)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(path: &std::path::Path) -> Db {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL);",
        )
        .unwrap();
        Db::new(conn)
    }

    /// What another process sees: committed rows only.
    fn committed_rows(path: &std::path::Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_write_is_committed_when_it_returns_and_covers_pending_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = db(&path);
        db.write_pending(|c| c.execute("INSERT INTO t VALUES (1)", []))
            .unwrap();
        // Visible on the connection, not yet to anyone else.
        let own: i64 = db
            .lock()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!((own, committed_rows(&path)), (1, 0));
        db.write(|c| c.execute("INSERT INTO t VALUES (2)", []))
            .unwrap();
        assert_eq!(committed_rows(&path), 2);
        // A failing statement fails its caller only; the transaction goes on.
        assert!(db
            .write(|c| c.execute("INSERT INTO t VALUES (NULL)", []))
            .is_err());
        db.write(|c| c.execute("INSERT INTO t VALUES (3)", []))
            .unwrap();
        assert_eq!(committed_rows(&path), 3);
    }

    #[test]
    fn concurrent_writers_share_commits_and_each_returns_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = db(&path);
        let (threads, each) = (8, 200);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..each {
                        db.write_pending(|c| c.execute("INSERT INTO t VALUES (0)", []))
                            .unwrap();
                        let n = db
                            .write(|c| c.execute("INSERT INTO t VALUES (1)", []))
                            .unwrap();
                        assert_eq!(n, 1);
                        // Everything this thread wrote is committed by now.
                        let durable = db.state().durable;
                        assert!(durable >= 1);
                    }
                });
            }
        });
        assert_eq!(committed_rows(&path), threads * each * 2);
        // Fewer commits than writes: the writers shared transactions.
        let commits = db.state().durable;
        assert!(
            commits < (threads * each) as u64,
            "{commits} commits for {} writes",
            threads * each
        );
    }

    #[test]
    fn a_failed_commit_refuses_every_later_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = db(&path);
        // A deferred foreign key violation makes COMMIT fail.
        db.lock()
            .execute_batch(
                "PRAGMA foreign_keys = ON;
                 CREATE TABLE p (id INTEGER PRIMARY KEY);
                 CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);",
            )
            .unwrap();
        let r = db.write(|c| c.execute("INSERT INTO c VALUES (42)", []));
        assert!(matches!(r, Err(WriteError::CommitFailed(_))), "{r:?}");
        assert!(matches!(
            db.write(|c| c.execute("INSERT INTO t VALUES (1)", [])),
            Err(WriteError::CommitFailed(_))
        ));
        assert!(db
            .write_pending(|c| c.execute("INSERT INTO t VALUES (1)", []))
            .is_err());
        assert_eq!(committed_rows(&path), 0);
    }
}
