//! Signing in to a token's service as the module does (`cloudtoken::service::csc`'s `service_auth` and
//! `oauth2_client`, so the tool and the module never differ), in words for a person: which sign-in is
//! configured, a rotated refresh token kept, a refused enrolment explained, and the access given back
//! at the end — only at a method the service lists.

use crate::words::{self, Failure, Outcome};
use cloudtoken::config::{files, ServiceAuthKind, TokenConfig};
use cloudtoken::service::csc;
use remote_client::{Access, CscClient, CscErrorCode, Error, Reason, ServiceAuth, SignIn};

/// How a token signs in, in words ("account alice: signed in with ...").
pub fn describe(t: &TokenConfig) -> String {
    let file = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let client = t.client_id.as_deref().unwrap_or("-");
    match t.service_auth {
        ServiceAuthKind::Login if t.refresh_token_file.is_some() => format!(
            "{}: signed in with this computer's enrolment ({}, readable only by you)",
            t.account,
            file(&t.refresh_token_file)
        ),
        ServiceAuthKind::Login => format!(
            "{}: signed in with the password in {} (a refresh token from `cloudtoken enroll` would \
             avoid storing it)",
            t.account,
            file(&t.password_file)
        ),
        ServiceAuthKind::None => {
            "no sign-in (service_auth \"none\"): the service asks for no credentials".to_owned()
        }
        ServiceAuthKind::Bearer => format!(
            "signed in with the static access token in {} (service_auth \"bearer\")",
            file(&t.access_token_file)
        ),
        ServiceAuthKind::ApiKey => format!(
            "signed in with the API key in {} sent as {} (service_auth \"api-key\")",
            file(&t.api_key_file),
            t.api_key_header
        ),
        ServiceAuthKind::Oauth2Client => format!(
            "signed in as OAuth 2.0 client {client} with its secret in {} (client credentials, \
             service_auth \"oauth2-client\")",
            file(&t.client_secret_file)
        ),
        ServiceAuthKind::Oauth2Password => format!(
            "{}: signed in through OAuth 2.0 client {client} with the password in {} (password \
             grant, service_auth \"oauth2-password\")",
            t.account,
            file(&t.password_file)
        ),
        ServiceAuthKind::Oauth2Code => format!(
            "signed in through OAuth 2.0 client {client} with this computer's enrolment ({}, \
             readable only by you; service_auth \"oauth2-code\")",
            file(&t.refresh_token_file)
        ),
    }
}

/// The stored enrolment (refresh token) or credentials no longer work: `auth/login` refused them, or
/// the token endpoint answered `invalid_grant` / `invalid_client`.
fn enrolment_refused(e: &Error) -> bool {
    match e {
        Error::Csc { method, code, .. } if method == "oauth2/token" => matches!(
            code,
            CscErrorCode::Other(c) if c == "invalid_grant" || c == "invalid_client"
        ),
        _ => e.reason() == Reason::WrongPassword,
    }
}

/// The command that enrols the token again.
pub fn enroll_command(t: &TokenConfig, url: &str) -> String {
    let mut c = format!(
        "cloudtoken enroll --url {url} --service-auth {}",
        t.service_auth.name()
    );
    if !t.account.is_empty() {
        c.push_str(&format!(" --account {}", t.account));
    }
    if let Some(id) = &t.client_id {
        c.push_str(&format!(" --client-id {id}"));
    }
    c.push_str(&format!(" --label \"{}\"", t.label));
    c
}

/// Signs in as the module does; a refresh token the service rotated is written back.
pub fn sign_in(t: &TokenConfig, client: &CscClient, url: &str) -> Outcome<SignIn> {
    let (auth, refresh_file) = csc::service_auth(t).map_err(|e| {
        Failure(format!(
            "The token's sign-in cannot be used: {e}. Check the files the configuration names, or \
             enrol again: {}",
            enroll_command(t, url)
        ))
    })?;
    let signed = client.sign_in(&auth).map_err(|e| {
        if enrolment_refused(&e) {
            match t.service_auth {
                ServiceAuthKind::Login if t.refresh_token_file.is_some() => {
                    words::enrolment_expired(&t.label, url, &t.account)
                }
                _ => Failure(format!(
                    "The service no longer accepts this computer's sign-in of token \"{}\" ({}: it \
                     may have expired or been revoked). Enrol again: {}",
                    t.label,
                    words::refusal(&e),
                    enroll_command(t, url)
                )),
            }
        } else {
            words::service(url, t.ca_file.as_deref(), &e)
        }
    })?;
    if let (Some(path), Some(new)) = (refresh_file, &signed.refresh_token) {
        let old = match &auth {
            ServiceAuth::RefreshToken(old)
            | ServiceAuth::OAuth2 {
                grant: remote_client::OAuth2Grant::RefreshToken(old),
                ..
            } => Some(old),
            _ => None,
        };
        if old.is_some_and(|o| o.expose() != new.expose()) {
            files::write_secret_file(path, new).map_err(|e| {
                Failure(format!(
                    "The service renewed the enrolment, but it cannot be stored: {e}."
                ))
            })?;
        }
    }
    Ok(signed)
}

/// Gives the access back, where the service offers a way to (`auth/revoke` when listed, else the
/// OAuth 2.0 revocation endpoint for OAuth 2.0 sign-ins).
pub fn sign_out(t: &TokenConfig, client: &CscClient, access: &Access) {
    let Access::Bearer(token) = access else {
        return;
    };
    match t.service_auth {
        ServiceAuthKind::Login if client.offers("auth/revoke").unwrap_or(false) => {
            let _ = client.revoke(access, token, "access_token");
        }
        ServiceAuthKind::Oauth2Client
        | ServiceAuthKind::Oauth2Password
        | ServiceAuthKind::Oauth2Code => {
            if let Ok(c) = csc::oauth2_client(t) {
                let _ = client.oauth2_revoke(&c, token, "access_token");
            }
        }
        _ => {}
    }
}
