//! The authorize exchange: one `credentials/authorize` with the gathered factors, asked again through the
//! prompt when the service refuses what the user typed, and the wait for an out-of-band approval when the
//! service answers "pending"; plus having the service send an online one-time password.
//!
//! An OTP is used for one authorization and then forgotten, whatever the outcome. When the service
//! refuses a factor the user typed into the prompt, the prompt asks again (`prompt_attempts` answers in
//! all, so that the service's lockout is not reached by one authorization); a refused factor from any
//! other source ends the authorization with CKR_PIN_INCORRECT, a lock with CKR_PIN_LOCKED.
//!
//! A credential the user authorizes in a browser (`authMode` oauth2code) goes to oauth2.rs instead.
//!
//! Calls the factors (for the re-ask and TOTP's next step), the account and the OAuth 2.0 channel.

use super::factors::{self, Asking, Factors, Source};
use crate::error::{self, CkResult, Step};
use crate::mechanism::HashAlg;
use crate::prompt::Kind;
use crate::service::{Authorization, AuthorizeRequest, Reason, Sad, Secret};
use crate::token::account::CallError;
use crate::token::{Credential, Token};
use cryptoki_sys::*;
use std::time::{Duration, Instant};

/// One authorization: what it covers, and the login it is for.
pub struct Request {
    /// The login epoch: nothing is sent once that login has ended (a prompt or a TOTP step may take a
    /// while, and the user may log out meanwhile).
    pub epoch: u64,
    pub num_signatures: u32,
    /// SCAL 2: exactly the hashes the SAD will sign.
    pub hashes: Vec<Vec<u8>>,
    pub hash_alg: Option<HashAlg>,
}

/// "Sign N document(s) with 'LABEL' for PROCESS", shown to the user by the service (SMS, approval) and by
/// the prompt.
pub fn description(cred: &Credential, n: u32) -> String {
    let process = crate::prompt::process_name();
    let what = if n == 1 { "document" } else { "documents" };
    // The package a batch script named (batch.rs): "Sign 60 documents (30 invoices) with ...".
    let package = crate::batch::description()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let mut d = format!(
        "Sign {n} {what}{package} with '{}' for {process}",
        cred.label
    );
    if d.chars().count() > 500 {
        d = d.chars().take(500).collect();
    }
    d
}

fn attempts_left(n: u32) -> String {
    if n == 1 {
        "1 attempt left".to_owned()
    } else {
        format!("{n} attempts left")
    }
}

/// Authorizes `req` for `cred`: collects the factors, sends `credentials/authorize`, asks the prompt again
/// when the service refuses what the user typed, and waits for an out-of-band approval when the service
/// answers "pending". `context` is the operation's C_Login(CKU_CONTEXT_SPECIFIC) value.
///
/// A refused PIN from C_Login, or a locked credential, logs the user out so that the module does not send
/// the same PIN again.
pub fn authorize(
    token: &Token,
    cred: &Credential,
    req: Request,
    context: Option<Secret>,
) -> CkResult<Sad> {
    authorize_with(token, cred, req, true, |asking| {
        factors::gather(asking, context)
    })
}

/// Authorizes `req` for `cred` with nobody asked (a background renewal): the factors at hand only, and
/// an answer that waits for a person's approval is not waited for (CKR_FUNCTION_REJECTED).
pub fn authorize_unattended(token: &Token, cred: &Credential, req: Request) -> CkResult<Sad> {
    authorize_with(token, cred, req, false, |_| {
        factors::unattended(token, cred)
    })
}

