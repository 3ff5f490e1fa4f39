//! Where the PIN and the OTP of one authorization come from.
//!
//! The PIN comes from, in this order: the operation's context-login value when it has the PIN+OTP form;
//! the C_Login(CKU_USER) value; `pin_file`; the prompt. The OTP comes from the operation's
//! C_Login(CKU_CONTEXT_SPECIFIC) value, else from the token's channels in their configured order
//! ([`TokenConfig::channels`]): "passcode" (the C_Login(CKU_USER) value carries it after the PIN),
//! "context" (answered by the context value, so nothing more here), "totp-file" (computed, unattended)
//! and "prompt" (the user answers; an online OTP is sent first).
//!
//! Passcode rule: the C_Login(CKU_USER) value is PIN+OTP when the "passcode" channel is on, the
//! credential uses an OTP, and the value is longer than the OTP length (the credential's, else the
//! configured `otp_length`) — and, when the service states the PIN length, exactly PIN+OTP long.
//!
//! Calls the login state, the prompt and TOTP channels, and (for an SMS before the prompt asks) the
//! exchange; no lock is held while a prompt runs.

use super::exchange::send_otp;
use super::policy::{self, Need};
use crate::config::{OtpChannel, TokenConfig};
use crate::error::{self, CkResult};
use crate::prompt::{self, Kind, Prompt};
use crate::service::Secret;
use crate::token::login::UserLogin;
use crate::token::{Credential, Token};
use cryptoki_sys::*;
use std::time::Duration;

/// Where a factor came from: decides whether a refused one may be asked again, and whether a refused
/// PIN ends the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
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
pub(super) struct Factors {
    pub(super) pin: Option<(Secret, Source)>,
    pub(super) otp: Option<(Secret, Source)>,
}

impl Factors {
    pub(super) fn pin_source(&self) -> Option<Source> {
        self.pin.as_ref().map(|(_, s)| *s)
    }

    pub(super) fn otp_source(&self) -> Option<Source> {
        self.otp.as_ref().map(|(_, s)| *s)
    }
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

/// The PIN length within the passcode if it has the shape of PIN+OTP for this need.
fn passcode_pin_chars(user: &UserLogin, need: &Need, passcode_channel: bool) -> Option<usize> {
    if !passcode_channel || !need.otp || user.otp_spent {
        return None;
    }
    let len = char_len(&user.passcode);
    if len <= need.otp_len {
        return None;
    }
    match need.pin_len {
        Some(p) if p + need.otp_len != len => None,
        _ => Some(len - need.otp_len),
    }
}

/// The PIN within the login's passcode.
fn login_pin(user: &UserLogin, need: &Need, passcode_channel: bool) -> Secret {
    let len = char_len(&user.passcode);
    let pin_chars = match need.pin_len {
        Some(p) if len > p => Some(p),
        _ => passcode_pin_chars(user, need, passcode_channel),
    };
    match pin_chars {
        Some(n) => split(&user.passcode, n).0,
        None => user.passcode.clone(),
    }
}

/// Takes the passcode's OTP, leaving the PIN.
fn take_passcode_otp(user: &mut UserLogin, need: &Need, passcode_channel: bool) -> Option<Secret> {
    let n = passcode_pin_chars(user, need, passcode_channel)?;
    let (pin, otp) = split(&user.passcode, n);
    user.passcode = pin;
    user.otp_spent = true;
    Some(otp)
}

/// Whether the login's passcode holds an OTP for `cred`. A code the service sends counts too, whenever it
/// was requested: the user may have had it sent by an earlier process (a first signing attempt,
/// `cloudtoken`, the service's portal), since every client logs in, in a process of its own, before it
/// signs.
pub fn otp_at_hand(token: &Token, cred: &Credential) -> bool {
    let passcode = token.config.has_channel(OtpChannel::Passcode);
    token
        .login
        .with_user(|u| passcode_pin_chars(u, &cred.need, passcode).is_some())
        .unwrap_or(false)
}

/// What a prompt needs to know about the authorization it is for.
pub(super) struct Asking<'a> {
    pub(super) token: &'a Token,
    pub(super) cred: &'a Credential,
    pub(super) signatures: u32,
    pub(super) description: &'a str,
}

