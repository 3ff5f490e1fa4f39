//! The confirmation of operations, `POST /STS/confirmation` (DSS: articles/rest/signserver/confirmop.html;
//! the request and answer shapes are those the CryptoARM and other public DSS clients use): a client
//! starts the confirmation of a transaction (with the account's access token and `TransactionTokenId`) or
//! of a sign-in (with the account's name and password, HTTP Basic), gets a challenge whose `RefID` it
//! polls with (`ChallengeResponse.TextChallengeResponse[0].RefId`), and once the user confirmed on the
//! confirmation page (or `demo-confirm` played the user's phone) gets the confirmed token, once.
//!
//! States: pending → confirmed → collected (the token is issued) | declined; pending past the deadline,
//! or confirmed and not collected in time: expired. Answers:
//! - pending: 200 `{IsFinal: false, Challenge: {ContextData: {RefID}, TextChallenge: [{RefId, ExpiresIn,
//!   Title}]}}`;
//! - confirmed: 200 `{IsFinal: true, AccessToken, ExpiresIn}` (an operation token for the transaction, or
//!   a session token for a sign-in);
//! - declined: 200 `{IsFinal: false, IsError: true, ErrorDescription}` (what DSS clients read as refused);
//! - expired, collected, unknown or another user's RefID: 400 `invalid_request`.
//!
//! Where the DSS documentation we could read leaves the behaviour open (the answer to a declined or an
//! expired confirmation, how long a confirmed one can be collected), these rules are the emulator's.

