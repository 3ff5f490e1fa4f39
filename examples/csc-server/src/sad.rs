//! Signature Activation Data: what `credentials/authorize` grants and `signatures/signHash` spends.
//! A SAD is bound to its user and credential, expires, counts down one per signature, and under SCAL 2
//! authorizes exactly the hash values given at authorization, each once. Only its SHA-256 is stored.

use crate::db::secret_id;
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

pub struct Issued {
    pub sad: Zeroizing<String>,
    pub expires_in: i64,
}

/// Leaves the SAD out: it is a bearer secret.
impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SadError {
    /// Unknown, expired, used up, or another user's or credential's.
    Expired,
    /// Valid, with fewer signatures left than asked for.
    TooFew,
    /// SCAL 2: a hash that was not authorized, or already signed.
    NotAuthorized,
}

/// What `authorize` grants.
pub struct Grant<'a> {
    pub user: &'a str,
    pub credential: &'a str,
    pub num_signatures: u32,
    /// SCAL 2: the hash values, one per signature.
    pub bound_hashes: Option<&'a [Vec<u8>]>,
    pub hash_algo: Option<&'a str>,
    pub lifetime: i64,
}

pub fn issue(conn: &mut Connection, grant: &Grant<'_>, now: i64) -> rusqlite::Result<Issued> {
    let tx = conn.savepoint()?;
    let issued = issue_in(&tx, grant, now)?;
    tx.commit()?;
    Ok(issued)
}

/// `issue` inside the caller's transaction, so that the SAD and the change that grants it (an approved
/// request being collected) land together or not at all.
pub fn issue_in(tx: &Connection, grant: &Grant<'_>, now: i64) -> rusqlite::Result<Issued> {
    let sad = crate::random::token();
    let id = secret_id(&sad);
    // Spent and expired SADs are of no use to anyone; drop them as new ones come.
    tx.execute(
        "DELETE FROM sads WHERE expires_at <= ?1 OR remaining <= 0",
        [now],
    )?;
    tx.execute(
        "INSERT INTO sads (hash, user, credential, remaining, expires_at, hash_algo, bound)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            grant.user,
            grant.credential,
            grant.num_signatures,
            now + grant.lifetime,
            grant.hash_algo,
            grant.bound_hashes.is_some()
        ],
    )?;
    if let Some(hashes) = grant.bound_hashes {
        for (i, h) in hashes.iter().enumerate() {
            tx.execute(
                "INSERT INTO sad_hashes (sad, idx, value) VALUES (?1, ?2, ?3)",
                params![id, i as i64, h],
            )?;
        }
    }
    Ok(Issued {
        sad,
        expires_in: grant.lifetime,
    })
}

/// The use a signHash (or extendTransaction) makes of a SAD.
pub struct Use<'a> {
    pub sad: &'a str,
    pub user: &'a str,
    pub credential: &'a str,
    pub hashes: &'a [Vec<u8>],
    /// The hash algorithm of the signature operation, when known.
    pub hash_algo: Option<&'a str>,
}

struct Row {
    remaining: i64,
    bound: bool,
    hash_algo: Option<String>,
}

