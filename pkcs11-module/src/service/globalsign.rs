//! The GlobalSign Digital Signing Service as a [`Service`], through remote-client's `GlobalsignClient`: the
//! account signs in with its API key and secret over mutual TLS; each token has one *identity* (the
//! `subject_dn` of its configuration), a key pair at GlobalSign with a certificate that lasts about ten
//! minutes; a credential of the seam is one identity, named by its ID, so a renewed identity is a new
//! credential with objects of its own (token/credentials.rs keeps the old one usable until it expires).
//!
//! The API has no user PIN, one-time code or per-signature authorization: the account's credentials
//! authorize every signature, so [`Service::authorize`] answers at once without a request and the
//! token is login-free (config/validate.rs). Identities are shared between processes of the user while
//! they last (cache.rs), so that a script running one process per document does not create an identity
//! per process (the service rate-limits identity creation: pdf-tools' provider reference advises
//! re-using signing certificates for that reason).
//!
//! Calls remote-client, the secure-file policy and the certificate parser; nothing above the seam.

mod cache;

use super::{
    Access, AuthMode, Authorization, AuthorizeRequest, CredentialInfo, Error, Renewal, Sad, Scal,
    Secret, Service, SignHashRequest,
};
use crate::config::files::Preloaded;
use crate::config::TokenConfig;
use crate::object::certificate_facts;
use parking_lot::Mutex;
use remote_client::globalsign::{GlobalsignClient, Identity, SubjectDn};
use remote_client::{oid, AuthInfo, KeyInfo};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The "SAD" of a GlobalSign signature: nothing the service checks, only what the seam carries.
const NO_AUTHORIZATION: &str = "globalsign-dss: the account authorizes";

/// An identity this process can sign with.
struct Held {
    identity: Identity,
    not_after: SystemTime,
}

pub struct GlobalsignService {
    address: String,
    client: GlobalsignClient,
    api_key: String,
    secret_file: PathBuf,
    secrets: Preloaded,
    subject: Option<SubjectDn>,
    session_lifetime: Duration,
    renew_before: Duration,
    /// The name applications see on the identity's objects, the same for every renewal.
    label: String,
    cache: Option<cache::IdentityCache>,
    identities: Mutex<HashMap<String, Held>>,
    /// The certificates above the identities' (`certificate_path`, then `trustchain`), read once.
    chain: Mutex<Option<Vec<Vec<u8>>>>,
}

impl GlobalsignService {
    /// The client for a token (no request is made). Errors are the configuration's, in plain words.
    pub fn new(t: &TokenConfig) -> Result<GlobalsignService, String> {
        let cc = super::transport_config(t)?;
        let client = GlobalsignClient::new(&cc).map_err(|e| e.to_string())?;
        let address = cc.base_url.trim_end_matches('/').to_owned();
        let api_key = t.api_key.clone().ok_or("no api_key")?;
        let subject = t.subject_dn.clone().filter(|s| !s.is_empty());
        let label = subject
            .as_ref()
            .and_then(|s| s.common_name.clone())
            .unwrap_or_else(|| t.label.clone());
        let cache = t
            .identity_cache
            .then(|| cache::IdentityCache::for_identity(&address, &api_key, subject.as_ref()));
        Ok(GlobalsignService {
            address,
            client,
            api_key,
            secret_file: t.api_secret_file.clone().ok_or("no api_secret_file")?,
            secrets: t.secrets.clone(),
            subject,
            session_lifetime: Duration::from_secs(t.session_lifetime_s),
            renew_before: Duration::from_secs(t.identity_renew_before_s),
            label,
            cache: cache.flatten(),
            identities: Mutex::new(HashMap::new()),
            chain: Mutex::new(None),
        })
    }

    fn keep(&self, identity: Identity) -> Result<String, Error> {
        let facts = certificate_facts(&identity.certificate).map_err(|e| {
            Error::Protocol(format!(
                "identity: the signing certificate is unusable: {e}"
            ))
        })?;
        let id = identity.id.clone();
        self.identities.lock().insert(
            id.clone(),
            Held {
                identity,
                not_after: facts.not_after,
            },
        );
        Ok(id)
    }

    /// The CA certificates above the identities', fetched on first need: the issuing CA
    /// (`certificate_path`) and the chain of trust (`trustchain`), each certificate once.
    fn chain(&self, access: &Access) -> Result<Vec<Vec<u8>>, Error> {
        if let Some(c) = self.chain.lock().as_ref() {
            return Ok(c.clone());
        }
        let mut chain = self.client.certificate_path(&access.carried)?;
        for cert in self.client.trustchain(&access.carried)?.certificates {
            if !chain.contains(&cert) {
                chain.push(cert);
            }
        }
        *self.chain.lock() = Some(chain.clone());
        Ok(chain)
    }

    fn remaining(not_after: SystemTime) -> Duration {
        not_after
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }
}

/// The key the seam describes for an identity's certificate: SHA-256 only (the sign call takes a
/// SHA-256 digest), PKCS#1 v1.5 for RSA (what the public integrations embed; pdf-tools: "basic
/// cryptographic (PKCS#1) signatures"); no PSS, which no public source shows the API offering.
fn key_info(certificate: &[u8]) -> KeyInfo {
    use crate::mechanism::KeyKind;
    let kind = crate::object::key_kind_of_certificate(certificate).ok();
    let (algos, len, curve) = match kind {
        Some(KeyKind::Rsa { bits }) => (vec![oid::SHA256_WITH_RSA.to_owned()], bits, None),
        // Not seen at GlobalSign; an EC identity would sign ECDSA over the same digest.
        Some(KeyKind::Ec { curve }) => (
            vec![oid::ECDSA_WITH_SHA256.to_owned()],
            curve.bits(),
            Some(curve.oid().to_owned()),
        ),
        // GlobalSign issues no GOST keys; the token shows such a certificate without a key to sign with.
        Some(KeyKind::Gost { .. }) | None => (Vec::new(), 0, None),
    };
    KeyInfo {
        status: "enabled".into(),
        algos,
        len,
        curve,
    }
}

