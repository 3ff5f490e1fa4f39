//! The checks a configuration must pass before any of it is used: one error naming the token and the
//! key, never a half-applied configuration.

use super::files::{check_program, check_secret_file};
use super::{err, ConfigError, OtpChannel, Protocol, TokenConfig, TokenMode};
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
        if t.client_cert.is_some() != t.client_key.is_some() {
            return Err(e("client_cert and client_key go together"));
        }
        match t.protocol {
            Protocol::Csc => validate_csc(t),
            Protocol::GlobalsignDss => validate_dss(t),
        }
        .map_err(|m| e(&m))?;
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

/// A CSC token: its account and how it signs in, and its second factors.
fn validate_csc(t: &TokenConfig) -> Result<(), String> {
    if t.account.is_empty() {
        return Err("account is empty".into());
    }
    let secret = match (&t.refresh_token_file, &t.password_file) {
        (Some(f), None) | (None, Some(f)) => f,
        _ => return Err("give exactly one of refresh_token_file and password_file".into()),
    };
    check_secret_file(secret)?;
    let dss_only = [
        ("api_key", t.api_key.is_some()),
        ("api_secret_file", t.api_secret_file.is_some()),
        ("subject_dn", t.subject_dn.is_some()),
    ];
    if let Some((key, _)) = dss_only.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{key} is a key of protocol \"globalsign-dss\", not of \"csc\""
        ));
    }
    validate_channels(t)
}

/// A GlobalSign DSS token: mutual TLS, the API key and secret, and nothing of the CSC sign-in and
/// second factors (the service has no user PIN or one-time code: the account's credentials are the
/// authorization, so the token is login-free).
fn validate_dss(t: &TokenConfig) -> Result<(), String> {
    if t.client_cert.is_none() {
        return Err(
            "protocol \"globalsign-dss\" needs client_cert and client_key (the API is reached over \
             mutual TLS with the account's certificate)"
                .into(),
        );
    }
    let key = t.api_key.as_deref().unwrap_or("");
    // The documentation shows 16 hex digits; anything printable without blanks is accepted so that a
    // change of format at GlobalSign does not lock users out.
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("api_key is missing or has blanks or control characters".into());
    }
    let secret = t
        .api_secret_file
        .as_ref()
        .ok_or("api_secret_file is missing")?;
    check_secret_file(secret)?;
    if t.mode != TokenMode::LoginFree {
        return Err(
            "protocol \"globalsign-dss\" has no user PIN: set mode = \"login-free\" (the API key, \
             secret and client certificate authorize every signature)"
                .into(),
        );
    }
    let csc_only = [
        ("account", !t.account.is_empty()),
        ("refresh_token_file", t.refresh_token_file.is_some()),
        ("password_file", t.password_file.is_some()),
        ("otp_channels", t.otp_channels.is_some()),
        ("prompt_command", t.prompt_command.is_some()),
        ("totp_secret_file", t.totp_secret_file.is_some()),
        ("totp_credential", t.totp_credential.is_some()),
        ("pin_file", t.pin_file.is_some()),
        ("agent_socket", t.agent_socket.is_some()),
        ("always_authenticate", t.always_authenticate),
    ];
    if let Some((key, _)) = csc_only.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{key} is a key of protocol \"csc\", not of \"globalsign-dss\""
        ));
    }
    if !(1..=86_400).contains(&t.identity_renew_before_s) {
        return Err("identity_renew_before_s must be 1 to 86400".into());
    }
    if !(10..=86_400).contains(&t.session_lifetime_s) {
        return Err("session_lifetime_s must be 10 to 86400".into());
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
        check_program(Path::new(program))?;
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
    if t.mode.collects_pin() && t.prompt_command.is_none() && t.pin_file.is_none() {
        return Err(format!(
            "mode \"{}\" collects the PIN itself: set prompt_command or pin_file",
            t.mode.name()
        ));
    }
    Ok(())
}