fn load(conn: &Connection, u: &Use<'_>, now: i64) -> rusqlite::Result<Result<Row, SadError>> {
    let row: Option<(String, String, i64, i64, Option<String>, bool)> = conn
        .prepare_cached(
            "SELECT user, credential, remaining, expires_at, hash_algo, bound FROM sads WHERE hash = ?1",
        )?
        .query_row([secret_id(u.sad)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()?;
    Ok(match row {
        Some((user, cred, remaining, expires_at, hash_algo, bound))
            if user == u.user && cred == u.credential && expires_at > now && remaining > 0 =>
        {
            Ok(Row {
                remaining,
                bound,
                hash_algo,
            })
        }
        _ => Err(SadError::Expired),
    })
}

/// For a bound SAD: the unused authorization rows that cover `hashes`, one each, or None.
fn match_bound(
    conn: &Connection,
    sad_id: &[u8],
    u: &Use<'_>,
    row: &Row,
) -> rusqlite::Result<Option<Vec<i64>>> {
    if let (Some(granted), Some(asked)) = (row.hash_algo.as_deref(), u.hash_algo) {
        if granted != asked {
            return Ok(None);
        }
    }
    let mut stmt =
        conn.prepare("SELECT idx, value FROM sad_hashes WHERE sad = ?1 AND used = 0 ORDER BY idx")?;
    let mut unused: Vec<(i64, Vec<u8>)> = stmt
        .query_map([sad_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut picked = Vec::with_capacity(u.hashes.len());
    for h in u.hashes {
        match unused.iter().position(|(_, v)| v == h) {
            Some(i) => picked.push(unused.swap_remove(i).0),
            None => return Ok(None),
        }
    }
    Ok(Some(picked))
}

/// Spends one signature per hash, all or nothing.
pub fn consume(
    conn: &mut Connection,
    u: &Use<'_>,
    now: i64,
) -> rusqlite::Result<Result<(), SadError>> {
    let tx = conn.savepoint()?;
    let row = match load(&tx, u, now)? {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let id = secret_id(u.sad);
    if row.bound {
        let Some(picked) = match_bound(&tx, &id, u, &row)? else {
            return Ok(Err(SadError::NotAuthorized));
        };
        for idx in picked {
            tx.execute(
                "UPDATE sad_hashes SET used = 1 WHERE sad = ?1 AND idx = ?2",
                params![id, idx],
            )?;
        }
    } else if u.hashes.len() as i64 > row.remaining {
        return Ok(Err(SadError::TooFew));
    }
    tx.prepare_cached("UPDATE sads SET remaining = remaining - ?1 WHERE hash = ?2")?
        .execute(params![u.hashes.len() as i64, id])?;
    tx.commit()?;
    Ok(Ok(()))
}

/// `credentials/extendTransaction`: replaces a valid SAD by a new one with a fresh lifetime and the same
/// signatures left (and, for a bound SAD, the same hashes, of which `u.hashes` must be some).
pub fn extend(
    conn: &mut Connection,
    u: &Use<'_>,
    lifetime: i64,
    now: i64,
) -> rusqlite::Result<Result<Issued, SadError>> {
    let tx = conn.savepoint()?;
    let row = match load(&tx, u, now)? {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let id = secret_id(u.sad);
    if row.bound && match_bound(&tx, &id, u, &row)?.is_none() {
        return Ok(Err(SadError::NotAuthorized));
    }
    let sad = crate::random::token();
    tx.execute(
        "UPDATE sads SET hash = ?1, expires_at = ?2 WHERE hash = ?3",
        params![secret_id(&sad), now + lifetime, id],
    )?;
    tx.commit()?;
    Ok(Ok(Issued {
        sad,
        expires_in: lifetime,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn grant<'a>(num: u32, bound: Option<&'a [Vec<u8>]>) -> Grant<'a> {
        Grant {
            user: "alice",
            credential: "alice-p256",
            num_signatures: num,
            bound_hashes: bound,
            hash_algo: None,
            lifetime: 300,
        }
    }

    fn use_<'a>(sad: &'a str, hashes: &'a [Vec<u8>]) -> Use<'a> {
        Use {
            sad,
            user: "alice",
            credential: "alice-p256",
            hashes,
            hash_algo: None,
        }
    }

    fn h(b: u8) -> Vec<u8> {
        vec![b; 32]
    }

    #[test]
    fn counts_down_and_refuses_overdraw_whole() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let s = issue(&mut conn, &grant(3, None), 1000).unwrap();
        assert_eq!(s.expires_in, 300);
        // Asking for more than is left spends nothing.
        let four = [h(1), h(2), h(3), h(4)];
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &four), 1001).unwrap(),
            Err(SadError::TooFew)
        );
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(1), h(2)]), 1001).unwrap(),
            Ok(())
        );
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(3), h(4)]), 1001).unwrap(),
            Err(SadError::TooFew)
        );
        // SCAL 1: the same hash may be signed again.
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(1)]), 1001).unwrap(),
            Ok(())
        );
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(1)]), 1001).unwrap(),
            Err(SadError::Expired)
        );
    }

    #[test]
    fn expires_and_is_bound_to_user_and_credential() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let s = issue(&mut conn, &grant(5, None), 1000).unwrap();
        let one = [h(1)];
        let mut other_cred = use_(&s.sad, &one);
        other_cred.credential = "alice-rsa2048";
        assert_eq!(
            consume(&mut conn, &other_cred, 1001).unwrap(),
            Err(SadError::Expired)
        );
        let mut other_user = use_(&s.sad, &one);
        other_user.user = "bob";
        assert_eq!(
            consume(&mut conn, &other_user, 1001).unwrap(),
            Err(SadError::Expired)
        );
        assert_eq!(
            consume(&mut conn, &use_("made-up", &one), 1001).unwrap(),
            Err(SadError::Expired)
        );
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &one), 1299).unwrap(),
            Ok(())
        );
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &one), 1300).unwrap(),
            Err(SadError::Expired)
        );
    }

    #[test]
    fn bound_sad_signs_exactly_the_authorized_hashes_once() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let authorized = [h(1), h(2), h(2)];
        let s = issue(&mut conn, &grant(3, Some(&authorized)), 1000).unwrap();
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(9)]), 1001).unwrap(),
            Err(SadError::NotAuthorized)
        );
        // A refused request spends nothing, even when some of its hashes were authorized.
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(1), h(9)]), 1001).unwrap(),
            Err(SadError::NotAuthorized)
        );
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(2), h(1)]), 1001).unwrap(),
            Ok(())
        );
        // h(1) was signed once already; h(2) was authorized twice.
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(1)]), 1001).unwrap(),
            Err(SadError::NotAuthorized)
        );
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(2)]), 1001).unwrap(),
            Ok(())
        );
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(2)]), 1001).unwrap(),
            Err(SadError::Expired)
        );
    }

    #[test]
    fn bound_sad_checks_the_hash_algorithm() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let authorized = [h(1)];
        let mut g = grant(1, Some(&authorized));
        g.hash_algo = Some("2.16.840.1.101.3.4.2.1");
        let s = issue(&mut conn, &g, 1000).unwrap();
        let mut u = use_(&s.sad, &authorized);
        u.hash_algo = Some("2.16.840.1.101.3.4.2.3");
        assert_eq!(
            consume(&mut conn, &u, 1001).unwrap(),
            Err(SadError::NotAuthorized)
        );
        u.hash_algo = Some("2.16.840.1.101.3.4.2.1");
        assert_eq!(consume(&mut conn, &u, 1001).unwrap(), Ok(()));
    }

    #[test]
    fn extension_replaces_the_sad() {
        let db = Db::in_memory();
        let mut conn = db.lock();
        let authorized = [h(1), h(2)];
        let s = issue(&mut conn, &grant(2, Some(&authorized)), 1000).unwrap();
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(1)]), 1100).unwrap(),
            Ok(())
        );
        assert_eq!(
            extend(&mut conn, &use_(&s.sad, &[h(1)]), 300, 1200)
                .unwrap()
                .unwrap_err(),
            SadError::NotAuthorized
        );
        let n = extend(&mut conn, &use_(&s.sad, &[h(2)]), 300, 1200)
            .unwrap()
            .unwrap();
        assert_ne!(*n.sad, *s.sad);
        // The old SAD is gone; the new one lives past the old expiry with the same hashes left.
        assert_eq!(
            consume(&mut conn, &use_(&s.sad, &[h(2)]), 1201).unwrap(),
            Err(SadError::Expired)
        );
        assert_eq!(
            consume(&mut conn, &use_(&n.sad, &[h(1)]), 1400).unwrap(),
            Err(SadError::NotAuthorized)
        );
        assert_eq!(
            consume(&mut conn, &use_(&n.sad, &[h(2)]), 1400).unwrap(),
            Ok(())
        );
        assert_eq!(
            extend(&mut conn, &use_(&n.sad, &[]), 300, 1400)
                .unwrap()
                .unwrap_err(),
            SadError::Expired
        );
    }
}