impl Service for GlobalsignService {
    fn address(&self) -> &str {
        &self.address
    }

    fn sign_in(&self) -> Result<Access, Error> {
        let secret = self
            .secrets
            .read(&self.secret_file)
            .map_err(Error::Config)?;
        let token = self.client.login(&self.api_key, &secret)?;
        Ok(Access::bearer(token, Some(self.session_lifetime)))
    }

    fn renewal(&self) -> Option<Renewal> {
        Some(Renewal {
            before_expiry: self.renew_before,
        })
    }

    /// An identity with more than `identity_renew_before_s` left: one another process of the user
    /// created (cache.rs), else a new one from `POST /identity`.
    fn issue_credentials(&self, access: &Access) -> Result<Vec<String>, Error> {
        if let Some(cached) = self.cache.as_ref().and_then(|c| c.read()) {
            let known = self.identities.lock().contains_key(&cached.id);
            let left = certificate_facts(&cached.certificate)
                .map(|f| Self::remaining(f.not_after))
                .unwrap_or_default();
            if !known && left > self.renew_before {
                log::info!(
                    "{}: using identity {} another process created ({} s left)",
                    self.address,
                    cached.id,
                    left.as_secs()
                );
                return Ok(vec![self.keep(cached)?]);
            }
        }
        let identity = self
            .client
            .identity(&access.carried, self.subject.as_ref())?;
        if let Some(c) = &self.cache {
            c.write(&identity);
        }
        log::info!("{}: new identity {}", self.address, identity.id);
        Ok(vec![self.keep(identity)?])
    }

    fn list_credentials(&self, access: &Access) -> Result<Vec<String>, Error> {
        let newest = self
            .identities
            .lock()
            .iter()
            .max_by_key(|(_, h)| h.not_after)
            .filter(|(_, h)| Self::remaining(h.not_after) > Duration::ZERO)
            .map(|(id, _)| id.clone());
        match newest {
            Some(id) => Ok(vec![id]),
            None => self.issue_credentials(access),
        }
    }

    fn credential_info(&self, access: &Access, id: &str) -> Result<CredentialInfo, Error> {
        let chain = self.chain(access)?;
        let map = self.identities.lock();
        let held = map.get(id).ok_or_else(|| Error::Dss {
            method: "identity".into(),
            status: 404,
            problem: remote_client::GlobalsignProblem::NotFound,
            description: format!("this process holds no identity {id}"),
            retry_after: None,
        })?;
        let mut certificates = vec![held.identity.certificate.clone()];
        certificates.extend(chain);
        Ok(CredentialInfo {
            id: id.to_owned(),
            description: Some(self.label.clone()),
            key: key_info(&held.identity.certificate),
            certificates,
            cert_status: Some("valid".into()),
            subject_dn: None,
            issuer_dn: None,
            valid_from: None,
            valid_to: None,
            auth: AuthInfo {
                mode: AuthMode::Implicit,
                expression: None,
                pin: None,
                otp: None,
            },
            multisign: u32::MAX,
            scal: Scal::One,
        })
    }

    fn send_otp(&self, _access: &Access, _id: &str, _description: &str) -> Result<(), Error> {
        Err(Error::Config(
            "GlobalSign DSS sends no one-time passwords".into(),
        ))
    }

    fn authorize(
        &self,
        _access: &Access,
        request: &AuthorizeRequest,
    ) -> Result<Authorization, Error> {
        let left = self
            .identities
            .lock()
            .get(&request.credential_id)
            .map(|h| Self::remaining(h.not_after))
            .unwrap_or_default();
        Ok(Authorization::Granted(Sad {
            value: Secret::new(NO_AUTHORIZATION),
            expires_in: left,
        }))
    }

    fn authorize_check(&self, _access: &Access, _handle: &Secret) -> Result<Authorization, Error> {
        Err(Error::Config(
            "GlobalSign DSS has no out-of-band approval".into(),
        ))
    }

    fn sign_hashes(
        &self,
        access: &Access,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>, Error> {
        if request.hash_algorithm_oid != oid::SHA256 {
            return Err(Error::Config(
                "GlobalSign DSS signs SHA-256 digests only".into(),
            ));
        }
        request
            .hashes
            .iter()
            .map(|h| self.client.sign(&access.carried, &request.credential_id, h))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_sign_sha256_pkcs1_only() {
        let info = key_info(include_bytes!("../../tests-data/ee-rsa2048.der"));
        assert_eq!(info.algos, vec![oid::SHA256_WITH_RSA.to_owned()]);
        assert_eq!(info.len, 2048);
        let info = key_info(include_bytes!("../../tests-data/ee-p256.der"));
        assert_eq!(info.algos, vec![oid::ECDSA_WITH_SHA256.to_owned()]);
        assert_eq!(info.curve.as_deref(), Some(oid::P256));
        assert!(key_info(b"garbage").algos.is_empty());
    }
}