impl Asking<'_> {
    pub(super) fn ask(&self, kind: Kind, attempt: u32, message: &str) -> CkResult<Secret> {
        let config = &self.token.config;
        let command = config.prompt_command.as_deref().unwrap_or_default();
        let otp_type = match kind {
            Kind::Pin => "",
            Kind::Otp if self.cred.need.online_otp => "sms",
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
                credential_id: self.cred.id(),
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
    if let Some(pin) = token.login.with_user(|u| login_pin(u, need, passcode)) {
        return Ok(Some((pin, Source::Login)));
    }
    match &token.config.pin_file {
        Some(path) => token
            .config
            .secrets
            .read(path)
            .map(|pin| Some((pin, Source::PinFile)))
            .map_err(|e| {
                error::logged(CKR_FUNCTION_FAILED, format!("slot {}: {e}", token.slot_id))
            }),
        None => Ok(None),
    }
}

/// The OTP one channel yields for this authorization, taken (it is single use). `None`: the channel has
/// none for this credential.
fn channel_otp(channel: OtpChannel, asking: &Asking<'_>) -> CkResult<Option<(Secret, Source)>> {
    let token = asking.token;
    let need = &asking.cred.need;
    match channel {
        OtpChannel::Passcode => Ok(token
            .login
            .with_user(|u| take_passcode_otp(u, need, true))
            .flatten()
            .map(|otp| (otp, Source::Login))),
        // Answered by the operation's context login, which is looked at before any channel.
        OtpChannel::Context => Ok(None),
        OtpChannel::TotpFile => {
            if need.online_otp || !policy::totp_applies(&token.config, asking.cred.id()) {
                return Ok(None);
            }
            totp_file_code(token, asking.cred).map(|otp| Some((otp, Source::TotpFile)))
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

/// The code for the next unused step of the token's TOTP secret.
pub(super) fn totp_file_code(token: &Token, cred: &Credential) -> CkResult<Secret> {
    let config = &token.config;
    let path = config
        .totp_secret_file
        .as_deref()
        .ok_or(CKR_GENERAL_ERROR)?;
    let secret = config
        .secrets
        .read(path)
        .map_err(|e| error::logged(CKR_FUNCTION_FAILED, format!("slot {}: {e}", token.slot_id)))?;
    crate::totp::code(
        token.slot_id,
        &secret,
        path,
        config.totp_period,
        cred.need.otp_len,
        &totp_key(token, cred),
        &token.totp_steps,
    )
}

/// Whose steps a code uses up, in the store the user's processes share: the credential at the service
/// and account (hashed: the store names no account or credential).
fn totp_key(token: &Token, cred: &Credential) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        token.account.address().unwrap_or_default().as_str(),
        token.config.account.as_str(),
        cred.id(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Collects the factors for one authorization. `context` is the C_Login(CKU_CONTEXT_SPECIFIC) value
/// given for this operation, if any.
pub(super) fn gather(asking: &Asking<'_>, context: Option<Secret>) -> CkResult<Factors> {
    let token = asking.token;
    let need = &asking.cred.need;
    let slot = token.slot_id;
    let id = asking.cred.id();
    let mut pin = None;
    let mut otp = None;
    if let Some(value) = context {
        let (p, o) = classify_context_value(token, need, value)?;
        pin = p.map(|p| (p, Source::Context));
        otp = o.map(|o| (o, Source::Context));
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

/// The factors of a background renewal (renew.rs): the PIN at hand (the login's or `pin_file`'s) and
/// the code from `totp_secret_file`; never the prompt or the passcode's code, which a person gave.
pub(super) fn unattended(token: &Token, cred: &Credential) -> CkResult<Factors> {
    let need = &cred.need;
    let pin = if need.pin {
        Some(pin_at_hand(token, need)?.ok_or(CKR_USER_NOT_LOGGED_IN)?)
    } else {
        None
    };
    let otp = if need.otp {
        if need.online_otp || !policy::totp_applies(&token.config, cred.id()) {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        Some((totp_file_code(token, cred)?, Source::TotpFile))
    } else {
        None
    };
    Ok(Factors { pin, otp })
}

/// What a C_Login(CKU_CONTEXT_SPECIFIC) value holds for a credential: the PIN alone (as PKCS#11 defines
/// the context login; recognised by being the PIN at hand, and the code then comes from the channels),
/// the PIN followed by the code (longer than a code), or the code alone.
fn classify_context_value(
    token: &Token,
    need: &Need,
    value: Secret,
) -> CkResult<(Option<Secret>, Option<Secret>)> {
    if !need.otp {
        return Ok((Some(value), None));
    }
    if need.pin {
        if let Some((pin, _)) = pin_at_hand(token, need)? {
            if pin.expose() == value.expose() {
                return Ok((Some(value), None));
            }
        }
    }
    let len = char_len(&value);
    let pin_len_fits = need.pin_len.is_none_or(|p| p + need.otp_len == len);
    if len > need.otp_len && pin_len_fits {
        let (p, o) = split(&value, len - need.otp_len);
        return Ok((Some(p), Some(o)));
    }
    Ok((None, Some(value)))
}

/// The PIN for C_Login(CKU_USER, NULL_PTR, 0) on a protected-path token: `pin_file`, else the prompt.
/// It is not checked here (CSC has no PIN check without an authorization); a wrong one is reported at
/// the first signature and logs the user out.
pub fn protected_path_pin(token: &Token) -> CkResult<Secret> {
    let config = &token.config;
    let slot = token.slot_id;
    if let Some(path) = &config.pin_file {
        return config
            .secrets
            .read(path)
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
        assert_eq!(login_pin(&u, &n, true).expose(), "1234");
        assert_eq!(
            take_passcode_otp(&mut u, &n, true).unwrap().expose(),
            "987654"
        );
        // Spent: the rest is the PIN, and there is no second OTP.
        assert_eq!(login_pin(&u, &n, true).expose(), "1234");
        assert!(take_passcode_otp(&mut u, &n, true).is_none());
    }

    #[test]
    fn passcode_without_otp_is_the_pin() {
        // Not longer than the OTP, or not PIN+OTP long when the PIN length is known, or the channel off.
        let mut u = user("123456");
        assert!(take_passcode_otp(&mut u, &need(true, 6, None), true).is_none());
        let mut u = user("12345678");
        assert!(take_passcode_otp(&mut u, &need(true, 6, Some(8)), true).is_none());
        assert_eq!(
            login_pin(&u, &need(true, 6, Some(8)), true).expose(),
            "12345678"
        );
        assert!(take_passcode_otp(&mut u, &need(true, 6, None), false).is_none());
        assert!(take_passcode_otp(&mut user("1234987654"), &need(false, 6, None), true).is_none());
    }

    #[test]
    fn known_pin_length_decides_the_pin() {
        // A credential without OTP on a token whose passcode carries one: the PIN length says where it ends.
        let u = user("123456987654");
        assert_eq!(
            login_pin(&u, &need(false, 6, Some(6)), true).expose(),
            "123456"
        );
        assert_eq!(
            login_pin(&u, &need(false, 6, None), true).expose(),
            "123456987654"
        );
    }

    #[test]
    fn split_counts_characters() {
        let (p, o) = split(&Secret::new("pïn123"), 3);
        assert_eq!((p.expose(), o.expose()), ("pïn", "123"));
    }
}
