//! `cloudtoken status`: what each configured token looks like from here — is the service reachable and
//! its TLS certificate trusted, does the stored enrolment still work, which credentials and certificates
//! the account has (with expiry and the `pkcs11:` URIs applications can use), and how the second factor
//! is collected.

use crate::config_file;
use crate::signin;
use crate::words::{self, Failure, Outcome};
use cloudtoken::agent::Agent;
use cloudtoken::config::{OtpChannel, TokenConfig, TokenMode};
use cloudtoken::naming::{self, ObjectType};
use der::Decode;
use remote_client::{ApiVersion, AuthMode, CredentialInfo, CscClient, OtpType, Scal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Certificates closer to their end than this get a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (default: the one the module finds: CLOUDTOKEN_CONFIG,
    /// ~/.config/cloudtoken/cloudtoken.toml, /etc/cloudtoken/cloudtoken.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only the token with this label.
    #[arg(long)]
    token: Option<String>,
}

pub fn run(args: Args) -> Outcome<ExitCode> {
    let config = config_file::load(args.config)?;
    if let Some(source) = &config.source {
        println!("Configuration: {}", source.display());
    }
    let tokens: Vec<&TokenConfig> = config
        .tokens
        .iter()
        .filter(|t| args.token.as_ref().is_none_or(|l| &t.label == l))
        .collect();
    if tokens.is_empty() {
        return Err(Failure(match args.token {
            Some(l) => format!("No token is labelled \"{l}\" in the configuration."),
            None => "The configuration has no tokens. Enrol one: cloudtoken enroll --url URL --account NAME"
                .to_owned(),
        }));
    }
    let mut healthy = true;
    for (i, t) in tokens.iter().enumerate() {
        println!();
        let slot = t.slot_id.unwrap_or(i as u64);
        println!("Token \"{}\" (slot {slot})", t.label);
        if let Err(e) = token_status(t) {
            healthy = false;
            println!("  PROBLEM      {e}");
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn token_status(t: &TokenConfig) -> Outcome<()> {
    if t.protocol == cloudtoken::config::Protocol::GlobalsignDss {
        let url = cloudtoken::service::base_url(t).unwrap_or_default();
        return crate::status_globalsign::token_status(t, tls_words(t, &url));
    }
    let cc = cloudtoken::service::csc::client_config(t).map_err(|e| {
        Failure(format!(
            "The service address cannot be read: {e}. Check url / url_file in the configuration."
        ))
    })?;
    let url = cc.api_base.clone().unwrap_or_else(|| cc.base_url.clone());
    let client = CscClient::new(&cc).map_err(|e| words::service(&url, t.ca_file.as_deref(), &e))?;
    let info = client
        .info()
        .map_err(|e| words::service(&url, t.ca_file.as_deref(), &e))?;
    let version = match client
        .api_version()
        .map_err(|e| words::service(&url, t.ca_file.as_deref(), &e))?
    {
        ApiVersion::V1 => "v1",
        _ => "v2",
    };
    let name = if info.name.is_empty() {
        String::new()
    } else {
        format!(" \"{}\"", info.name)
    };
    println!(
        "  service      {url}: reachable{name}, CSC API {version} (service speaks {})",
        info.specs
    );
    println!("  TLS          {}", tls_words(t, &url));

    let signed = signin::sign_in(t, &client, &url)?;
    println!("  account      {}", signin::describe(t));
    let access = &signed.access;
    let offers = |m: &str| client.offers(m).unwrap_or(true);
    if !offers("credentials/list") {
        signin::sign_out(t, &client, access);
        return Err(Failure(
            "The service does not list credentials/list in its info: it cannot show this token's \
             credentials."
                .to_owned(),
        ));
    }
    let ids = client
        .list_credentials(access)
        .map_err(|e| words::service(&url, t.ca_file.as_deref(), &e))?;
    println!("  login        {}", mode_words(t));
    println!("  channels     {}", channel_words(t));
    println!("  agent        {}", agent_words(t, &url));
    println!(
        "  batch        up to {} signatures per authorization (capped by each credential)",
        t.batch_size
    );
    println!("  credentials  {}", ids.len());
    let mut problems = Vec::new();
    let info_offered = offers("credentials/info");
    for id in ids.iter().filter(|_| info_offered) {
        match client.credential_info(access, id) {
            Ok(c) => {
                if let Some(p) = print_credential(&t.label, &c) {
                    problems.push(p);
                }
            }
            Err(e) => problems.push(format!(
                "credential {id}: {}",
                words::service(&url, t.ca_file.as_deref(), &e)
            )),
        }
    }
    if !info_offered {
        println!("    (the service does not offer credentials/info: no details)");
    }
    signin::sign_out(t, &client, access);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure(problems.join("; ")))
    }
}

fn tls_words(t: &TokenConfig, url: &str) -> String {
    if url.starts_with("http://") {
        return "not used: plain HTTP, allowed only to this computer (allow_loopback_http)"
            .to_owned();
    }
    let ca = match &t.ca_file {
        Some(ca) => format!("the certificate authority in {}", ca.display()),
        None => "this computer's trusted certificate authorities".to_owned(),
    };
    let client = match (&t.client_cert, &t.client_key) {
        (Some(c), _) => format!("; this computer identifies itself with {}", c.display()),
        _ => String::new(),
    };
    format!("verified: the service's certificate is trusted through {ca}{client}")
}

fn mode_words(t: &TokenConfig) -> String {
    match t.mode {
        TokenMode::Pin => {
            "mode pin: applications log in with the PIN (the one-time code may follow it)"
        }
        TokenMode::ProtectedPath => {
            "mode protected-path: applications log in without a PIN; the module asks for it"
        }
        TokenMode::LoginFree => {
            "mode login-free: no login; the module asks for the PIN and code when signing"
        }
    }
    .to_owned()
}

fn channel_name(c: OtpChannel) -> String {
    match c {
        OtpChannel::Passcode => "passcode (after the PIN at login)".to_owned(),
        OtpChannel::Context => "context (the application asks again per signature)".to_owned(),
        OtpChannel::TotpFile => "totp-file (computed from a stored secret: unattended)".to_owned(),
        OtpChannel::Prompt => "prompt".to_owned(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}").to_lowercase(),
    }
}

fn channel_words(t: &TokenConfig) -> String {
    let mut text = t
        .channels()
        .into_iter()
        .map(channel_name)
        .collect::<Vec<_>>()
        .join(", then ");
    if text.is_empty() {
        text = "none".to_owned();
    }
    if let Some(cmd) = &t.prompt_command {
        text.push_str(&format!("; prompt command: {}", cmd.join(" ")));
    }
    format!("one-time codes from: {text}")
}

fn agent_words(t: &TokenConfig, url: &str) -> String {
    match Agent::for_token(t, url) {
        None => "none: each process authorizes its own signatures".to_owned(),
        Some(a) => {
            let reach = if a.is_running() {
                "running"
            } else {
                "NOT running: signing processes will each ask for a code"
            };
            format!("{} ({reach})", a.socket().display())
        }
    }
}

/// Prints one credential; returns a problem to report (an expired certificate).
fn print_credential(token_label: &str, c: &CredentialInfo) -> Option<String> {
    let label = naming::credential_label(c);
    let id = naming::credential_ckaid(&c.id);
    println!("    {label}");
    println!("      credential   {}: {}", c.id, credential_words(c));
    let mut problem = None;
    match c.certificates.first().map(|der| certificate_facts(der)) {
        Some(Ok((subject, not_after))) => {
            println!("      subject      {subject}");
            let (line, p) = expiry_words(not_after, SystemTime::now());
            println!("      valid until  {line}");
            problem = p.map(|p| format!("{label}: {p}"));
        }
        Some(Err(e)) => println!("      certificate  cannot be read: {e}"),
        None => println!("      certificate  none (the service gave no certificate)"),
    }
    println!(
        "      key          {}",
        naming::object_uri(token_label, &label, &id, ObjectType::PrivateKey)
    );
    println!(
        "      certificate  {}",
        naming::object_uri(token_label, &label, &id, ObjectType::Certificate)
    );
    problem
}

/// "RSA 2048-bit, SCAL 1 (up to 100 signatures per authorization), PIN and a code sent by the service"
pub fn credential_words(c: &CredentialInfo) -> String {
    let key = match c.key.curve.as_deref() {
        Some(remote_client::oid::P256) => "ECDSA P-256".to_owned(),
        Some(remote_client::oid::P384) => "ECDSA P-384".to_owned(),
        Some(remote_client::oid::P521) => "ECDSA P-521".to_owned(),
        Some(other) => format!("EC ({other})"),
        None => format!("RSA {}-bit", c.key.len),
    };
    let scal = match c.scal {
        Scal::One => format!(
            "SCAL 1 (up to {} signatures per authorization)",
            c.multisign
        ),
        Scal::Two => "SCAL 2 (each signature authorized for its own document)".to_owned(),
    };
    let mut factors = Vec::new();
    if c.auth.pin.is_some() {
        factors.push("PIN".to_owned());
    }
    match c.auth.otp.as_ref().map(|o| o.otp_type) {
        Some(OtpType::Offline) => factors.push("a code from an authenticator app".to_owned()),
        Some(OtpType::Online) => factors.push("a code the service sends (SMS)".to_owned()),
        None => {}
    }
    let factors = if c.auth.mode == AuthMode::OAuth2Code {
        "authorized in your browser at the service's page (OAuth 2.0)".to_owned()
    } else if factors.is_empty() {
        "no PIN or code (approved on your device, or by the service itself)".to_owned()
    } else {
        factors.join(" and ")
    };
    let status = if c.key.status.eq_ignore_ascii_case("enabled") {
        String::new()
    } else {
        format!(", key {} (not usable)", c.key.status)
    };
    format!("{key}, {scal}, {factors}{status}")
}

/// Subject (RFC 4514) and notAfter of a DER certificate.
fn certificate_facts(der: &[u8]) -> Result<(String, SystemTime), String> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    let tbs = cert.tbs_certificate();
    Ok((
        tbs.subject().to_string(),
        tbs.validity().not_after.to_system_time(),
    ))
}

/// "2027-11-29 (365 days left)", and a problem when expired or close to it.
fn expiry_words(not_after: SystemTime, now: SystemTime) -> (String, Option<String>) {
    let date = date_of(not_after);
    match not_after.duration_since(now) {
        Ok(left) => {
            let days = left.as_secs() / 86_400;
            if left < EXPIRY_WARNING {
                (
                    format!("{date} ({days} days left: WARNING, renew the certificate soon)"),
                    None,
                )
            } else {
                (format!("{date} ({days} days left)"), None)
            }
        }
        Err(_) => (
            format!("{date} (EXPIRED: signatures made with it will not be accepted)"),
            Some(format!("the certificate expired on {date}")),
        ),
    }
}

/// YYYY-MM-DD (UTC) of a time, through the certificate library's own calendar.
fn date_of(t: SystemTime) -> String {
    match der::DateTime::from_system_time(t) {
        Ok(d) => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        Err(_) => "an unrepresentable date".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_warns_under_thirty_days_and_reports_expired() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let day = Duration::from_secs(86_400);
        let (line, problem) = expiry_words(now + 400 * day, now);
        assert!(line.ends_with("(400 days left)"), "{line}");
        assert!(problem.is_none());
        let (line, problem) = expiry_words(now + 12 * day + Duration::from_secs(5), now);
        assert!(line.contains("12 days left: WARNING"), "{line}");
        assert!(problem.is_none());
        let (line, problem) = expiry_words(now - day, now);
        assert!(line.contains("EXPIRED"), "{line}");
        assert!(problem
            .unwrap()
            .starts_with("the certificate expired on 2023-11-"));
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(date_of(t), "2023-11-14");
    }
}
