//! The reference service's audit trail (`STATE/state.db`, table `audit`), read-only: what the service
//! really did — authorizations granted and refused, signatures made — as the oracle for what the module
//! claims.

use crate::service::Service;
use std::path::Path;
use std::time::Duration;

/// One entry of a service's audit trail.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub seq: i64,
    /// RFC 3339, seconds.
    pub time: String,
    pub event: String,
    pub user: Option<String>,
    pub credential: Option<String>,
    /// JSON array of the hex hashes the request named.
    pub hashes: String,
    /// "ok", or the error the client got.
    pub outcome: String,
    pub detail: Option<String>,
}

impl AuditEntry {
    pub fn ok(&self) -> bool {
        self.outcome == "ok"
    }

    /// The hashes the request named, hex.
    pub fn hash_list(&self) -> Vec<String> {
        serde_json::from_str(&self.hashes).unwrap_or_default()
    }
}

/// The audit entries of `event` (e.g. "credentials/authorize") in the state folder's database, oldest
/// first, read without changing anything (the service may be running).
pub fn audit_entries(state: &Path, event: &str) -> Vec<AuditEntry> {
    let db = rusqlite::Connection::open_with_flags(
        state.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open state.db read-only");
    db.busy_timeout(Duration::from_secs(10))
        .expect("set the busy timeout");
    let mut stmt = db
        .prepare(
            "SELECT seq, time, event, user, credential, hashes, outcome, detail FROM audit \
             WHERE event = ?1 ORDER BY seq",
        )
        .expect("prepare the audit query");
    let rows = stmt
        .query_map([event], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                time: r.get(1)?,
                event: r.get(2)?,
                user: r.get(3)?,
                credential: r.get(4)?,
                hashes: r.get(5)?,
                outcome: r.get(6)?,
                detail: r.get(7)?,
            })
        })
        .expect("query the audit trail");
    rows.map(|r| r.expect("audit row")).collect()
}

impl Service {
    /// This service's audit entries of `event`; see [`audit_entries`].
    pub fn audit(&self, event: &str) -> Vec<AuditEntry> {
        audit_entries(&self.state, event)
    }

    /// The entries of `event` for `credential`, oldest first.
    pub fn audit_of(&self, event: &str, credential: &str) -> Vec<AuditEntry> {
        self.audit(event)
            .into_iter()
            .filter(|a| a.credential.as_deref() == Some(credential))
            .collect()
    }

    /// `credentials/authorize` entries for `credential`, granted and refused.
    pub fn authorizations(&self, credential: &str) -> Vec<AuditEntry> {
        self.audit_of("credentials/authorize", credential)
    }

    /// The authorizations the service granted for `credential` (not refused ones).
    pub fn granted(&self, credential: &str) -> usize {
        self.authorizations(credential)
            .iter()
            .filter(|a| a.ok())
            .count()
    }

    /// The signatures the service made with `credential` (`signatures/signHash` that succeeded), one
    /// entry per request; each names the hashes it signed.
    pub fn signatures_made(&self, credential: &str) -> Vec<AuditEntry> {
        self.audit_of("signatures/signHash", credential)
            .into_iter()
            .filter(AuditEntry::ok)
            .collect()
    }
}
