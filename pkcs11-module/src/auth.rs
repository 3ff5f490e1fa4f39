//! The one authorization step: which PIN and OTP a credential's `credentials/authorize` gets, and the
//! request itself.
//!
//! Factors come from, in this order:
//! 1. the value of a C_Login(CKU_CONTEXT_SPECIFIC) given for the very operation being authorized (an OTP
//!    alone, or PIN+OTP as clients that reuse the PIN send it);
//! 2. the token's `otp_channels`, in the configured order — each an [`OtpChannel`] answered by
//!    [`take_otp`]. "passcode": the C_Login(CKU_USER) value carries the OTP after the PIN. "context" is
//!    answered by (1). A new channel (a prompt command, an authenticator secret) is one more arm there.
//!
//! An OTP is used for one authorize attempt and then forgotten, whatever the outcome.
//!
//! Passcode rule: the C_Login(CKU_USER) value is PIN+OTP when the "passcode" channel is on, the
//! credential uses an OTP, and the value is longer than the OTP length (the credential's, else the
//! configured `otp_length`) — and, when the service states the PIN length, exactly PIN+OTP long.

use crate::config::OtpChannel;
use crate::error::{self, CkResult, Step};
use crate::mechanism::HashAlg;
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
    /// The passcode's OTP part may be used for this credential: always for an OTP the user's device
    /// makes; for one the service sends, only if it was sent before the current login (so the user could
    /// type it after the PIN).
    pub passcode_usable: bool,
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
            passcode_usable: !online_otp || token.otp_sent_before_login(&cred.info.id),
        }
    }
}

/// The factors of one authorize request.
pub struct Factors {
    pub pin: Option<Secret>,
    pub otp: Option<Secret>,
    /// The PIN came from C_Login(CKU_USER) (so a wrong one logs the user out).
    pin_from_login: bool,
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

    /// Whether the passcode holds an OTP this credential may use.
    fn has_usable_otp(&self, need: &Need, passcode_channel: bool) -> bool {
        need.passcode_usable && self.passcode_pin_chars(need, passcode_channel).is_some()
    }

