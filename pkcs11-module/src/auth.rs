//! The one authorization step: where the PIN and the OTP of a credential's `credentials/authorize` come
//! from, the request itself with its retries, and the wait for an out-of-band approval.
//!
//! The PIN comes from, in this order: the operation's context-login value when it has the PIN+OTP form;
//! the C_Login(CKU_USER) value; `pin_file`; the prompt. The OTP comes from the operation's
//! C_Login(CKU_CONTEXT_SPECIFIC) value, else from the token's channels in their configured order
//! ([`TokenConfig::channels`]), each answered by [`channel_otp`]: "passcode" (the C_Login(CKU_USER) value
//! carries it after the PIN), "context" (answered by the context value, so nothing more here),
//! "totp-file" (computed, unattended) and "prompt" (the user answers; an online OTP is sent first).
//!
//! An OTP is used for one authorization and then forgotten, whatever the outcome. When the service
//! refuses a factor the user typed into the prompt, the prompt asks again (`prompt_attempts` answers in
//! all, so that the service's lockout is not reached by one authorization); a refused factor from any
//! other source ends the authorization with CKR_PIN_INCORRECT, a lock with CKR_PIN_LOCKED.
//!
//! Passcode rule: the C_Login(CKU_USER) value is PIN+OTP when the "passcode" channel is on, the
//! credential uses an OTP, and the value is longer than the OTP length (the credential's, else the
//! configured `otp_length`) — and, when the service states the PIN length, exactly PIN+OTP long.

use crate::config::{OtpChannel, TokenConfig};
use crate::error::{self, CkResult, Step};
use crate::mechanism::HashAlg;
use crate::prompt::{self, Kind, Prompt};
use crate::token::{CallError, Credential, Token, UserLogin};
use cryptoki_sys::*;
use remote_client::{AuthMode, Authorization, AuthorizeRequest, OtpType, Reason, Sad, Secret};
use std::time::{Duration, Instant};

/// What a credential asks for.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub pin: bool,
    pub otp: bool,
    pub otp_len: usize,
    pub pin_len: Option<usize>,
    pub online_otp: bool,
}

impl Need {
    pub fn of(token: &Token, cred: &Credential) -> Need {
        let auth = &cred.info.auth;
        let otp = auth.otp.is_some();
        let online_otp = auth
            .otp
            .as_ref()
            .is_some_and(|o| o.otp_type == OtpType::Online);
        Need {
            pin: auth.pin.is_some() || (!otp && auth.mode == AuthMode::Explicit),
            otp,
            otp_len: auth
                .otp
                .as_ref()
                .and_then(|o| o.factor.length)
                .filter(|l| *l > 0)
                .unwrap_or(token.config.otp_length),
            pin_len: auth.pin.as_ref().and_then(|p| p.length).filter(|l| *l > 0),
            online_otp,
        }
    }
}

/// Where a factor came from: decides whether a refused one may be asked again, and whether a refused
/// PIN ends the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// C_Login(CKU_USER): the passcode.
    Login,
    /// C_Login(CKU_CONTEXT_SPECIFIC) for this operation.
    Context,
    /// `pin_file`.
    PinFile,
    /// Computed from `totp_secret_file`.
    TotpFile,
    Prompt,
}

/// The factors of one authorize request.
struct Factors {
    pin: Option<(Secret, Source)>,
    otp: Option<(Secret, Source)>,
}

impl Factors {
    fn source(f: &Option<(Secret, Source)>) -> Option<Source> {
        f.as_ref().map(|(_, s)| *s)
    }
}

/// One authorization: what it covers.
pub struct Request {
    pub num_signatures: u32,
    /// SCAL 2: exactly the hashes the SAD will sign.
    pub hashes: Vec<Vec<u8>>,
    pub hash_alg: Option<HashAlg>,
}

fn char_len(s: &Secret) -> usize {
    s.expose().chars().count()
}

