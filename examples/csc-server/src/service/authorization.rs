//! Authorization: sending SMS codes, `credentials/authorize` with its checks (PIN, OTP, their
//! lockouts, SCAL 2 hash binding), issuing SADs, and `credentials/extendTransaction`. Approval
//! credentials hand over to `approvals` once their PIN is checked.

use super::{check_description, sad_error, Caller, Credential, Service};
use crate::algorithms::HashAlg;
use crate::audit::Event;
use crate::error::{CscError, CscResult};
use crate::lockouts::{self, Counter};
use crate::model::OtpKind;
use crate::otp;
use crate::passwords;
use crate::sad;
use crate::vault::purpose;
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

pub struct AuthorizeRequest<'a> {
    pub credential_id: &'a str,
    pub num_signatures: u64,
    pub hashes: Option<Vec<Vec<u8>>>,
    pub hash_algo: Option<&'a str>,
    pub pin: Option<Zeroizing<String>>,
    pub otp: Option<Zeroizing<String>>,
    pub description: Option<&'a str>,
    /// Who asks (client address and software), shown on the approval page.
    pub client: Option<&'a str>,
    /// The client's API version can poll `credentials/authorizeCheck` (v2); approval credentials
    /// need it.
    pub can_poll: bool,
}

/// The outcome of `credentials/authorize` and `credentials/authorizeCheck`.
pub enum Authorization {
    Granted(sad::Issued),
    /// Waiting for the user's approval: the client polls with `handle`.
    Pending {
        handle: Zeroizing<String>,
        /// The request's name on the approval page and in the audit trail.
        id: String,
    },
}

/// Shows neither the SAD nor the handle: both are bearer secrets.
impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::Granted(issued) => f.debug_tuple("Granted").field(issued).finish(),
            Authorization::Pending { id, .. } => f
                .debug_struct("Pending")
                .field("id", id)
                .finish_non_exhaustive(),
        }
    }
}

impl Service {
    // ---- second factor ----

    /// `credentials/sendOTP` (v1) and `credentials/getChallenge` (v2): a new SMS code replaces any
    /// pending one.
    pub fn send_otp(
        &self,
        caller: &Caller,
        credential_id: &str,
        description: Option<&str>,
    ) -> CscResult<()> {
        let result = self.send_otp_inner(caller, credential_id, description);
        let ev = Event {
            event: "credentials/sendOTP",
            user: Some(&caller.user),
            credential: self.own_credential_id(caller, credential_id),
            hashes: &[],
            outcome: "",
            detail: description,
        };
        self.audited(ev, result)
    }

    fn send_otp_inner(
        &self,
        caller: &Caller,
        credential_id: &str,
        description: Option<&str>,
    ) -> CscResult<()> {
        let cred = self.credential(caller, credential_id)?;
        check_description(description)?;
        match cred.otp {
            OtpKind::Sms => {}
            OtpKind::Totp => {
                return Err(CscError::invalid_request(
                    "The credential's OTP comes from an authenticator app; nothing to send",
                ))
            }
            OtpKind::Approval => return Err(CscError::invalid_request(
                "The credential takes no OTP: the user approves each request on the approval page",
            )),
            OtpKind::PinOnly => {
                return Err(CscError::invalid_request(
                    "The credential takes no OTP: its PIN alone authorizes it",
                ))
            }
            OtpKind::OAuth2 => return Err(oauth2_credential()),
        }
        let _guard = self.user_lock(&cred.user);
        let now = self.now();
        let code = otp::sms_code();
        {
            let conn = self.db.lock();
            let locked: bool = conn.query_row(
                "SELECT otp_locked FROM credentials WHERE id = ?1",
                [&cred.id],
                |r| r.get(0),
            )?;
            if locked {
                return Err(CscError::otp_locked());
            }
            conn.execute(
                "UPDATE credentials SET sealed_sms = ?2, sms_expires = ?3 WHERE id = ?1",
                params![
                    cred.id,
                    self.vault
                        .seal(&purpose::sms_code(&cred.id), code.as_bytes()),
                    now + otp::SMS_LIFETIME
                ],
            )?;
        }
        self.outbox
            .send(now, &cred.user, &cred.id, &code, description)
            .map_err(|e| CscError::internal("SMS outbox", e))
    }

    // ---- authorization ----

