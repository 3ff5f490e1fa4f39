//! Out-of-band approval: queuing a request of an approval credential, the client's polls
//! (`credentials/authorizeCheck`), and what the approval page does for a logged-in user (login with
//! password + account TOTP, the list of waiting requests, approve, decline). HTTP-free like the rest
//! of the service; `api::approval_page` is the web side.

use super::{Authorization, AuthorizeRequest, Caller, Credential, Service};
use crate::algorithms::HashAlg;
use crate::approval::{self, Checked, DecideError, Decision, QueueError};
use crate::audit::Event;
use crate::error::{CscError, CscResult};
use crate::lockouts::{self, Counter};
use crate::otp;
use crate::passwords;
use crate::sessions::{PageLoginError, Session};
use zeroize::Zeroizing;

/// A waiting request as the approval page lists it.
pub struct PendingRequest {
    pub request: approval::Request,
    pub credential_label: String,
    pub scal: u8,
}

impl Service {
    pub(super) fn queue_approval(
        &self,
        cred: &Credential,
        req: &AuthorizeRequest<'_>,
        bound: bool,
        hash_algo: Option<HashAlg>,
    ) -> CscResult<approval::Queued> {
        let new = approval::NewRequest {
            user: &cred.user,
            credential: &cred.id,
            // authorize checked it against multisign, a u32.
            num_signatures: u32::try_from(req.num_signatures)
                .map_err(|_| CscError::invalid_param("numSignatures"))?,
            hashes: req.hashes.as_deref().unwrap_or(&[]),
            bound,
            hash_algo: hash_algo.map(HashAlg::oid),
            description: req.description,
            client: req.client,
            timeout: self.settings.approval_timeout,
        };
        approval::queue(&mut self.db.lock(), &new, self.now())?.map_err(|e| match e {
            QueueError::TooMany => {
                CscError::invalid_request("Too many requests are waiting for approval")
            }
        })
    }

    /// `credentials/authorizeCheck`: still pending, or the SAD of an approved request (once), or why
    /// not. Polls that find the request still pending are not audited; every other answer is.
    pub fn authorize_check(&self, caller: &Caller, handle: &str) -> CscResult<Authorization> {
        let now = self.now();
        let checked = approval::check(
            &mut self.db.lock(),
            handle,
            &caller.user,
            &|credential| self.sad_lifetime(credential),
            now,
        )?;
        let (result, id, credential) = match checked {
            Checked::Pending { id } => {
                return Ok(Authorization::Pending {
                    handle: Zeroizing::new(handle.to_owned()),
                    id,
                })
            }
            Checked::Granted {
                issued,
                id,
                credential,
            } => (
                Ok(Authorization::Granted(issued)),
                Some(id),
                Some(credential),
            ),
            Checked::Declined { id, credential } => (
                Err(CscError::approval_declined()),
                Some(id),
                Some(credential),
            ),
            Checked::Expired { id, credential } => (
                Err(CscError::approval_expired()),
                Some(id),
                Some(credential),
            ),
            Checked::Unknown => (Err(CscError::invalid_param("handle")), None, None),
        };
        let detail = id.map(|id| format!("request {id}"));
        let ev = Event {
            event: "credentials/authorizeCheck",
            user: Some(&caller.user),
            credential: credential.as_deref(),
            hashes: &[],
            outcome: "",
            detail: detail.as_deref(),
        };
        self.audited(ev, result)
    }

    // ---- the approval page ----

    /// Logs a person in to the approval page with the account password and the account's TOTP code;
    /// returns the new session's token.
    /// Password failures count towards the same lockout as `auth/login`; code failures have their own.
    pub fn page_login(
        &self,
        user: &str,
        password: &[u8],
        code: &str,
    ) -> Result<Zeroizing<String>, PageLoginError> {
        let known = self.user_locks.contains_key(user);
        let result = self.page_login_inner(user, password, code);
        let ev = Event {
            event: "approval/login",
            user: known.then_some(user),
            credential: None,
            hashes: &[],
            outcome: "",
            detail: Some(if known {
                "password and code"
            } else {
                "password and code, unknown user"
            }),
        };
        match self.audited(ev, result) {
            Ok(()) => Ok(self.sessions.create(user, self.now())),
            Err(e) if e == CscError::login_locked() || e == CscError::otp_locked() => {
                Err(PageLoginError::Locked)
            }
            Err(e) if e.status >= 500 => Err(PageLoginError::Internal),
            Err(_) => Err(PageLoginError::Rejected),
        }
    }

