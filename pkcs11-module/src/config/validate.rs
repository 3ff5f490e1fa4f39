//! The checks a configuration must pass before any of it is used: one error naming the token and the
//! key, never a half-applied configuration.

use super::files::check_program;
use super::{
    err, ConfigError, DssConfirmation, OtpChannel, Protocol, ServiceAuthKind, TokenConfig,
    TokenMode,
};
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
        let places = [t.url.is_some(), t.url_file.is_some(), t.api_base.is_some()];
        if places.iter().filter(|p| **p).count() != 1 {
            return Err(e("give exactly one of url, url_file and api_base"));
        }
        if t.client_cert.is_some() != t.client_key.is_some() {
            return Err(e("client_cert and client_key go together"));
        }
        validate_protocol_keys(t).map_err(|m| e(&m))?;
        match t.protocol {
            Protocol::Csc => validate_sign_in(t).and_then(|()| validate_channels(t)),
            Protocol::GlobalsignDss => validate_globalsign(t),
            Protocol::CryptoproDss => validate_sign_in(t)
                .and_then(|()| validate_cryptopro(t))
                .and_then(|()| validate_channels(t)),
        }
        .map_err(|m| e(&m))?;
        if let Some(openssl) = &t.openssl_path {
            check_program("openssl_path", openssl).map_err(|m| e(&m))?;
        }
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
            || t.authorize_timeout_ms == Some(0)
        {
            return Err(e("timeouts must be positive"));
        }
    }
    Ok(())
}

