//! The demo user's phone, for scripts and demos: the authenticator app (the current TOTP code of a
//! credential or of the account, from the secrets `init` wrote to demo.json) and the SMS inbox (the
//! newest code the service "sent" for a credential). A real deployment has neither: the codes are on
//! the user's device.

use crate::files::StateDir;
use serde_json::Value;
use totp_rs::{Algorithm, Secret, TOTP};

pub fn current_code(state: &StateDir, credential: &str) -> Result<String, String> {
    let demo: Value = read_json(&state.demo_json())?;
    let cred = demo["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["credentials"].as_array().into_iter().flatten())
        .find(|c| c["id"].as_str() == Some(credential))
        .ok_or_else(|| format!("no credential {credential:?} in demo.json"))?;
    match cred["otp"].as_str() {
        Some("totp") => {
            let secret = cred["totp_secret"]
                .as_str()
                .ok_or("demo.json has no TOTP secret for this credential")?;
            totp_now(secret, cred["totp_period"].as_u64().unwrap_or(30))
        }
        Some("sms") => newest_sms(state, credential),
        Some("none") => Err(format!(
            "credential {credential:?} takes no code: its PIN alone authorizes it"
        )),
        Some("approval") => Err(format!(
            "credential {credential:?} takes no code: approve its requests on the approval page \
             (log in there with the code of `demo-otp --account USER`)"
        )),
        other => Err(format!(
            "credential {credential:?} has no known OTP type ({other:?})"
        )),
    }
}

/// The current code of the authenticator app of `user`'s account: the approval page login.
pub fn account_code(state: &StateDir, user: &str) -> Result<String, String> {
    let demo: Value = read_json(&state.demo_json())?;
    let token = demo["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["user"].as_str() == Some(user))
        .ok_or_else(|| format!("no user {user:?} in demo.json"))?;
    let secret = token["approval_totp_secret"]
        .as_str()
        .ok_or("demo.json has no account TOTP secret for this user")?;
    totp_now(secret, token["approval_totp_period"].as_u64().unwrap_or(30))
}

fn totp_now(base32: &str, period: u64) -> Result<String, String> {
    let bytes = Secret::Encoded(base32.to_owned())
        .to_bytes()
        .map_err(|e| format!("TOTP secret in demo.json: {e:?}"))?;
    let totp = TOTP::new_unchecked(Algorithm::SHA1, crate::model::OTP_LENGTH, 1, period, bytes);
    totp.generate_current()
        .map_err(|e| format!("system clock: {e}"))
}

fn newest_sms(state: &StateDir, credential: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(state.sms_outbox()).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["credential"].as_str() == Some(credential))
        .find_map(|m| m["code"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("no SMS has been sent for {credential:?} yet"))
}

fn read_json(path: &std::path::Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
