//! The second-factor policy, in one place: what a credential needs (decided once, when the credential is
//! loaded), how many signatures one authorization covers, which keys ask the application for a context
//! login per signature, whether the token's TOTP secret belongs to a credential, and when an online
//! one-time password (SMS) is sent.
//!
//! Pure decisions over the configuration and the credential; calls nothing that does I/O.

use crate::config::{OtpChannel, TokenConfig};
use crate::service::{AuthMode, CredentialInfo, OtpType, Scal};
use crate::token::Credential;

/// What a credential asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub pin: bool,
    pub otp: bool,
    /// Characters of the OTP: the credential's, else the token's `otp_length`.
    pub otp_len: usize,
    /// Characters of the PIN when the service says.
    pub pin_len: Option<usize>,
    /// The service sends the OTP (SMS) after `send_otp`.
    pub online_otp: bool,
}

impl Need {
    pub fn of(info: &CredentialInfo, otp_length: usize) -> Need {
        let auth = &info.auth;
        let otp = auth.otp.is_some();
        Need {
            pin: auth.pin.is_some() || (!otp && auth.mode == AuthMode::Explicit),
            otp,
            otp_len: auth
                .otp
                .as_ref()
                .and_then(|o| o.factor.length)
                .filter(|l| *l > 0)
                .unwrap_or(otp_length),
            pin_len: auth.pin.as_ref().and_then(|p| p.length).filter(|l| *l > 0),
            online_otp: auth
                .otp
                .as_ref()
                .is_some_and(|o| o.otp_type == OtpType::Online),
        }
    }
}

/// Whether `totp_secret_file` is the secret of this credential.
pub fn totp_applies(config: &TokenConfig, credential_id: &str) -> bool {
    config.totp_secret_file.is_some()
        && config
            .totp_credential
            .as_deref()
            .is_none_or(|c| c == credential_id)
}

/// CKA_ALWAYS_AUTHENTICATE: every key when the token says so; a SCAL 2 key only when a context login is
/// the only way to get its per-signature OTP (no prompt, no applicable TOTP secret), so that the default
/// works for applications that never make a context login.
pub fn always_authenticate(config: &TokenConfig, info: &CredentialInfo, need: &Need) -> bool {
    if config.always_authenticate {
        return true;
    }
    if info.scal != Scal::Two || !need.otp {
        // Nothing to collect per signature (an approval credential answers out of band).
        return false;
    }
    let by_file = !need.online_otp && totp_applies(config, &info.id);
    config.has_channel(OtpChannel::Context)
        && !config.has_channel(OtpChannel::Prompt)
        && !(by_file && config.has_channel(OtpChannel::TotpFile))
}

/// Signatures one authorization covers: SCAL 1 a batch — the size CLOUDTOKEN_BATCH_SIGNATURES gives for
/// the whole package (batch.rs), else `batch_size` — capped by the credential's `multisign`; SCAL 2 and
/// keys with CKA_ALWAYS_AUTHENTICATE one.
pub fn signatures_per_authorization(config: &TokenConfig, cred: &Credential) -> u32 {
    if cred.info.scal == Scal::Two || cred.always_authenticate {
        1
    } else {
        let batch = crate::batch::signatures().unwrap_or(config.batch_size);
        batch.min(cred.info.multisign).max(1)
    }
}

/// Whether the next batch of `cred` may be authorized in the background, before the one in use runs out:
/// only when nobody is asked for it — the PIN from the login (`login_pin`) or `pin_file`, the code from
/// `totp_secret_file`, or nothing at all (`authMode` implicit). Never with a prompt, a context login, an
/// SMS code or an approval (a person gives those), never for SCAL 2 or CKA_ALWAYS_AUTHENTICATE keys
/// (one authorization per signature).
pub fn renews_unattended(config: &TokenConfig, cred: &Credential, login_pin: bool) -> bool {
    let need = &cred.need;
    if cred.info.scal != Scal::One
        || cred.always_authenticate
        || need.online_otp
        || cred.info.auth.mode == AuthMode::OAuth2Code
    {
        return false;
    }
    let pin = !need.pin || login_pin || config.pin_file.is_some();
    let otp =
        !need.otp || (config.has_channel(OtpChannel::TotpFile) && totp_applies(config, cred.id()));
    pin && otp
}

/// When the service must send an online OTP (SMS) for a signature:
/// - at C_SignInit when the application will ask the user for it at a context login (so it has arrived by
///   then): the key asks for a context login, or no batch, passcode or prompt can answer;
/// - otherwise the prompt channel has it sent right before it asks (auth/factors.rs), and nothing is sent
///   when a batch or the passcode already covers the signature.
pub fn send_otp_at_sign_init(
    config: &TokenConfig,
    cred: &Credential,
    otp_at_hand: bool,
    batch_at_hand: impl FnOnce() -> bool,
) -> bool {
    if !cred.need.online_otp {
        return false;
    }
    cred.always_authenticate
        || !(otp_at_hand
            || (cred.info.scal == Scal::One && batch_at_hand())
            || config.has_channel(OtpChannel::Prompt))
}