    pub fn authorize(
        &self,
        caller: &Caller,
        req: AuthorizeRequest<'_>,
    ) -> CscResult<Authorization> {
        let hashes = req.hashes.clone().unwrap_or_default();
        let credential = self.own_credential_id(caller, req.credential_id);
        let detail = format!(
            "numSignatures={}{}",
            req.num_signatures,
            req.description
                .map(|d| format!("; description: {d}"))
                .unwrap_or_default()
        );
        let result = self.authorize_inner(caller, req);
        let ev = Event {
            event: "credentials/authorize",
            user: Some(&caller.user),
            credential,
            hashes: &hashes,
            outcome: "",
            detail: Some(&detail),
        };
        self.audited_as(ev, result, |a| match a {
            Authorization::Granted(_) => "ok".to_owned(),
            Authorization::Pending { id, .. } => format!("pending approval: request {id}"),
        })
    }

    fn authorize_inner(
        &self,
        caller: &Caller,
        req: AuthorizeRequest<'_>,
    ) -> CscResult<Authorization> {
        let cred = self.credential(caller, req.credential_id)?;
        if cred.otp == OtpKind::OAuth2 {
            return Err(oauth2_credential());
        }
        if cred.otp == OtpKind::Approval && !req.can_poll {
            return Err(CscError::invalid_request(
                "The credential is authorized by approval on the user's device, which needs CSC API \
                 v2 (credentials/authorizeCheck)",
            ));
        }
        if req.num_signatures < 1 || req.num_signatures > u64::from(cred.multisign) {
            return Err(CscError::invalid_param("numSignatures"));
        }
        check_description(req.description)?;
        let hash_algo = match req.hash_algo {
            Some(oid) => Some(
                HashAlg::from_oid(oid)
                    .ok_or_else(|| CscError::invalid_param("hashAlgorithmOID"))?,
            ),
            None => None,
        };
        if let Some(hashes) = &req.hashes {
            let fits = |h: &Vec<u8>| match hash_algo {
                Some(alg) => h.len() == alg.len(),
                None => HashAlg::from_len(h.len()).is_some(),
            };
            if !hashes.iter().all(fits) {
                return Err(CscError::invalid_param("hashes"));
            }
        }
        let bound = if cred.scal == 2 {
            match &req.hashes {
                Some(h) if h.len() as u64 == req.num_signatures => Some(h.as_slice()),
                _ => return Err(CscError::invalid_param("hashes")),
            }
        } else {
            None
        };
        let pin = req
            .pin
            .as_ref()
            .ok_or_else(|| CscError::missing("string", "PIN"))?;
        if cred.otp == OtpKind::Approval {
            if req.otp.is_some() {
                return Err(CscError::invalid_request(
                    "The credential takes no OTP: the user approves each request on the approval page",
                ));
            }
            let _guard = self.user_lock(&cred.user);
            self.check_factors(cred, pin, None)?;
            let queued = self.queue_approval(cred, &req, bound.is_some(), hash_algo)?;
            return Ok(Authorization::Pending {
                handle: queued.handle,
                id: queued.id,
            });
        }
        let otp = match cred.otp {
            OtpKind::PinOnly => match req.otp {
                Some(_) => {
                    return Err(CscError::invalid_request(
                        "The credential takes no OTP: its PIN alone authorizes it",
                    ))
                }
                None => None,
            },
            OtpKind::OAuth2 => return Err(oauth2_credential()),
            _ => Some(
                req.otp
                    .as_deref()
                    .ok_or_else(|| CscError::missing("string", "OTP"))?,
            ),
        };

        let _guard = self.user_lock(&cred.user);
        self.check_factors(cred, pin, otp.map(|o| o.as_str()))?;
        let grant = sad::Grant {
            user: &cred.user,
            credential: &cred.id,
            num_signatures: req.num_signatures as u32,
            bound_hashes: bound,
            hash_algo: hash_algo.map(HashAlg::oid),
            lifetime: self.sad_lifetime(&cred.id),
        };
        Ok(Authorization::Granted(sad::issue(
            &mut self.db.lock(),
            &grant,
            self.now(),
        )?))
    }