/// Splits after `pin_chars` characters.
fn split(s: &Secret, pin_chars: usize) -> (Secret, Secret) {
    let at = s
        .expose()
        .char_indices()
        .nth(pin_chars)
        .map(|(i, _)| i)
        .unwrap_or(s.expose().len());
    (
        Secret::new(&s.expose()[..at]),
        Secret::new(&s.expose()[at..]),
    )
}

impl UserLogin {
    /// The PIN length within the passcode if it has the shape of PIN+OTP for this need.
    fn passcode_pin_chars(&self, need: &Need, passcode_channel: bool) -> Option<usize> {
        if !passcode_channel || !need.otp || self.otp_spent {
            return None;
        }
        let len = char_len(&self.passcode);
        if len <= need.otp_len {
            return None;
        }
        match need.pin_len {
            Some(p) if p + need.otp_len != len => None,
            _ => Some(len - need.otp_len),
        }
    }

    fn pin(&self, need: &Need, passcode_channel: bool) -> Secret {
        let len = char_len(&self.passcode);
        let pin_chars = match need.pin_len {
            Some(p) if len > p => Some(p),
            _ => self.passcode_pin_chars(need, passcode_channel),
        };
        match pin_chars {
            Some(n) => split(&self.passcode, n).0,
            None => self.passcode.clone(),
        }
    }

    /// Whether the passcode holds an OTP for this credential. A code the service sends counts too,
    /// whenever it was requested: the user may have had it sent by an earlier process (a first signing
    /// attempt, `cloudtoken`, the service's portal), since every client logs in, in a process of its
    /// own, before it signs.
    fn has_usable_otp(&self, need: &Need, passcode_channel: bool) -> bool {
        self.passcode_pin_chars(need, passcode_channel).is_some()
    }

    /// Takes the passcode's OTP, leaving the PIN.
    fn take_passcode_otp(&mut self, need: &Need, passcode_channel: bool) -> Option<Secret> {
        let n = self.passcode_pin_chars(need, passcode_channel)?;
        let (pin, otp) = split(&self.passcode, n);
        self.passcode = pin;
        self.otp_spent = true;
        Some(otp)
    }
}

/// The OTP one channel holds for this authorization, taken (it is single use).
fn take_otp(channel: OtpChannel, user: &mut UserLogin, need: &Need) -> Option<Secret> {
    match channel {
        OtpChannel::Passcode => user.take_passcode_otp(need, true),
        // Context: answered by the operation's context login, which is looked at before any channel.
        // The others are not the login's (see `channel_otp`).
        OtpChannel::Context | OtpChannel::TotpFile | OtpChannel::Prompt => None,
    }
}

/// Whether an authorization for `cred` could happen now without asking the user for anything: an OTP
/// waits in a channel, or the credential needs none. Used to decide whether to have the service send
/// an online OTP.
pub fn otp_at_hand(token: &Token, cred: &Credential) -> bool {
    let need = Need::of(token, cred);
    if !need.otp {
        return true;
    }
    let passcode = token.config.has_channel(OtpChannel::Passcode);
    token.with_login(|l| {
        l.user
            .as_ref()
            .is_some_and(|u| u.has_usable_otp(&need, passcode))
    })
}

/// What a prompt needs to know about the authorization it is for.
struct Asking<'a> {
    token: &'a Token,
    cred: &'a Credential,
    need: &'a Need,
    signatures: u32,
    description: &'a str,
}

impl Asking<'_> {
    fn ask(&self, kind: Kind, attempt: u32, message: &str) -> CkResult<Secret> {
        let config = &self.token.config;
        let command = config.prompt_command.as_deref().unwrap_or_default();
        let otp_type = match kind {
            Kind::Pin => "",
            Kind::Otp if self.need.online_otp => "sms",
            Kind::Otp => "totp",
        };
        prompt::ask(
            command,
            Duration::from_millis(config.prompt_timeout_ms),
            self.token.slot_id,
            &Prompt {
                kind,
                token_label: &config.label,
                key_label: &self.cred.label,
                credential_id: &self.cred.info.id,
                signatures: self.signatures,
                description: self.description,
                otp_type,
                attempt,
                message,
            },
        )
    }
}