    /// Takes the passcode's OTP, leaving the PIN.
    fn take_passcode_otp(&mut self, need: &Need, passcode_channel: bool) -> Option<Secret> {
        if !need.passcode_usable {
            return None;
        }
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
        // Answered by the operation's context login, which callers pass in before any channel is asked.
        OtpChannel::Context => None,
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

/// Collects the factors for one authorization of `cred`. `context` is the C_Login(CKU_CONTEXT_SPECIFIC)
/// value given for this operation, if any. CKR_USER_NOT_LOGGED_IN when the user is not logged in or no
/// OTP is at hand.
pub fn collect(token: &Token, cred: &Credential, context: Option<Secret>) -> CkResult<Factors> {
    let need = Need::of(token, cred);
    let passcode = token.config.has_channel(OtpChannel::Passcode);
    let channels = token.config.otp_channels.clone();
    let slot = token.slot_id;
    token.with_login(|l| {
        let user = l.user.as_mut().ok_or(CKR_USER_NOT_LOGGED_IN)?;
        let mut pin = user.pin(&need, passcode);
        let mut pin_from_login = true;
        let mut otp = None;
        if let Some(value) = context {
            if need.otp {
                let len = char_len(&value);
                if len > need.otp_len {
                    let (p, o) = split(&value, len - need.otp_len);
                    pin = p;
                    pin_from_login = false;
                    otp = Some(o);
                } else {
                    otp = Some(value);
                }
            } else {
                pin = value;
                pin_from_login = false;
            }
        } else if need.otp {
            otp = channels
                .iter()
                .find_map(|c| take_otp(*c, user, &need));
        }
        if need.otp && otp.is_none() {
            return Err(error::logged(
                CKR_USER_NOT_LOGGED_IN,
                format!(
                    "slot {slot}: credential {} needs a one-time password and none is at hand \
                     (give it after the PIN at C_Login, or with C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit)",
                    cred.info.id
                ),
            ));
        }
        Ok(Factors {
            pin: need.pin.then_some(pin),
            otp,
            pin_from_login,
        })
    })
}

/// The factor-specific part of a context login value, checked for length.
pub fn check_context_value(token: &Token, cred: &Credential, value: &Secret) -> CkResult<()> {
    let need = Need::of(token, cred);
    if need.otp && char_len(value) < need.otp_len {
        return Err(CKR_PIN_LEN_RANGE);
    }
    Ok(())
}

/// "Sign N document(s) with 'LABEL' for PROCESS", shown to the user by the service (SMS, approval).
pub fn description(cred: &Credential, n: u32) -> String {
    let process = std::fs::read_to_string("/proc/self/comm")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "an application".to_owned());
    let what = if n == 1 { "document" } else { "documents" };
    let mut d = format!("Sign {n} {what} with '{}' for {process}", cred.label);
    if d.chars().count() > 500 {
        d = d.chars().take(500).collect();
    }
    d
}

/// `credentials/authorize` for `num_signatures` signatures (SCAL 2: exactly `hashes`). Waits for an
/// out-of-band approval when the service answers "pending". A wrong PIN from C_Login, or a locked
/// credential, logs the user out so that the module does not send the same PIN again.
pub fn authorize(
    token: &Token,
    cred: &Credential,
    num_signatures: u32,
    hashes: Vec<Vec<u8>>,
    hash_alg: Option<HashAlg>,
    factors: Factors,
) -> CkResult<Sad> {
    let slot = token.slot_id;
    let request = AuthorizeRequest {
        credential_id: cred.info.id.clone(),
        num_signatures,
        hashes,
        hash_algorithm_oid: hash_alg.map(|h| h.oid().to_owned()),
        pin: factors.pin,
        otp: factors.otp,
        description: Some(description(cred, num_signatures)),
        client_data: None,
    };
    let result = token.call_raw(|c, t| c.authorize(t, &request));
    // Whatever the outcome, a sent OTP has had its one use.
    token.forget_otp_sent(&cred.info.id);
    let outcome = match result {
        Ok(a) => a,
        Err(CallError::Remote(e)) => {
            let reason = e.reason();
            if (reason == Reason::PinIncorrect && factors.pin_from_login)
                || reason == Reason::Locked
            {
                log::error!("slot {slot}: logging the user out: the service refused the PIN");
                token.logout();
            }
            return Err(error::from_remote(slot, Step::Authorize, &e));
        }
        Err(e) => return Err(e.into_rv(slot, Step::Authorize)),
    };
    let handle = match outcome {
        Authorization::Granted(sad) => return Ok(sad),
        Authorization::Pending { handle } => handle,
    };
    log::info!("slot {slot}: waiting for the user to approve the signature");
    let deadline =
        Instant::now() + Duration::from_millis(token.config.request_timeout_ms.max(60_000));
    loop {
        std::thread::sleep(Duration::from_secs(1));
        match token.call(Step::Authorize, |c, t| c.authorize_check(t, &handle))? {
            Authorization::Granted(sad) => return Ok(sad),
            Authorization::Pending { .. } if Instant::now() < deadline => continue,
            Authorization::Pending { .. } => {
                return Err(error::logged(
                    CKR_FUNCTION_CANCELED,
                    format!("slot {slot}: the approval did not come in time"),
                ))
            }
        }
    }
}

/// Has the service send an online OTP (SMS) for `cred`.
pub fn send_otp(token: &Token, cred: &Credential) -> CkResult<()> {
    token.call(Step::SendOtp, |c, t| c.send_otp(t, &cred.info.id))?;
    token.note_otp_sent(&cred.info.id);
    log::info!(
        "slot {}: the service sent a one-time password for {}",
        token.slot_id,
        cred.info.id
    );
    Ok(())
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
            passcode_usable: true,
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
    fn passcode_otp_for_a_sent_code_only_when_sent_before_login() {
        let mut n = need(true, 6, None);
        n.online_otp = true;
        n.passcode_usable = false;
        let mut u = user("123456987654");
        // Not usable: the OTP part is left alone, yet the PIN is still the passcode's first part.
        assert!(!u.has_usable_otp(&n, true));
        assert!(take_otp(OtpChannel::Passcode, &mut u, &n).is_none());
        assert_eq!(u.pin(&n, true).expose(), "123456");
        n.passcode_usable = true;
        assert!(u.has_usable_otp(&n, true));
        assert_eq!(
            take_otp(OtpChannel::Passcode, &mut u, &n).unwrap().expose(),
            "987654"
        );
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