/// The keys only one protocol takes: (key, its protocol, given). A key of another protocol is refused
/// rather than silently ignored.
fn protocol_keys(t: &TokenConfig) -> [(&'static str, Protocol, bool); 7] {
    use Protocol::*;
    [
        ("api_key", GlobalsignDss, t.api_key.is_some()),
        (
            "api_secret_file",
            GlobalsignDss,
            t.api_secret_file.is_some(),
        ),
        ("subject_dn", GlobalsignDss, t.subject_dn.is_some()),
        ("dss_sts", CryptoproDss, t.dss_sts.is_some()),
        ("dss_signserver", CryptoproDss, t.dss_signserver.is_some()),
        ("dss_resource", CryptoproDss, t.dss_resource.is_some()),
        (
            "dss_confirmation",
            CryptoproDss,
            t.dss_confirmation.is_some(),
        ),
    ]
}

fn validate_protocol_keys(t: &TokenConfig) -> Result<(), String> {
    match protocol_keys(t)
        .into_iter()
        .find(|(_, owner, given)| *given && *owner != t.protocol)
    {
        Some((key, owner, _)) => Err(format!(
            "{key} is a key of protocol \"{}\", not of \"{}\"",
            owner.name(),
            t.protocol.name()
        )),
        None => Ok(()),
    }
}

/// A GlobalSign DSS token: mutual TLS, the API key and secret, and nothing of the CSC sign-in and
/// second factors (the service has no user PIN or one-time code: the account's credentials are the
/// authorization, so the token is login-free).
fn validate_globalsign(t: &TokenConfig) -> Result<(), String> {
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
    t.secrets.load(secret)?;
    if t.mode != TokenMode::LoginFree {
        return Err(
            "protocol \"globalsign-dss\" has no user PIN: set mode = \"login-free\" (the API key, \
             secret and client certificate authorize every signature)"
                .into(),
        );
    }
    let csc_only = [
        ("service_auth", t.service_auth != ServiceAuthKind::Login),
        ("account", !t.account.is_empty()),
        ("api_base", t.api_base.is_some()),
        ("authorize_timeout_ms", t.authorize_timeout_ms.is_some()),
        ("oauth2_token_url", t.oauth2_token_url.is_some()),
        ("oauth2_authorize_url", t.oauth2_authorize_url.is_some()),
        ("otp_channels", t.otp_channels.is_some()),
        ("prompt_command", t.prompt_command.is_some()),
        ("totp_secret_file", t.totp_secret_file.is_some()),
        ("totp_credential", t.totp_credential.is_some()),
        ("pin_file", t.pin_file.is_some()),
        ("agent_socket", t.agent_socket.is_some()),
        ("always_authenticate", t.always_authenticate),
    ]
    .into_iter()
    .chain(sign_in_keys(t));
    if let Some((key, _)) = csc_only.into_iter().find(|(_, set)| *set) {
        return Err(format!("{key} is not a key of protocol \"globalsign-dss\""));
    }
    if !(1..=86_400).contains(&t.identity_renew_before_s) {
        return Err("identity_renew_before_s must be 1 to 86400".into());
    }
    if !(10..=86_400).contains(&t.session_lifetime_s) {
        return Err("session_lifetime_s must be 10 to 86400".into());
    }
    Ok(())
}

/// The keys each way of signing in takes: (key, given), required first, then optional.
fn sign_in_keys(t: &TokenConfig) -> [(&'static str, bool); 6] {
    [
        ("refresh_token_file", t.refresh_token_file.is_some()),
        ("password_file", t.password_file.is_some()),
        ("access_token_file", t.access_token_file.is_some()),
        ("api_key_file", t.api_key_file.is_some()),
        ("client_id", t.client_id.is_some()),
        ("client_secret_file", t.client_secret_file.is_some()),
    ]
}

/// `service_auth` and the keys it needs: each way of signing in takes exactly its keys, so that a
/// secret meant for another way is never sent (nor silently ignored).
fn validate_sign_in(t: &TokenConfig) -> Result<(), String> {
    use ServiceAuthKind::*;
    let kind = t.service_auth;
    // (required, optional) keys.
    // A client of the service's OAuth 2.0 server may be named with any sign-in: the module uses it for
    // the credentials the user authorizes in the browser (authMode oauth2code).
    let (required, optional): (&[&str], &[&str]) = match kind {
        // One of the two, checked below.
        Login => (
            &[],
            &[
                "refresh_token_file",
                "password_file",
                "client_id",
                "client_secret_file",
            ],
        ),
        None => (&[], &["client_id", "client_secret_file"]),
        Bearer => (&["access_token_file"], &["client_id", "client_secret_file"]),
        ApiKey => (&["api_key_file"], &["client_id", "client_secret_file"]),
        Oauth2Client => (&["client_id", "client_secret_file"], &[]),
        Oauth2Password => (&["client_id", "password_file"], &["client_secret_file"]),
        Oauth2Code => (
            &["client_id", "refresh_token_file"],
            &["client_secret_file"],
        ),
    };
    for (key, given) in sign_in_keys(t) {
        if required.contains(&key) && !given {
            return Err(format!("service_auth \"{}\" needs {key}", kind.name()));
        }
        if given && !required.contains(&key) && !optional.contains(&key) {
            return Err(format!(
                "{key} is not used with service_auth \"{}\"",
                kind.name()
            ));
        }
    }
    if kind == Login {
        if t.refresh_token_file.is_some() == t.password_file.is_some() {
            return Err(
                "service_auth \"login\" needs exactly one of refresh_token_file and password_file"
                    .into(),
            );
        }
        if t.account.is_empty() {
            return Err("account is empty".into());
        }
    }
    if kind == Oauth2Password && t.account.is_empty() {
        return Err("service_auth \"oauth2-password\" needs account".into());
    }
    if t.client_secret_file.is_some() && t.client_id.is_none() {
        return Err("client_secret_file needs client_id".into());
    }
    if t.client_id.is_none() && (t.oauth2_token_url.is_some() || t.oauth2_authorize_url.is_some()) {
        return Err("oauth2_token_url and oauth2_authorize_url need client_id".into());
    }
    if t.api_key_header.is_empty() {
        return Err("api_key_header is empty".into());
    }
    for f in [
        &t.refresh_token_file,
        &t.password_file,
        &t.access_token_file,
        &t.api_key_file,
        &t.client_secret_file,
    ]
    .into_iter()
    .flatten()
    {
        t.secrets.load(f)?;
    }
    Ok(())
}

/// A CryptoPro DSS token signs in with OAuth 2.0 at its identity service (the password grant, or the
/// refresh token of an authorization-code enrolment).
fn validate_cryptopro(t: &TokenConfig) -> Result<(), String> {
    if !matches!(
        t.service_auth,
        ServiceAuthKind::Oauth2Password | ServiceAuthKind::Oauth2Code
    ) {
        return Err(format!(
            "protocol \"cryptopro-dss\" signs in with OAuth 2.0 at the identity service: \
             service_auth \"oauth2-password\" (client_id, account, password_file) or \
             \"oauth2-code\" (client_id, refresh_token_file), not \"{}\"",
            t.service_auth.name()
        ));
    }
    if t.client_id.as_deref().is_some_and(str::is_empty) {
        return Err("client_id is empty".into());
    }
    if t.oauth2_authorize_url.is_some() {
        return Err("oauth2_authorize_url is not used with protocol \"cryptopro-dss\"".into());
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
            "dss_confirmation = \"session\" confirms a sign-in with the account's password: set \
             password_file (service_auth \"oauth2-password\")"
                .into(),
        );
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
        t.secrets.load(f)?;
    }
    Ok(())
}