fn has_prompt(config: &TokenConfig) -> bool {
    config.prompt_command.is_some()
}

/// The PIN without asking anyone: the login's, else `pin_file`'s.
fn pin_at_hand(token: &Token, need: &Need) -> CkResult<Option<(Secret, Source)>> {
    let passcode = token.config.has_channel(OtpChannel::Passcode);
    let from_login = token.with_login(|l| l.user.as_ref().map(|u| u.pin(need, passcode)));
    if let Some(pin) = from_login {
        return Ok(Some((pin, Source::Login)));
    }
    match &token.config.pin_file {
        Some(path) => crate::config::read_secret_file(path)
            .map(|pin| Some((pin, Source::PinFile)))
            .map_err(|e| {
                error::logged(CKR_FUNCTION_FAILED, format!("slot {}: {e}", token.slot_id))
            }),
        None => Ok(None),
    }
}

/// The OTP one channel yields for this authorization, taken (it is single use). `None`: the channel
/// has none for this credential.
fn channel_otp(channel: OtpChannel, asking: &Asking<'_>) -> CkResult<Option<(Secret, Source)>> {
    let token = asking.token;
    let need = asking.need;
    match channel {
        OtpChannel::Passcode | OtpChannel::Context => Ok(token
            .with_login(|l| l.user.as_mut().and_then(|u| take_otp(channel, u, need)))
            .map(|otp| (otp, Source::Login))),
        OtpChannel::TotpFile => {
            if need.online_otp || !token.totp_applies(&asking.cred.info.id) {
                return Ok(None);
            }
            totp_file_code(token, asking.cred, need).map(|otp| Some((otp, Source::TotpFile)))
        }
        OtpChannel::Prompt => {
            if need.online_otp {
                send_otp(token, asking.cred, asking.signatures)?;
            }
            asking
                .ask(Kind::Otp, 1, "")
                .map(|otp| Some((otp, Source::Prompt)))
        }
    }
}

fn totp_file_code(token: &Token, cred: &Credential, need: &Need) -> CkResult<Secret> {
    let config = &token.config;
    let path = config
        .totp_secret_file
        .as_deref()
        .ok_or(CKR_GENERAL_ERROR)?;
    crate::totp::code(
        token.slot_id,
        path,
        config.totp_period,
        need.otp_len,
        &cred.info.id,
        &token.totp_steps,
    )
}

/// Collects the factors for one authorization. `context` is the C_Login(CKU_CONTEXT_SPECIFIC) value
/// given for this operation, if any. No lock is held while a prompt runs.
fn gather(asking: &Asking<'_>, context: Option<Secret>) -> CkResult<Factors> {
    let token = asking.token;
    let need = asking.need;
    let slot = token.slot_id;
    let id = &asking.cred.info.id;
    let mut pin = None;
    let mut otp = None;
    if let Some(value) = context {
        if need.otp {
            let len = char_len(&value);
            if len > need.otp_len {
                let (p, o) = split(&value, len - need.otp_len);
                pin = Some((p, Source::Context));
                otp = Some((o, Source::Context));
            } else {
                otp = Some((value, Source::Context));
            }
        } else {
            pin = Some((value, Source::Context));
        }
    }
    if need.pin && pin.is_none() {
        pin = pin_at_hand(token, need)?;
        if pin.is_none() && has_prompt(&token.config) {
            pin = Some((asking.ask(Kind::Pin, 1, "")?, Source::Prompt));
        }
        if pin.is_none() {
            return Err(error::logged(
                CKR_USER_NOT_LOGGED_IN,
                format!(
                    "slot {slot}: credential {id} needs the PIN and none is at hand \
                     (log in, or configure pin_file or prompt_command)"
                ),
            ));
        }
    }
    if need.otp && otp.is_none() {
        for channel in token.config.channels() {
            otp = channel_otp(channel, asking)?;
            if otp.is_some() {
                break;
            }
        }
        if otp.is_none() {
            return Err(error::logged(
                CKR_USER_NOT_LOGGED_IN,
                format!(
                    "slot {slot}: credential {id} needs a one-time password and none is at hand \
                     (give it after the PIN at C_Login, with C_Login(CKU_CONTEXT_SPECIFIC) after \
                     C_SignInit, or configure prompt_command)"
                ),
            ));
        }
    }
    Ok(Factors { pin, otp })
}