use crate::error::{DssError, DssResult};
use crate::model::RESOURCE;
use crate::service::Emulator;
use csc_server::audit::Event;
use csc_server::db::secret_id;
use csc_server::random;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// Confirmations one user may have waiting at once.
pub const MAX_PENDING: i64 = 20;
/// Seconds a declined or expired confirmation still answers so before it is forgotten.
const RETENTION: i64 = 600;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfirmBody {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub transaction_token_id: Option<Zeroizing<String>>,
    #[serde(default)]
    pub challenge_response: Option<ChallengeResponse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChallengeResponse {
    #[serde(default)]
    pub text_challenge_response: Vec<RefIdBody>,
}

#[derive(Deserialize)]
pub struct RefIdBody {
    #[serde(rename = "RefId", alias = "RefID")]
    pub ref_id: Zeroizing<String>,
}

/// Who asks: an access token's user, or a user who gave the account password.
pub enum Caller {
    Access(Zeroizing<String>),
    Password {
        user: String,
        password: Zeroizing<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Confirm,
    Decline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideError {
    /// No such confirmation of this user waiting.
    Gone,
    Expired,
}

/// A waiting confirmation as the page lists it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub kind: String,
    pub description: Option<String>,
    pub certificate: Option<(i64, String, String)>,
    pub hashes: Vec<Vec<u8>>,
    pub client: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

fn challenge(ref_id: &str, expires_in: i64, title: &str) -> Value {
    json!({
        "IsFinal": false,
        "IsError": false,
        "Challenge": {
            "ContextData": { "RefID": ref_id },
            "TextChallenge": [{ "RefId": ref_id, "ExpiresIn": expires_in.max(0), "Title": title }],
        },
    })
}

impl Emulator {
    /// `POST /STS/confirmation`. `client` names the requesting client for the page (address, software).
    pub fn confirmation(
        &self,
        caller: Caller,
        body: &ConfirmBody,
        client: Option<&str>,
    ) -> DssResult<Value> {
        if body.resource.as_deref() != Some(RESOURCE) {
            return Err(DssError::invalid_request("Unknown or missing Resource"));
        }
        let user = match &caller {
            Caller::Access(token) => self.bearer(&self.db.lock(), token, &["access"])?.user,
            Caller::Password { user, password } => {
                self.check_password(user, password.as_bytes())?;
                user.clone()
            }
        };
        match &body.challenge_response {
            Some(answer) => {
                let ref_id = answer
                    .text_challenge_response
                    .first()
                    .map(|r| r.ref_id.clone())
                    .ok_or_else(|| DssError::invalid_request("Missing RefId"))?;
                self.check(&user, &ref_id)
            }
            None => self.start(&user, &caller, body.transaction_token_id.as_deref(), client),
        }
    }

    fn start(
        &self,
        user: &str,
        caller: &Caller,
        transaction: Option<&String>,
        client: Option<&str>,
    ) -> DssResult<Value> {
        let (kind, title) = match (caller, transaction) {
            (Caller::Access(_), Some(_)) => ("operation", "Confirm the operation in your app"),
            (Caller::Password { .. }, None) => ("session", "Confirm the sign-in in your app"),
            (Caller::Access(_), None) => {
                return Err(DssError::invalid_request("Missing TransactionTokenId"))
            }
            (Caller::Password { .. }, Some(_)) => {
                return Err(DssError::invalid_request(
                    "A transaction is confirmed with the access token it was created with",
                ))
            }
        };
        let detail = transaction.map(|t| format!("transaction {t}"));
        let ev = Event {
            event: "confirmation/start",
            user: Some(user),
            credential: None,
            hashes: &[],
            outcome: "",
            detail: Some(detail.as_deref().unwrap_or("sign-in")),
        };
        let now = self.now();
        let timeout = self.settings.confirmation_timeout;
        let ref_id = random::token();
        self.audited(ev, |conn| {
            forget_old(conn, now)?;
            let waiting: i64 = conn.query_row(
                "SELECT count(*) FROM confirmations WHERE user = ?1 AND state = 'pending'
                 AND expires_at > ?2",
                params![user, now],
                |r| r.get(0),
            )?;
            if waiting >= MAX_PENDING {
                return Err(DssError::invalid_request(
                    "Too many operations are waiting for confirmation",
                ));
            }
            if let Some(tx) = transaction {
                let changed = conn.execute(
                    "UPDATE transactions SET state = 'confirming'
                     WHERE id = ?1 AND user = ?2 AND state = 'created' AND expires_at > ?3",
                    params![tx, user, now],
                )?;
                if changed == 0 {
                    return Err(DssError::invalid_request(
                        "Unknown, expired or already confirmed transaction",
                    ));
                }
            }
            conn.execute(
                "INSERT INTO confirmations (id, ref_hash, user, kind, transaction_id, client,
                                            created_at, expires_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
                params![
                    random::token().as_str(),
                    secret_id(&ref_id),
                    user,
                    kind,
                    transaction,
                    client,
                    now,
                    now + timeout
                ],
            )?;
            Ok(challenge(&ref_id, timeout, title))
        })
    }

    fn check(&self, user: &str, ref_id: &str) -> DssResult<Value> {
        let now = self.now();
        let hash = secret_id(ref_id);
        type Row = (String, String, Option<String>, i64, String);
        let row: Option<Row> = self
            .db
            .lock()
            .query_row(
                "SELECT id, kind, transaction_id, expires_at, state FROM confirmations
                 WHERE ref_hash = ?1 AND user = ?2",
                params![hash, user],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((id, kind, tx, expires, state)) = row else {
            return Err(DssError::invalid_request("Unknown RefID"));
        };
        if state == "pending" && expires > now {
            // Still waiting: not audited (clients poll).
            return Ok(challenge(
                ref_id,
                expires - now,
                "Confirm the operation in your app",
            ));
        }
        let detail = format!("confirmation {id}");
        let ev = Event {
            event: "confirmation/check",
            user: Some(user),
            credential: None,
            hashes: &[],
            outcome: "",
            detail: Some(&detail),
        };
        self.audited(ev, |conn| match state.as_str() {
            "confirmed" if expires > now => {
                let token = match kind.as_str() {
                    "operation" => self.issue(
                        conn,
                        user,
                        "operation",
                        tx.as_deref(),
                        self.settings.confirmation_timeout,
                    )?,
                    _ => self.issue(conn, user, "session", None, self.settings.session_lifetime)?,
                };
                conn.execute(
                    "UPDATE confirmations SET state = 'collected' WHERE id = ?1",
                    [&id],
                )?;
                let lifetime = if kind == "operation" {
                    self.settings.confirmation_timeout
                } else {
                    self.settings.session_lifetime
                };
                Ok(json!({
                    "IsFinal": true,
                    "IsError": false,
                    "AccessToken": token.as_str(),
                    "ExpiresIn": lifetime,
                }))
            }
            "declined" => Ok(json!({
                "IsFinal": false,
                "IsError": true,
                "ErrorDescription": "The user declined the operation",
            })),
            "collected" => Err(DssError::invalid_request("Unknown RefID")),
            _ => Err(DssError::invalid_request(
                "The confirmation request expired",
            )),
        })
    }

    /// The user's decision (the page, or `demo-confirm` as the user's phone) on confirmation `id`.
    pub fn decide(
        &self,
        user: &str,
        id: &str,
        decision: Decision,
        by: &str,
    ) -> Result<(), DecideError> {
        let now = self.now();
        let (state, event) = match decision {
            Decision::Confirm => ("confirmed", "confirmation/confirm"),
            Decision::Decline => ("declined", "confirmation/decline"),
        };
        let mut conn = self.db.lock();
        let result = decide_in(
            &mut conn,
            user,
            id,
            state,
            now,
            self.settings.confirmation_timeout,
        );
        let outcome = match result {
            Ok(()) => "ok",
            Err(DecideError::Expired) => "expired",
            Err(DecideError::Gone) => "gone",
        };
        let detail = format!("confirmation {id} ({by})");
        let ev = Event {
            event,
            user: Some(user),
            credential: None,
            hashes: &[],
            outcome,
            detail: Some(&detail),
        };
        if let Err(e) = csc_server::audit::append(&conn, now, &ev) {
            log::error!("audit trail: {e}");
        }
        result
    }

    /// The user's confirmations still waiting, oldest first.
    pub fn pending(&self, user: &str) -> DssResult<Vec<Pending>> {
        let conn = self.db.lock();
        pending_of(&conn, user, self.now()).map_err(DssError::from)
    }
}

fn decide_in(
    conn: &mut Connection,
    user: &str,
    id: &str,
    state: &str,
    now: i64,
    timeout: i64,
) -> Result<(), DecideError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|_| DecideError::Gone)?;
    let row: Option<(i64, String, Option<String>)> = tx
        .query_row(
            "SELECT expires_at, state, transaction_id FROM confirmations WHERE id = ?1 AND user = ?2",
            params![id, user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(|_| DecideError::Gone)?;
    let Some((expires, current, transaction)) = row else {
        return Err(DecideError::Gone);
    };
    if current != "pending" {
        return Err(DecideError::Gone);
    }
    if expires <= now {
        return Err(DecideError::Expired);
    }
    // A confirmed one waits as long again for the client to collect it; a declined one is kept so long.
    let until = if state == "confirmed" {
        now + timeout
    } else {
        now + RETENTION
    };
    tx.execute(
        "UPDATE confirmations SET state = ?2, decided_at = ?3, expires_at = ?4 WHERE id = ?1",
        params![id, state, now, until],
    )
    .map_err(|_| DecideError::Gone)?;
    if let Some(t) = transaction {
        tx.execute(
            "UPDATE transactions SET state = ?2, expires_at = ?3 WHERE id = ?1",
            params![
                t,
                if state == "confirmed" {
                    "confirmed"
                } else {
                    "declined"
                },
                until
            ],
        )
        .map_err(|_| DecideError::Gone)?;
    }
    tx.commit().map_err(|_| DecideError::Gone)
}

pub(crate) fn pending_of(
    conn: &Connection,
    user: &str,
    now: i64,
) -> rusqlite::Result<Vec<Pending>> {
    let mut stmt = conn.prepare(
        "SELECT c.id, c.kind, t.description, t.certificate, k.friendly_name, k.kind, c.client,
                c.created_at, c.expires_at, c.transaction_id
         FROM confirmations c
         LEFT JOIN transactions t ON t.id = c.transaction_id
         LEFT JOIN certificates k ON k.id = t.certificate
         WHERE c.user = ?1 AND c.state = 'pending' AND c.expires_at > ?2
         ORDER BY c.created_at, c.rowid",
    )?;
    let rows = stmt.query_map(params![user, now], |r| {
        let certificate = match (r.get::<_, Option<i64>>(3)?, r.get(4)?, r.get(5)?) {
            (Some(id), Some(name), Some(kind)) => Some((id, name, kind)),
            _ => None,
        };
        Ok((
            Pending {
                id: r.get(0)?,
                kind: r.get(1)?,
                description: r.get(2)?,
                certificate,
                hashes: Vec::new(),
                client: r.get(6)?,
                created_at: r.get(7)?,
                expires_at: r.get(8)?,
            },
            r.get::<_, Option<String>>(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut p, tx) = row?;
        if let Some(tx) = tx {
            let mut s =
                conn.prepare("SELECT hash FROM transaction_documents WHERE tx = ?1 ORDER BY idx")?;
            p.hashes = s
                .query_map([tx], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<Vec<u8>>>>()?;
        }
        out.push(p);
    }
    Ok(out)
}

/// Deletes what can no longer be asked about.
fn forget_old(conn: &Connection, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM confirmations WHERE expires_at < ?1 - ?2",
        params![now, RETENTION],
    )?;
    Ok(())
}
