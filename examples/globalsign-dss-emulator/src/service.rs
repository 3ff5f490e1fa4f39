//! What the service does, apart from HTTP: logins and their sessions, identities (a key pair generated
//! in the HSM and a short-lived certificate), signatures, quotas, counters and rate limits, each
//! decision recorded in the audit trail. api.rs turns requests into these calls and refusals into the
//! documented error bodies.
//!
//! Identities and sessions live in memory: a restart ends them (and `serve` destroys the keys of
//! identities it no longer knows). Calls block on the HSM: the API runs them on the connection's own thread (csc-server's listener).

use crate::audit::Audit;
use crate::limits::{Limiter, Rate};
use crate::pki::{self, IdentityIssuer, IdentityName};
use crate::state::{Account, StateDir};
use hsm_store::{Hash, Key, KeySpec, Signing, Store};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Identities' keys are labelled so in the HSM.
const IDENTITY_PREFIX: &str = "identity-";

pub struct Settings {
    pub identity_lifetime: Duration,
    pub session_lifetime: Duration,
    pub logins: Rate,
    pub identities: Rate,
    pub signatures: Rate,
    /// Overrides the account's quota of signatures for this run.
    pub signature_quota: Option<u64>,
}

/// Why a request is refused; api.rs gives each its status and problem body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400 with the fields at fault.
    BadRequest(Vec<(String, String)>),
    /// 401: no or an unknown or expired session, a wrong API key or secret, another client certificate.
    Unauthorized,
    /// 404: no such identity for this account (or it expired).
    NotFound,
    /// 429 with the seconds to wait.
    RateLimited {
        what: &'static str,
        retry_after: u64,
    },
    /// 402: the quota of `what` is used up.
    QuotaExhausted { what: &'static str },
    /// 501: a documented method the emulator does not reproduce.
    NotImplemented(&'static str),
    /// 500.
    Internal,
}

fn bad(field: &str, problem: &str) -> Refusal {
    Refusal::BadRequest(vec![(field.to_owned(), problem.to_owned())])
}

struct Held {
    key: Key,
    expires: Instant,
}

pub struct Service {
    account: Account,
    settings: Settings,
    store: Arc<Store>,
    issuer: IdentityIssuer,
    root_pem: String,
    issuing_pem: String,
    /// SHA-256 of each live access token → when it ends.
    sessions: Mutex<HashMap<[u8; 32], Instant>>,
    identities: Mutex<HashMap<String, Held>>,
    signatures_left: AtomicU64,
    timestamps_left: AtomicU64,
    signatures_made: AtomicU64,
    identities_made: AtomicU64,
    login_limit: Limiter,
    identity_limit: Limiter,
    signature_limit: Limiter,
    audit: Audit,
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Service {
    pub fn load(
        state: &StateDir,
        store: Arc<Store>,
        settings: Settings,
    ) -> Result<Service, String> {
        let account = Account::load(state)?;
        let issuer = IdentityIssuer::open(&store).map_err(|e| e.to_string())?;
        let read = |p: std::path::PathBuf| {
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
        };
        // Keys of identities of an earlier run: nobody can sign with them any more.
        for label in store.labels().map_err(|e| e.to_string())? {
            if label.starts_with(IDENTITY_PREFIX) {
                let _ = store.destroy(&label);
            }
        }
        Ok(Service {
            signatures_left: AtomicU64::new(
                settings.signature_quota.unwrap_or(account.signature_quota),
            ),
            timestamps_left: AtomicU64::new(account.timestamp_quota),
            signatures_made: AtomicU64::new(0),
            identities_made: AtomicU64::new(0),
            login_limit: Limiter::new(settings.logins),
            identity_limit: Limiter::new(settings.identities),
            signature_limit: Limiter::new(settings.signatures),
            root_pem: read(state.ca_pem())?,
            issuing_pem: read(state.issuing_ca_pem())?,
            audit: Audit::open(&state.audit())?,
            sessions: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
            account,
            settings,
            store,
            issuer,
        })
    }

    fn refused(
        &self,
        event: &str,
        identity: Option<&str>,
        digest: Option<&str>,
        r: Refusal,
    ) -> Refusal {
        self.audit
            .record(event, identity, digest, &format!("{r:?}"), None);
        r
    }

    /// `POST /login` over a TLS connection whose client certificate has serial `client_serial`.
    pub fn login(
        &self,
        api_key: &str,
        api_secret: &str,
        client_serial: Option<&str>,
    ) -> Result<(zeroize::Zeroizing<String>, Duration), Refusal> {
        if let Err(retry_after) = self.login_limit.admit() {
            return Err(self.refused(
                "login",
                None,
                None,
                Refusal::RateLimited {
                    what: "logins",
                    retry_after,
                },
            ));
        }
        let mut errors = Vec::new();
        if !is_hex(api_key, 16) {
            errors.push((
                "api_key".to_owned(),
                "must match ^[A-Fa-f0-9]{16}$".to_owned(),
            ));
        }
        if !is_hex(api_secret, 40) {
            errors.push((
                "api_secret".to_owned(),
                "must match ^[A-Fa-f0-9]{40}$".to_owned(),
            ));
        }
        if !errors.is_empty() {
            return Err(self.refused("login", None, None, Refusal::BadRequest(errors)));
        }
        let secret_hash = base16ct::lower::encode_string(&Sha256::digest(api_secret.as_bytes()));
        let key_ok = api_key.as_bytes().ct_eq(self.account.api_key.as_bytes());
        let secret_ok = secret_hash
            .as_bytes()
            .ct_eq(self.account.api_secret_sha256.as_bytes());
        let cert_ok = client_serial == Some(self.account.client_serial.as_str());
        if !bool::from(key_ok & secret_ok) || !cert_ok {
            let why = if cert_ok {
                "wrong API key or secret"
            } else {
                "another client certificate than the account's"
            };
            self.audit
                .record("login", None, None, "Unauthorized", Some(why));
            return Err(Refusal::Unauthorized);
        }
        let token = crate::random::hex(32);
        let lifetime = self.settings.session_lifetime;
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token_hash(&token), Instant::now() + lifetime);
        self.audit.record("login", None, None, "ok", None);
        Ok((token, lifetime))
    }

    /// Whether `bearer` is a live session of the account, reached over its client certificate.
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
        client_serial: Option<&str>,
    ) -> Result<(), Refusal> {
        let live = bearer.is_some_and(|t| {
            let now = Instant::now();
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.retain(|_, end| *end > now);
            sessions.contains_key(&token_hash(t))
        });
        if live && client_serial == Some(self.account.client_serial.as_str()) {
            Ok(())
        } else {
            Err(Refusal::Unauthorized)
        }
    }

    /// `POST /identity`: checks the subject against the validation policy, generates an RSA-2048 key
    /// in the HSM and certifies it for the identity lifetime.
    pub fn create_identity(&self, body: &Value) -> Result<(String, String), Refusal> {
        let name = policy_check(body).map_err(|r| self.refused("identity", None, None, r))?;
        if let Err(retry_after) = self.identity_limit.admit() {
            return Err(self.refused(
                "identity",
                None,
                None,
                Refusal::RateLimited {
                    what: "identities",
                    retry_after,
                },
            ));
        }
        let id = crate::random::hex(16).to_string();
        let label = format!("{IDENTITY_PREFIX}{id}");
        let key = self
            .store
            .generate(&label, KeySpec::Rsa { bits: 2048 })
            .map_err(|e| {
                log::error!("identity key: {e}");
                Refusal::Internal
            })?;
        let lifetime = self.settings.identity_lifetime;
        let certificate = self
            .issuer
            .issue(
                &name,
                key.spki_der(),
                time::OffsetDateTime::now_utc(),
                time::Duration::try_from(lifetime).unwrap_or(time::Duration::minutes(10)),
            )
            .map_err(|e| {
                log::error!("identity certificate: {e}");
                let _ = self.store.destroy(&label);
                Refusal::Internal
            })?;
        let pem = pki::pem(&certificate);
        self.identities
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id.clone(),
                Held {
                    key,
                    expires: Instant::now() + lifetime,
                },
            );
        self.identities_made.fetch_add(1, Ordering::Relaxed);
        self.audit.record(
            "identity",
            Some(&id),
            None,
            "ok",
            Some(&format!(
                "CN={}; {} s",
                name.common_name,
                lifetime.as_secs()
            )),
        );
        Ok((id, pem))
    }

    /// `GET /identity/{id}/sign/{digest}`: PKCS#1 v1.5 over the SHA-256 digest, upper-case hex.
    pub fn sign(&self, id: &str, digest_hex: &str) -> Result<String, Refusal> {
        let refuse = |r| self.refused("sign", Some(id), Some(digest_hex), r);
        if !is_hex(digest_hex, 64) {
            return Err(refuse(bad(
                "digest",
                "must be 64 hex digits (a SHA-256 digest)",
            )));
        }
        let key = {
            let map = self.identities.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(id) {
                Some(h) if h.expires > Instant::now() => h.key.clone(),
                _ => return Err(refuse(Refusal::NotFound)),
            }
        };
        if let Err(retry_after) = self.signature_limit.admit() {
            return Err(refuse(Refusal::RateLimited {
                what: "signatures",
                retry_after,
            }));
        }
        let spent = self
            .signatures_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if spent.is_err() {
            return Err(refuse(Refusal::QuotaExhausted { what: "signatures" }));
        }
        let digest = base16ct::mixed::decode_vec(digest_hex).map_err(|_| Refusal::Internal)?;
        let signature = self
            .store
            .sign(&key, Signing::RsaPkcs1(Hash::Sha256), &digest)
            .map_err(|e| {
                log::error!("signing with identity {id}: {e}");
                self.signatures_left.fetch_add(1, Ordering::AcqRel);
                Refusal::Internal
            })?;
        self.signatures_made.fetch_add(1, Ordering::Relaxed);
        self.audit.record(
            "sign",
            Some(id),
            Some(&digest_hex.to_ascii_lowercase()),
            "ok",
            None,
        );
        Ok(base16ct::upper::encode_string(&signature))
    }

    pub fn certificate_path(&self) -> Value {
        json!({ "path": self.issuing_pem })
    }

    pub fn trustchain(&self) -> Value {
        json!({ "trustchain": [self.issuing_pem, self.root_pem], "ocsp_revocation_info": [] })
    }

    pub fn quota(&self, kind: &str) -> Result<Value, Refusal> {
        let left = match kind {
            "signatures" => self.signatures_left.load(Ordering::Acquire),
            "timestamps" => self.timestamps_left.load(Ordering::Acquire),
            _ => return Err(Refusal::NotFound),
        };
        Ok(json!({ "value": left }))
    }

    pub fn counter(&self, kind: &str) -> Result<Value, Refusal> {
        let n = match kind {
            "signatures" => self.signatures_made.load(Ordering::Relaxed),
            "identities" => self.identities_made.load(Ordering::Relaxed),
            "timestamps" => 0,
            _ => return Err(Refusal::NotFound),
        };
        Ok(json!({ "value": n }))
    }

    /// Destroys the keys of expired identities.
    pub fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<String> = {
            let mut map = self.identities.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<String> = map
                .iter()
                .filter(|(_, h)| h.expires <= now)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &gone {
                map.remove(id);
            }
            gone
        };
        for id in expired {
            if let Err(e) = self.store.destroy(&format!("{IDENTITY_PREFIX}{id}")) {
                log::warn!("destroying the key of identity {id}: {e}");
            }
            self.audit.record("expire", Some(&id), None, "ok", None);
        }
    }
}