/// The factor-specific part of a context login value, checked for length.
pub fn check_context_value(token: &Token, cred: &Credential, value: &Secret) -> CkResult<()> {
    let need = Need::of(token, cred);
    if need.otp && char_len(value) < need.otp_len {
        return Err(CKR_PIN_LEN_RANGE);
    }
    Ok(())
}

/// "Sign N document(s) with 'LABEL' for PROCESS", shown to the user by the service (SMS, approval) and
/// by the prompt.
pub fn description(cred: &Credential, n: u32) -> String {
    let process = prompt::process_name();
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

/// Authorizes `req` for `cred`: collects the factors, sends `credentials/authorize`, asks the prompt
/// again when the service refuses what the user typed, and waits for an out-of-band approval when the
/// service answers "pending". `context` is the operation's C_Login(CKU_CONTEXT_SPECIFIC) value.
///
/// A refused PIN from C_Login, or a locked credential, logs the user out so that the module does not
/// send the same PIN again.
pub fn authorize(
    token: &Token,
    cred: &Credential,
    req: Request,
    context: Option<Secret>,
) -> CkResult<Sad> {
    let need = Need::of(token, cred);
    let description = description(cred, req.num_signatures);
    let asking = Asking {
        token,
        cred,
        need: &need,
        signatures: req.num_signatures,
        description: &description,
    };
    let factors = gather(&asking, context)?;
    send_authorize(&asking, &req, factors)
}

fn send_authorize(asking: &Asking<'_>, req: &Request, mut factors: Factors) -> CkResult<Sad> {
    let token = asking.token;
    let cred = asking.cred;
    let slot = token.slot_id;
    let max = token.config.prompt_attempts;
    let mut pin_answers = 1;
    let mut otp_answers = 1;
    let mut totp_retried = false;
    loop {
        let request = AuthorizeRequest {
            credential_id: cred.info.id.clone(),
            num_signatures: req.num_signatures,
            hashes: req.hashes.clone(),
            hash_algorithm_oid: req.hash_alg.map(|h| h.oid().to_owned()),
            pin: factors.pin.as_ref().map(|(s, _)| s.clone()),
            otp: factors.otp.as_ref().map(|(s, _)| s.clone()),
            description: Some(asking.description.to_owned()),
            client_data: None,
        };
        let e = match token.call_raw(|c, t| c.authorize(t, &request)) {
            Ok(Authorization::Granted(sad)) => return Ok(sad),
            Ok(Authorization::Pending { handle }) => {
                return wait_for_approval(token, cred, &handle)
            }
            Err(CallError::Remote(e)) => e,
            Err(e) => return Err(e.into_rv(slot, Step::Authorize)),
        };
        let reason = e.reason();
        let pin_source = Factors::source(&factors.pin);
        let otp_source = Factors::source(&factors.otp);
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
                let otp = totp_file_code(token, cred, asking.need)?;
                factors.otp = Some((otp, Source::TotpFile));
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

/// Polls an authorization the user approves out of band until the SAD arrives (CKR_OK), the user
/// declines (CKR_FUNCTION_REJECTED), or `approval_timeout_ms` passes or the service lets the request
/// expire (CKR_FUNCTION_CANCELED: nobody decided, as with a prompt nobody answers).
fn wait_for_approval(token: &Token, cred: &Credential, handle: &Secret) -> CkResult<Sad> {
    let slot = token.slot_id;
    let id = &cred.info.id;
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
        match token.call_raw(|c, t| c.authorize_check(t, handle)) {
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

/// Has the service send an online OTP (SMS) for `cred`, with the description of the `signatures` it
/// is for (the service shows it next to the code).
pub fn send_otp(token: &Token, cred: &Credential, signatures: u32) -> CkResult<()> {
    let description = description(cred, signatures);
    token.call(Step::SendOtp, |c, t| {
        c.send_otp_with_description(t, &cred.info.id, Some(&description))
    })?;
    log::info!(
        "slot {}: the service sent a one-time password for {}",
        token.slot_id,
        cred.info.id
    );
    Ok(())
}

/// The PIN for C_Login(CKU_USER, NULL_PTR, 0) on a protected-path token: `pin_file`, else the prompt.
/// It is not checked here (CSC has no PIN check without an authorization); a wrong one is reported at
/// the first signature and logs the user out.
pub fn protected_path_pin(token: &Token) -> CkResult<Secret> {
    let config = &token.config;
    let slot = token.slot_id;
    if let Some(path) = &config.pin_file {
        return crate::config::read_secret_file(path)
            .map_err(|e| error::logged(CKR_FUNCTION_FAILED, format!("slot {slot}: {e}")));
    }
    let Some(command) = config.prompt_command.as_deref() else {
        return Err(error::logged(
            CKR_ARGUMENTS_BAD,
            format!("slot {slot}: C_Login without a PIN, and neither pin_file nor prompt_command is set"),
        ));
    };
    let description = format!(
        "Log in to '{}' for {}",
        config.label,
        prompt::process_name()
    );
    prompt::ask(
        command,
        Duration::from_millis(config.prompt_timeout_ms),
        slot,
        &Prompt {
            kind: Kind::Pin,
            token_label: &config.label,
            key_label: "",
            credential_id: "",
            signatures: 0,
            description: &description,
            otp_type: "",
            attempt: 1,
            message: "",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(otp: bool, otp_len: usize, pin_len: Option<usize>) -> Need {
        Need {
            pin: true,
            otp,
            otp_len,
            pin_len,
            online_otp: false,
        }
    }

    fn user(p: &str) -> UserLogin {
        UserLogin {
            passcode: Secret::new(p),
            otp_spent: false,
        }
    }

    #[test]
    fn passcode_splits_pin_and_otp_once() {
        let n = need(true, 6, None);
        let mut u = user("1234987654");
        assert_eq!(u.pin(&n, true).expose(), "1234");
        assert_eq!(
            take_otp(OtpChannel::Passcode, &mut u, &n).unwrap().expose(),
            "987654"
        );
        // Spent: the rest is the PIN, and there is no second OTP.
        assert_eq!(u.pin(&n, true).expose(), "1234");
        assert!(take_otp(OtpChannel::Passcode, &mut u, &n).is_none());
        assert!(take_otp(OtpChannel::Context, &mut u, &n).is_none());
    }

    #[test]
    fn passcode_without_otp_is_the_pin() {
        // Not longer than the OTP, or not PIN+OTP long when the PIN length is known, or the channel off.
        let mut u = user("123456");
        assert!(take_otp(OtpChannel::Passcode, &mut u, &need(true, 6, None)).is_none());
        let mut u = user("12345678");
        assert!(take_otp(OtpChannel::Passcode, &mut u, &need(true, 6, Some(8))).is_none());
        assert_eq!(u.pin(&need(true, 6, Some(8)), true).expose(), "12345678");
        assert!(u.take_passcode_otp(&need(true, 6, None), false).is_none());
        assert!(take_otp(
            OtpChannel::Passcode,
            &mut user("1234987654"),
            &need(false, 6, None)
        )
        .is_none());
    }

    #[test]
    fn known_pin_length_decides_the_pin() {
        // A credential without OTP on a token whose passcode carries one: the PIN length says where it ends.
        let u = user("123456987654");
        assert_eq!(u.pin(&need(false, 6, Some(6)), true).expose(), "123456");
        assert_eq!(u.pin(&need(false, 6, None), true).expose(), "123456987654");
    }

    #[test]
    fn split_counts_characters() {
        let (p, o) = split(&Secret::new("pïn123"), 3);
        assert_eq!((p.expose(), o.expose()), ("pïn", "123"));
    }
}