    fn page_login_inner(&self, user: &str, password: &[u8], code: &str) -> CscResult<()> {
        let Some(_guard) = self.user_lock(user) else {
            passwords::verify_dummy(password);
            return Err(CscError::bad_credentials());
        };
        let hash = self.password_hash(user)?;
        if lockouts::locked(&self.db.lock(), Counter::AccountCode, user)? {
            return Err(CscError::otp_locked());
        }
        if !passwords::verify(password, &hash) {
            self.count_password_failure(user)?;
            return Err(CscError::bad_credentials());
        }
        let conn = self.db.lock();
        lockouts::success(&conn, Counter::Password, user)?;
        let max = self.settings.max_attempts;
        if otp::check_account_code(&conn, &self.vault, user, code, self.now(), max)? {
            Ok(())
        } else {
            Err(CscError::invalid_otp())
        }
    }

    /// The session a cookie names, if it is still valid.
    pub fn page_session(&self, token: &str) -> Option<Session> {
        self.sessions.get(token, self.now())
    }

    pub fn page_logout(&self, token: &str) {
        self.sessions.end(token);
    }

    /// The session user's requests that wait for a decision, oldest first.
    pub fn pending_requests(&self, session: &Session) -> CscResult<Vec<PendingRequest>> {
        let requests = approval::pending_of(&self.db.lock(), &session.user, self.now())?;
        Ok(requests
            .into_iter()
            .map(|request| {
                let cred = self.credentials.iter().find(|c| c.id == request.credential);
                PendingRequest {
                    credential_label: cred
                        .map(|c| c.label.clone())
                        .unwrap_or_else(|| request.credential.clone()),
                    scal: cred.map(|c| c.scal).unwrap_or(1),
                    request,
                }
            })
            .collect())
    }

    /// The session user approves or declines request `id`. Errors: `approval_expired` past the
    /// deadline, `invalid_param("request")` for an unknown or another user's request,
    /// `request_decided` when it was decided already.
    pub fn decide(&self, session: &Session, id: &str, decision: Decision) -> CscResult<()> {
        let now = self.now();
        let decided = approval::decide(
            &mut self.db.lock(),
            &session.user,
            id,
            decision,
            self.settings.approval_timeout,
            now,
        );
        let (result, request) = match decided {
            Err(e) => (Err(CscError::from(e)), None),
            Ok(Ok(r)) => (Ok(()), Some(r)),
            Ok(Err(DecideError::Unknown)) => (Err(CscError::invalid_param("request")), None),
            Ok(Err(DecideError::AlreadyDecided)) => (Err(request_decided()), None),
            Ok(Err(DecideError::Expired)) => (Err(CscError::approval_expired()), None),
        };
        let detail = match &request {
            Some(r) => format!(
                "request {id}; numSignatures={}{}",
                r.num_signatures,
                r.description
                    .as_deref()
                    .map(|d| format!("; description: {d}"))
                    .unwrap_or_default()
            ),
            None => format!("request {}", id.chars().take(64).collect::<String>()),
        };
        let ev = Event {
            event: match decision {
                Decision::Approve => "approval/approve",
                Decision::Decline => "approval/decline",
            },
            user: Some(&session.user),
            credential: request.as_ref().map(|r| r.credential.as_str()),
            hashes: request.as_ref().map(|r| r.hashes.as_slice()).unwrap_or(&[]),
            outcome: "",
            detail: Some(&detail),
        };
        self.audited(ev, result)
    }
}

/// A decision on a request that was decided already (e.g. in another browser tab).
pub fn request_decided() -> CscError {
    CscError::invalid_request("Request already decided")
}