/// The account's validation policy (`GET /validationpolicy`), in the shape unidoc/globalsign-dss reads
/// (validation_policy.go): per field a presence and a format; organization_unit as a list.
pub fn validation_policy() -> Value {
    let field = |presence: &str, format: &str| json!({ "presence": presence, "format": format });
    json!({
        "subject_dn": {
            "common_name": field("REQUIRED", "^.{1,64}$"),
            "organization": field("OPTIONAL", "^.{1,64}$"),
            "organization_unit": { "static": false, "list": [], "min_count": 0, "max_count": 1 },
            "country": field("OPTIONAL", "^[A-Z]{2}$"),
            "email": field("OPTIONAL", "^[^@\\s]+@[^@\\s]+$"),
            "state": field("FORBIDDEN", ""),
            "locality": field("FORBIDDEN", ""),
            "street_address": field("FORBIDDEN", ""),
            "jurisdiction_of_incorporation_locality_name": field("FORBIDDEN", ""),
            "jurisdiction_of_incorporation_state_or_province_name": field("FORBIDDEN", ""),
            "jurisdiction_of_incorporation_country_name": field("FORBIDDEN", ""),
            "extra_attributes": {}
        }
    })
}

/// A `POST /identity` body checked against [`validation_policy`].
fn policy_check(body: &Value) -> Result<IdentityName, Refusal> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("body", "must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "subject_dn") {
        return Err(bad(k, "unknown field"));
    }
    let dn = match obj.get("subject_dn") {
        Some(Value::Object(dn)) => dn,
        Some(_) => return Err(bad("subject_dn", "must be an object")),
        None => {
            return Err(bad(
                "subject_dn.common_name",
                "required by the validation policy",
            ))
        }
    };
    let text = |k: &str, max: usize| -> Result<Option<String>, Refusal> {
        match dn.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(bad(
                &format!("subject_dn.{k}"),
                &format!("must be 1 to {max} characters"),
            )),
        }
    };
    for k in dn.keys() {
        if ![
            "common_name",
            "organization",
            "organization_unit",
            "country",
            "email",
        ]
        .contains(&k.as_str())
        {
            return Err(bad(
                &format!("subject_dn.{k}"),
                "not allowed by the validation policy",
            ));
        }
    }
    let common_name = text("common_name", 64)?.ok_or_else(|| {
        bad(
            "subject_dn.common_name",
            "required by the validation policy",
        )
    })?;
    let country = text("country", 2)?;
    if country
        .as_ref()
        .is_some_and(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(bad("subject_dn.country", "must match ^[A-Z]{2}$"));
    }
    let email = text("email", 128)?;
    if email
        .as_ref()
        .is_some_and(|e| e.matches('@').count() != 1 || e.contains(char::is_whitespace))
    {
        return Err(bad("subject_dn.email", "is not an e-mail address"));
    }
    let organization_unit = match dn.get("organization_unit") {
        None => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(Value::Array(a)) if a.len() == 1 => match &a[0] {
            Value::String(s) if !s.is_empty() && s.chars().count() <= 64 => Some(s.clone()),
            _ => {
                return Err(bad(
                    "subject_dn.organization_unit",
                    "must be 1 to 64 characters",
                ))
            }
        },
        Some(_) => {
            return Err(bad(
                "subject_dn.organization_unit",
                "a list of at most 1 unit",
            ));
        }
    };
    Ok(IdentityName {
        common_name,
        organization: text("organization", 64)?,
        organization_unit,
        country,
        email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validation_policy_is_enforced_field_by_field() {
        let ok = policy_check(&json!({"subject_dn": {"common_name": "ACME", "organization_unit": ["Billing"], "country": "DE"}})).unwrap();
        assert_eq!(ok.common_name, "ACME");
        assert_eq!(ok.organization_unit.as_deref(), Some("Billing"));
        for (body, field) in [
            (json!({}), "subject_dn.common_name"),
            (
                json!({"subject_dn": {"common_name": ""}}),
                "subject_dn.common_name",
            ),
            (
                json!({"subject_dn": {"common_name": "A", "locality": "B"}}),
                "subject_dn.locality",
            ),
            (
                json!({"subject_dn": {"common_name": "A", "country": "de"}}),
                "subject_dn.country",
            ),
            (
                json!({"subject_dn": {"common_name": "A", "organization_unit": ["x", "y"]}}),
                "subject_dn.organization_unit",
            ),
            (
                json!({"subject_dn": {"common_name": "A", "email": "no-at"}}),
                "subject_dn.email",
            ),
            (json!({"subject": {}}), "subject"),
            (json!([]), "body"),
        ] {
            match policy_check(&body) {
                Err(Refusal::BadRequest(errors)) => assert_eq!(errors[0].0, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