    /// Lock states, then the PIN, then the OTP (`None` for approval and PIN-only credentials, which
    /// have none). A
    /// wrong PIN leaves the OTP unspent. Each factor's failure counter is reset by its success. Runs
    /// under the user's lock.
    fn check_factors(
        &self,
        cred: &Credential,
        pin: &str,
        otp_value: Option<&str>,
    ) -> CscResult<()> {
        let max = self.settings.max_attempts;
        let conn = self.db.lock();
        if lockouts::locked(&conn, Counter::Pin, &cred.user)? {
            return Err(CscError::pin_locked());
        }
        if otp_value.is_some() && lockouts::locked(&conn, Counter::Otp, &cred.id)? {
            return Err(CscError::otp_locked());
        }
        let pin_hash: String = conn.query_row(
            "SELECT pin_hash FROM users WHERE name = ?1",
            [&cred.user],
            |r| r.get(0),
        )?;
        // Argon2 runs without the connection: other users' requests go on meanwhile.
        drop(conn);
        if !passwords::verify(pin.as_bytes(), &pin_hash) {
            lockouts::failure(&self.db.lock(), Counter::Pin, &cred.user, max)?;
            return Err(CscError::invalid_pin());
        }
        let conn = self.db.lock();
        lockouts::success(&conn, Counter::Pin, &cred.user)?;
        let Some(otp_value) = otp_value else {
            return Ok(());
        };
        if self.otp_matches(&conn, cred, otp_value)? {
            lockouts::success(&conn, Counter::Otp, &cred.id)?;
            Ok(())
        } else {
            lockouts::failure(&conn, Counter::Otp, &cred.id, max)?;
            Err(CscError::invalid_otp())
        }
    }

    /// Checks and, when it matches, spends the OTP (records the TOTP step, deletes the SMS code).
    fn otp_matches(&self, conn: &Connection, cred: &Credential, value: &str) -> CscResult<bool> {
        let now = self.now();
        match cred.otp {
            OtpKind::Totp => {
                let (sealed, period, last): (Vec<u8>, i64, Option<i64>) = conn.query_row(
                    "SELECT sealed_totp, totp_period, totp_last_step FROM credentials WHERE id = ?1",
                    [&cred.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                let secret = self
                    .vault
                    .open(&purpose::totp_secret(&cred.id), &sealed)
                    .map_err(|e| CscError::internal("TOTP secret", e))?;
                let accepted =
                    otp::verify_totp(&secret, period as u64, value, now, last.map(|s| s as u64));
                if let Some(step) = accepted {
                    conn.execute(
                        "UPDATE credentials SET totp_last_step = ?2 WHERE id = ?1",
                        params![cred.id, step as i64],
                    )?;
                }
                Ok(accepted.is_some())
            }
            OtpKind::Sms => {
                let pending: Option<(Option<Vec<u8>>, Option<i64>)> = conn
                    .query_row(
                        "SELECT sealed_sms, sms_expires FROM credentials WHERE id = ?1",
                        [&cred.id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((Some(sealed), Some(expires))) = pending else {
                    return Ok(false);
                };
                if expires <= now {
                    return Ok(false);
                }
                let code = self
                    .vault
                    .open(&purpose::sms_code(&cred.id), &sealed)
                    .map_err(|e| CscError::internal("SMS code", e))?;
                let ok = otp::codes_equal(&code, value.as_bytes());
                if ok {
                    conn.execute(
                        "UPDATE credentials SET sealed_sms = NULL, sms_expires = NULL WHERE id = ?1",
                        [&cred.id],
                    )?;
                }
                Ok(ok)
            }
            // Approval and PIN-only credentials have no code to match.
            OtpKind::Approval | OtpKind::PinOnly | OtpKind::OAuth2 => Ok(false),
        }
    }

    pub fn extend_transaction(
        &self,
        caller: &Caller,
        credential_id: &str,
        sad_value: &str,
        hashes: Option<Vec<Vec<u8>>>,
        hash_algo: Option<&str>,
    ) -> CscResult<sad::Issued> {
        let shown = hashes.clone().unwrap_or_default();
        let result = (|| {
            let cred = self.credential(caller, credential_id)?;
            let hashes = hashes.unwrap_or_default();
            if cred.scal == 2 && hashes.is_empty() {
                return Err(CscError::invalid_param("hashes"));
            }
            let u = sad::Use {
                sad: sad_value,
                user: &cred.user,
                credential: &cred.id,
                hashes: if cred.scal == 2 { &hashes } else { &[] },
                hash_algo,
            };
            let now = self.now();
            let lifetime = self.sad_lifetime(&cred.id);
            sad::extend(&mut self.db.lock(), &u, lifetime, now)?.map_err(sad_error)
        })();
        let ev = Event {
            event: "credentials/extendTransaction",
            user: Some(&caller.user),
            credential: self.own_credential_id(caller, credential_id),
            hashes: &shown,
            outcome: "",
            detail: None,
        };
        self.audited(ev, result)
    }
}

/// `credentials/authorize` or `sendOTP` for a credential whose authMode is `oauth2code`.
fn oauth2_credential() -> CscError {
    CscError::invalid_request(
        "The credential is authorized with OAuth 2.0: oauth2/authorize with scope credential",
    )
}
