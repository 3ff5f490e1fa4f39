//! The audit trail, `STATE/audit.jsonl`: one JSON line per security-relevant event (logins, identities,
//! signatures, refusals), each carrying the SHA-256 of the previous line, so that altering, inserting,
//! reordering or removing any line but the newest shows up in `audit-verify`. No line holds a secret:
//! digests are the public values to be signed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    pub event: String,
    pub identity: Option<String>,
    pub digest: Option<String>,
    /// "ok" or the status and description the client got.
    pub outcome: String,
    pub detail: Option<String>,
    /// Hex SHA-256 of the previous line ("0"×64 for the first).
    pub prev: String,
}

pub struct Audit {
    path: PathBuf,
    /// (sequence number, hash) of the newest line; one writer at a time.
    last: Mutex<(u64, String)>,
}

fn hash_line(line: &str) -> String {
    base16ct::lower::encode_string(&Sha256::digest(line.as_bytes()))
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Audit {
    /// Opens the trail, continuing the chain of what is there.
    pub fn open(path: &Path) -> Result<Audit, String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let last = match text.lines().last() {
            Some(line) => {
                let e: Entry = serde_json::from_str(line)
                    .map_err(|e| format!("{}: last line unreadable: {e}", path.display()))?;
                (e.seq, hash_line(line))
            }
            None => (0, GENESIS.to_owned()),
        };
        Ok(Audit {
            path: path.to_path_buf(),
            last: Mutex::new(last),
        })
    }

    /// Appends one event. A trail that cannot be written is logged: the service keeps serving.
    pub fn record(
        &self,
        event: &str,
        identity: Option<&str>,
        digest: Option<&str>,
        outcome: &str,
        detail: Option<&str>,
    ) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let entry = Entry {
            seq: last.0 + 1,
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            event: event.to_owned(),
            identity: identity.map(str::to_owned),
            digest: digest.map(str::to_owned),
            outcome: outcome.to_owned(),
            detail: detail.map(str::to_owned),
            prev: last.1.clone(),
        };
        let Ok(line) = serde_json::to_string(&entry) else {
            return;
        };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{line}"));
        match written {
            Ok(()) => *last = (entry.seq, hash_line(&line)),
            Err(e) => log::error!("audit trail {}: {e}", self.path.display()),
        }
    }
}

/// Checks the chain: `Ok(lines)` or the first line that does not fit.
pub fn verify(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut prev = GENESIS.to_owned();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let e: Entry = serde_json::from_str(line)
            .map_err(|_| format!("line {}: not an audit entry", i + 1))?;
        if e.seq != n + 1 {
            return Err(format!("line {}: sequence {} after {n}", i + 1, e.seq));
        }
        if e.prev != prev {
            return Err(format!("line {}: does not link to the line before", i + 1));
        }
        prev = hash_line(line);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_shows_every_change_but_to_the_newest_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.jsonl");
        let a = Audit::open(&p).unwrap();
        for i in 0..4 {
            a.record("sign", Some("id1"), Some(&format!("{i:064}")), "ok", None);
        }
        drop(a);
        // A reopened trail continues the chain.
        Audit::open(&p)
            .unwrap()
            .record("login", None, None, "ok", None);
        assert_eq!(verify(&p).unwrap(), 5);
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let tampered = [
            lines[1].replace("\"ok\"", "\"refused\""),
            lines[0].to_owned(),
        ];
        for (i, edit) in tampered.iter().enumerate() {
            let mut l = lines.clone();
            l[i + 1] = edit;
            std::fs::write(&p, l.join("\n") + "\n").unwrap();
            assert!(verify(&p).is_err(), "edit {i} went unnoticed");
        }
        let mut l = lines.clone();
        l.remove(2);
        std::fs::write(&p, l.join("\n") + "\n").unwrap();
        assert!(verify(&p).unwrap_err().contains("sequence"));
    }
}