fn authorize_with(
    token: &Token,
    cred: &Credential,
    req: Request,
    attended: bool,
    factors: impl FnOnce(&Asking<'_>) -> CkResult<Factors>,
) -> CkResult<Sad> {
    let description = description(cred, req.num_signatures);
    if super::oauth2::applies(&cred.info) {
        return super::oauth2::authorize(token, cred, &req, &description);
    }
    let asking = Asking {
        token,
        cred,
        signatures: req.num_signatures,
        description: &description,
    };
    let factors = factors(&asking)?;
    send_authorize(&asking, &req, factors, attended)
}

/// `attended`: a person is at hand for this authorization, so an out-of-band approval is waited for.
fn send_authorize(
    asking: &Asking<'_>,
    req: &Request,
    mut factors: Factors,
    attended: bool,
) -> CkResult<Sad> {
    let token = asking.token;
    let cred = asking.cred;
    let slot = token.slot_id;
    let max = token.config.prompt_attempts;
    let mut pin_answers = 1;
    let mut otp_answers = 1;
    let mut totp_retried = false;
    loop {
        if !token.login.is_current(req.epoch) {
            return Err(error::logged(
                CKR_USER_NOT_LOGGED_IN,
                format!(
                    "slot {slot}: the login ended before {} was authorized; nothing sent",
                    cred.id()
                ),
            ));
        }
        let request = AuthorizeRequest {
            credential_id: cred.id().to_owned(),
            num_signatures: req.num_signatures,
            hashes: req.hashes.clone(),
            hash_algorithm_oid: req.hash_alg.map(|h| h.oid().to_owned()),
            pin: factors.pin.as_ref().map(|(s, _)| s.clone()),
            otp: factors.otp.as_ref().map(|(s, _)| s.clone()),
            description: Some(asking.description.to_owned()),
            client_data: None,
        };
        let e = match token.account.call(|s, a| s.authorize(a, &request)) {
            Ok(Authorization::Granted(sad)) => return Ok(sad),
            Ok(Authorization::Pending { handle }) if attended => {
                return wait_for_approval(token, cred, &handle)
            }
            Ok(Authorization::Pending { .. }) => {
                return Err(error::logged(
                    CKR_FUNCTION_REJECTED,
                    format!(
                        "slot {slot}: the service wants a person to approve {}; not renewed in the \
                         background",
                        cred.id()
                    ),
                ))
            }
            Err(CallError::Remote(e)) => e,
            Err(e) => return Err(e.into_rv(slot, Step::Authorize)),
        };
        let reason = e.reason();
        let pin_source = factors.pin_source();
        let otp_source = factors.otp_source();
        match reason {
            Reason::PinIncorrect if pin_source == Some(Source::Prompt) && pin_answers < max => {
                log::warn!("slot {slot}: the service refused the PIN; asking again");
                let message = format!(
                    "The PIN was not accepted; {}",
                    attempts_left(max - pin_answers)
                );
                pin_answers += 1;
                // A refused PIN leaves the OTP unspent at CSC services (the PIN is checked first).
                factors.pin = Some((
                    asking.ask(Kind::Pin, pin_answers, &message)?,
                    Source::Prompt,
                ));
                continue;
            }
            Reason::OtpIncorrect if otp_source == Some(Source::Prompt) && otp_answers < max => {
                log::warn!("slot {slot}: the service refused the one-time password; asking again");
                let message = format!(
                    "The code was not accepted; {}",
                    attempts_left(max - otp_answers)
                );
                otp_answers += 1;
                factors.otp = Some((
                    asking.ask(Kind::Otp, otp_answers, &message)?,
                    Source::Prompt,
                ));
                continue;
            }
            Reason::OtpIncorrect if otp_source == Some(Source::TotpFile) && !totp_retried => {
                // Most likely another process used this step's code first: take the next step.
                log::warn!(
                    "slot {slot}: the service refused the computed code; trying the next time step"
                );
                totp_retried = true;
                factors.otp = Some((factors::totp_file_code(token, cred)?, Source::TotpFile));
                continue;
            }
            _ => {}
        }
        let refused_login = reason == Reason::PinIncorrect && pin_source == Some(Source::Login);
        if (refused_login || reason == Reason::Locked) && token.is_logged_in() {
            log::error!(
                "slot {slot}: logging the user out: the service refused the PIN or reports a lock"
            );
            token.logout();
        }
        if reason == Reason::PinIncorrect && pin_source == Some(Source::PinFile) {
            log::error!("slot {slot}: the PIN in pin_file was refused");
        }
        return Err(error::from_remote(slot, Step::Authorize, &e));
    }
}

/// First pause between `credentials/authorizeCheck` polls; it doubles up to [`LONGEST_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(500);
const LONGEST_POLL: Duration = Duration::from_secs(5);

/// Polls an authorization the user approves out of band until the SAD arrives (CKR_OK), the user declines
/// (CKR_FUNCTION_REJECTED), or `approval_timeout_ms` passes or the service lets the request expire
/// (CKR_FUNCTION_CANCELED: nobody decided, as with a prompt nobody answers).
fn wait_for_approval(token: &Token, cred: &Credential, handle: &Secret) -> CkResult<Sad> {
    let slot = token.slot_id;
    let id = cred.id();
    let timeout = Duration::from_millis(token.config.approval_timeout_ms);
    log::info!(
        "slot {slot}: waiting up to {} s for the user to approve the request for {id} out of band",
        timeout.as_secs()
    );
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_POLL;
    loop {
        let now = Instant::now();
        std::thread::sleep(pause.min(deadline.saturating_duration_since(now)));
        pause = (pause * 2).min(LONGEST_POLL);
        match token.account.call(|s, a| s.authorize_check(a, handle)) {
            Ok(Authorization::Granted(sad)) => {
                log::info!("slot {slot}: the user approved the request for {id}");
                return Ok(sad);
            }
            Ok(Authorization::Pending { .. }) => {}
            Err(CallError::Remote(e)) => match e.reason() {
                Reason::AccessDenied => {
                    return Err(error::logged(
                        CKR_FUNCTION_REJECTED,
                        format!("slot {slot}: the user declined the request for {id}"),
                    ))
                }
                // The service no longer knows the request: it expired before anyone decided.
                Reason::InvalidRequest => {
                    return Err(error::logged(
                        CKR_FUNCTION_CANCELED,
                        format!("slot {slot}: the request for {id} expired at the service ({e})"),
                    ))
                }
                _ if e.is_retryable() && Instant::now() < deadline => {
                    log::warn!("slot {slot}: polling the approval failed, retrying: {e}");
                }
                _ => return Err(error::from_remote(slot, Step::Authorize, &e)),
            },
            Err(e) => return Err(e.into_rv(slot, Step::Authorize)),
        }
        if Instant::now() >= deadline {
            return Err(error::logged(
                CKR_FUNCTION_CANCELED,
                format!(
                    "slot {slot}: nobody approved the request for {id} within approval_timeout_ms ({} ms)",
                    timeout.as_millis()
                ),
            ));
        }
    }
}

/// Has the service send an online OTP (SMS) for `cred`, with the description of the `signatures` it is
/// for (the service shows it next to the code).
pub fn send_otp(token: &Token, cred: &Credential, signatures: u32) -> CkResult<()> {
    let description = description(cred, signatures);
    token
        .account
        .call(|s, a| s.send_otp(a, cred.id(), &description))
        .map_err(|e| e.into_rv(token.slot_id, Step::SendOtp))?;
    log::info!(
        "slot {}: the service sent a one-time password for {}",
        token.slot_id,
        cred.id()
    );
    Ok(())
}
