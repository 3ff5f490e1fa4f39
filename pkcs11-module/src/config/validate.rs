//! The checks a configuration must pass before any of it is used: one error naming the token and the
//! key, never a half-applied configuration.

use super::files::{check_program, check_secret_file};
use super::{err, ConfigError, DssConfirmation, OtpChannel, Protocol, TokenConfig};
use std::collections::HashSet;
use std::path::Path;

pub(super) fn validate(path: &Path, tokens: &[TokenConfig]) -> Result<(), ConfigError> {
    let mut slot_ids = HashSet::new();
    let mut labels = HashSet::new();
    for (i, t) in tokens.iter().enumerate() {
        let which = format!("token {} ({:?})", i + 1, t.label);
        let e = |m: &str| err(path, format!("{which}: {m}"));
        if t.label.is_empty() || t.label.len() > 32 {
            return Err(e("label must be 1 to 32 bytes of UTF-8"));
        }
        if !labels.insert(t.label.clone()) {
            return Err(e("label used twice"));
        }
        let slot = t.slot_id.unwrap_or(i as u64);
        if !slot_ids.insert(slot) {
            return Err(e(&format!("slot_id {slot} used twice")));
        }
        match (&t.url, &t.url_file) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(e("give exactly one of url and url_file")),
        }
        if t.account.is_empty() {
            return Err(e("account is empty"));
        }
        if t.client_cert.is_some() != t.client_key.is_some() {
            return Err(e("client_cert and client_key go together"));
        }
        let secret = match (&t.refresh_token_file, &t.password_file) {
            (Some(f), None) | (None, Some(f)) => f,
            _ => {
                return Err(e(
                    "give exactly one of refresh_token_file and password_file",
                ))
            }
        };
        check_secret_file(secret).map_err(|m| e(&m))?;
        validate_protocol(t).map_err(|m| e(&m))?;
        validate_channels(t).map_err(|m| e(&m))?;
        if !(1..=16).contains(&t.otp_length) {
            return Err(e("otp_length must be 1 to 16"));
        }
        if t.batch_size == 0 {
            return Err(e("batch_size must be at least 1"));
        }
        if t.connect_timeout_ms == 0
            || t.request_timeout_ms == 0
            || t.prompt_timeout_ms == 0
            || t.approval_timeout_ms == 0
        {
            return Err(e("timeouts must be positive"));
        }
    }
    Ok(())
}

/// The settings that belong to one protocol: a CryptoPro DSS token names its OAuth client, and the keys of
/// one protocol are refused on a token of the other (they would be silently ignored).
fn validate_protocol(t: &TokenConfig) -> Result<(), String> {
    let dss_keys = [
        ("client_id", t.client_id.is_some()),
        ("client_secret_file", t.client_secret_file.is_some()),
        ("oauth2_token_url", t.oauth2_token_url.is_some()),
        ("oauth2_scope", t.oauth2_scope.is_some()),
        ("dss_sts", t.dss_sts.is_some()),
        ("dss_signserver", t.dss_signserver.is_some()),
        ("dss_resource", t.dss_resource.is_some()),
        ("dss_confirmation", t.dss_confirmation.is_some()),
    ];
    match t.protocol {
        Protocol::Csc => {
            if let Some((key, _)) = dss_keys.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{key} is a setting of protocol \"cryptopro-dss\", not of \"csc\""
                ));
            }
        }
        Protocol::CryptoproDss => {
            if t.client_id.as_deref().is_none_or(str::is_empty) {
                return Err(
                    "protocol \"cryptopro-dss\" needs client_id (the OAuth client registered \
                            at the identity service)"
                        .into(),
                );
            }
            if let Some(f) = &t.client_secret_file {
                check_secret_file(f)?;
            }
            for name in [&t.dss_sts, &t.dss_signserver].into_iter().flatten() {
                if name.is_empty() || name.contains(['/', '?', '#']) {
                    return Err(format!(
                        "dss_sts and dss_signserver are application names, not paths: {name:?}"
                    ));
                }
            }
            if t.dss_confirmation == Some(DssConfirmation::Session) && t.password_file.is_none() {
                return Err(
                    "dss_confirmation = \"session\" confirms a sign-in with the account's \
                            password: set password_file"
                        .into(),
                );
            }
        }
    }
    Ok(())
}

/// The second-factor settings of one token: channels, prompt, unattended secrets, and the mode's need
/// for a PIN source.
fn validate_channels(t: &TokenConfig) -> Result<(), String> {
    if let Some(listed) = &t.otp_channels {
        if listed.is_empty() {
            return Err("otp_channels is empty".into());
        }
        if listed.contains(&OtpChannel::Prompt) && t.prompt_command.is_none() {
            return Err("otp_channels lists \"prompt\" but prompt_command is not set".into());
        }
        if listed.contains(&OtpChannel::TotpFile) && t.totp_secret_file.is_none() {
            return Err("otp_channels lists \"totp-file\" but totp_secret_file is not set".into());
        }
    }
    if let Some(command) = &t.prompt_command {
        let program = command.first().ok_or("prompt_command is empty")?;
        check_program("prompt_command", Path::new(program))?;
    }
    if let Some(openssl) = &t.openssl_path {
        check_program("openssl_path", openssl)?;
    }
    if !(1..=10).contains(&t.prompt_attempts) {
        return Err("prompt_attempts must be 1 to 10".into());
    }
    if !(1..=3600).contains(&t.totp_period) {
        return Err("totp_period must be 1 to 3600 seconds".into());
    }
    if t.totp_credential.is_some() && t.totp_secret_file.is_none() {
        return Err("totp_credential needs totp_secret_file".into());
    }
    for f in [&t.totp_secret_file, &t.pin_file].into_iter().flatten() {
        check_secret_file(f)?;
    }
    // A CryptoPro DSS user confirms out of band and gives no PIN to the service (a key with a PIN of its
    // own asks at signing time).
    if t.mode.collects_pin()
        && t.protocol == Protocol::Csc
        && t.prompt_command.is_none()
        && t.pin_file.is_none()
    {
        return Err(format!(
            "mode \"{}\" collects the PIN itself: set prompt_command or pin_file",
            t.mode.name()
        ));
    }
    Ok(())
}
