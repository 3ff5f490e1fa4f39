//! CryptoPro DSS as a [`Service`], through remote-client's `CryptoproClient`: how a token's configuration becomes
//! a client, the account's OAuth 2.0 sign-in at the identity service, the user's certificates as
//! credentials, and the confirmation of signatures in the seam's terms:
//!
//! - `dss_confirmation = "operation"` (default): every signature is a DSS transaction bound to its hash,
//!   which the user confirms out of band (the credentials are SCAL 2). `authorize` creates the
//!   transaction and starts its confirmation; a pending one is polled as any out-of-band approval; the
//!   confirmed operation's token is the SAD, and `sign_hashes` collects the operation's signatures with it.
//!   Several hashes in one authorization are one package (SignDocuments) confirmed once.
//! - `dss_confirmation = "session"`: the user confirms a sign-in to the signature service once (the
//!   account's password at the confirmation service), and the confirmed token is the SAD of a batch
//!   (SCAL 1): each signature is then made at once with it, up to the batch's size.
//!
//! DSS signs hashes with the raw GOST R 34.10 signature only: GOST certificates become credentials that
//! sign with Streebog of their size; others (RSA) are listed and cannot sign. The account signs in with
//! OAuth 2.0 (`service_auth` oauth2-password or oauth2-code, as csc.rs builds it). Calls remote-client;
//! nothing above the seam.

use super::csc::{keep_rotated, secret, service_auth};
use super::{
    Access, AuthMode, Authorization, AuthorizeRequest, CredentialInfo, Error, Reason, Sad, Scal,
    Secret, Service, SignHashRequest,
};
use crate::config::{DssConfirmation, TokenConfig};
use crate::mechanism::gost::GostSize;
use der::Decode;
use parking_lot::Mutex;
use remote_client::cryptopro::{
    Confirmation, Confirmer, CryptoproClient, DssCertificate, DssSettings, RawSignatures,
};
use remote_client::{AuthInfo, FactorInfo, KeyInfo};
use std::collections::HashMap;
use std::time::Duration;

/// How long a confirmed session lasts when the service does not say.
const SESSION_DEFAULT: Duration = Duration::from_secs(300);
/// Signatures one confirmed session may cover at most (the token's `batch_size` caps it further).
const SESSION_SIGNATURES: u32 = 1000;

pub struct CryptoproService {
    address: String,
    client: CryptoproClient,
    config: TokenConfig,
    confirmation: DssConfirmation,
    /// The certificates of the last listing, by ID (credential_info answers from them).
    certificates: Mutex<HashMap<String, DssCertificate>>,
}

impl CryptoproService {
    /// The client for a token (no request is made). Errors are the configuration's, in plain words.
    pub fn new(t: &TokenConfig) -> Result<CryptoproService, String> {
        let cc = super::csc::client_config(t)?;
        let base = cc.base_url.trim_end_matches('/').to_owned();
        let sts = t.dss_sts.as_deref().unwrap_or("STS");
        let signserver = t.dss_signserver.as_deref().unwrap_or("SignServer");
        let resource = t.dss_resource.clone().unwrap_or_else(|| {
            format!(
                "urn:cryptopro:dss:signserver:{}",
                signserver.to_ascii_lowercase()
            )
        });
        let settings = DssSettings {
            sts_url: format!("{base}/{sts}"),
            signserver_url: format!("{base}/{signserver}"),
            resource,
        };
        let client = CryptoproClient::new(&cc, settings).map_err(|e| e.to_string())?;
        Ok(CryptoproService {
            address: client.address().to_owned(),
            client,
            config: t.clone(),
            confirmation: t.dss_confirmation.unwrap_or_default(),
            certificates: Mutex::new(HashMap::new()),
        })
    }

    fn certificate(&self, access: &Access, id: &str) -> Result<DssCertificate, Error> {
        if let Some(c) = self.certificates.lock().get(id) {
            return Ok(c.clone());
        }
        self.list_credentials(access)?;
        self.certificates
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::Csc {
                method: "certificates".into(),
                status: 404,
                code: remote_client::CscErrorCode::InvalidRequest,
                description: format!("no certificate {id}"),
            })
    }

    /// Who asks the confirmation service: the account (operations) or its password (sessions).
    fn with_confirmer<T>(
        &self,
        access: &Access,
        f: impl FnOnce(Confirmer<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match self.confirmation {
            DssConfirmation::Operation => f(Confirmer::Access((&access.carried).into())),
            DssConfirmation::Session => {
                let password = secret(&self.config, &self.config.password_file)?;
                f(Confirmer::Password {
                    user: &self.config.account,
                    password: &password,
                })
            }
        }
    }
}

fn authorization(c: Confirmation, fallback: Duration) -> Authorization {
    match c {
        Confirmation::Confirmed { token, expires_in } => Authorization::Granted(Sad {
            value: token,
            expires_in: expires_in.unwrap_or(fallback),
        }),
        Confirmation::Pending { ref_id, .. } => Authorization::Pending { handle: ref_id },
    }
}

/// The key a certificate holds, as far as DSS signs with it: the GOST size, or `None` (RSA and others).
fn gost_size(der: &[u8]) -> Option<GostSize> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let alg = cert
        .tbs_certificate()
        .subject_public_key_info()
        .algorithm
        .oid
        .to_string();
    GostSize::from_key_oid(&alg)
}

/// "Alice Example (GOST R 34.10-2012, 256 bits)": the certificate's friendly name or common name, and its
/// key, so that a user with GOST and RSA certificates tells them apart.
fn label(c: &DssCertificate, size: Option<GostSize>) -> String {
    let name = c
        .friendly_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| {
            let cert = x509_cert::Certificate::from_der(&c.der).ok()?;
            let cn = cert.tbs_certificate().subject().common_name().ok()??;
            Some(cn.value().into_owned())
        })
        .unwrap_or_else(|| format!("DSS certificate {}", c.id));
    let key = match size {
        Some(s) => format!("GOST R 34.10-2012, {} bits", s.bits()),
        None => "RSA, no raw signatures".to_owned(),
    };
    let mut l = format!("{name} ({key})");
    // CKA_LABEL of a key stays readable in tools that cut at 64 characters.
    if l.chars().count() > 64 {
        l = l.chars().take(64).collect();
    }
    l
}

impl Service for CryptoproService {
    fn address(&self) -> &str {
        &self.address
    }

    fn sign_in(&self) -> Result<Access, Error> {
        // oauth2-password or oauth2-code (config/validate.rs); the token URL and the resource default to
        // the identity service's and the signature service's.
        let (auth, refresh_file) = service_auth(&self.config)?;
        let signed = self.client.sign_in(&auth)?;
        Ok(keep_rotated(refresh_file, &auth, signed))
    }

    fn list_credentials(&self, access: &Access) -> Result<Vec<String>, Error> {
        let certificates = self.client.certificates(&access.carried)?;
        let ids = certificates.iter().map(|c| c.id.clone()).collect();
        *self.certificates.lock() = certificates
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        Ok(ids)
    }

    fn credential_info(&self, access: &Access, id: &str) -> Result<CredentialInfo, Error> {
        let c = self.certificate(access, id)?;
        let size = gost_size(&c.der);
        let active = c
            .status
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("active"));
        let subject_dn = x509_cert::Certificate::from_der(&c.der)
            .ok()
            .map(|cert| cert.tbs_certificate().subject().to_string());
        let (scal, multisign) = match self.confirmation {
            DssConfirmation::Operation => (Scal::Two, 1),
            DssConfirmation::Session => (Scal::One, SESSION_SIGNATURES),
        };
        Ok(CredentialInfo {
            id: c.id.clone(),
            description: Some(label(&c, size)),
            key: KeyInfo {
                status: if active { "enabled" } else { "disabled" }.into(),
                algos: size
                    .map(|s| vec![s.sign_oid().to_owned()])
                    .unwrap_or_default(),
                len: size.map_or(0, GostSize::bits),
                curve: None,
            },
            cert_status: c.status.clone(),
            subject_dn: subject_dn.or(c.subject.clone()),
            issuer_dn: None,
            valid_from: None,
            valid_to: None,
            certificates: vec![c.der.clone()],
            auth: AuthInfo {
                // Nothing to type: the user confirms out of band; a key with a PIN of its own asks it.
                mode: AuthMode::Implicit,
                expression: None,
                pin: c.has_pin.then(|| FactorInfo {
                    id: Some("PinCode".into()),
                    label: Some("PIN of the key".into()),
                    ..FactorInfo::default()
                }),
                otp: None,
            },
            multisign,
            scal,
        })
    }

    fn send_otp(&self, _access: &Access, _id: &str, _description: &str) -> Result<(), Error> {
        Err(Error::Config(
            "CryptoPro DSS confirms out of band; it sends no one-time password".into(),
        ))
    }

    fn authorize(
        &self,
        access: &Access,
        request: &AuthorizeRequest,
    ) -> Result<Authorization, Error> {
        let description = request.description.as_deref().unwrap_or("Signature");
        match self.confirmation {
            DssConfirmation::Operation => {
                if request.hashes.is_empty() {
                    return Err(Error::Config(
                        "a DSS operation is confirmed with its hashes".into(),
                    ));
                }
                let what = RawSignatures {
                    certificate_id: &request.credential_id,
                    hashes: &request.hashes,
                    pin: request.pin.as_ref(),
                    description,
                };
                let transaction = self.client.create_transaction(&access.carried, &what)?;
                let confirmation = self.client.confirm(
                    Confirmer::Access((&access.carried).into()),
                    Some(&transaction),
                )?;
                Ok(authorization(confirmation, SESSION_DEFAULT))
            }
            DssConfirmation::Session => {
                let confirmation =
                    self.with_confirmer(access, |who| self.client.confirm(who, None))?;
                Ok(authorization(confirmation, SESSION_DEFAULT))
            }
        }
    }

    fn authorize_check(&self, access: &Access, handle: &Secret) -> Result<Authorization, Error> {
        let confirmation =
            self.with_confirmer(access, |who| self.client.check_confirmation(who, handle))?;
        Ok(authorization(confirmation, SESSION_DEFAULT))
    }

    fn sign_hashes(
        &self,
        _access: &Access,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let gost = [GostSize::Bits256, GostSize::Bits512]
            .into_iter()
            .any(|s| s.sign_oid() == request.sign_algorithm_oid);
        if !gost {
            return Err(Error::Csc {
                method: "documents".into(),
                status: 400,
                code: remote_client::CscErrorCode::Other("invalid_signature_params".into()),
                description: format!(
                    "CryptoPro DSS signs hashes with GOST R 34.10 only, not {}",
                    request.sign_algorithm_oid
                ),
            });
        }
        match self.confirmation {
            // The operation's documents and parameters are the transaction's: the token names them.
            DssConfirmation::Operation => {
                self.client
                    .confirmed_signatures(&request.sad, request.hashes.len(), None)
            }
            DssConfirmation::Session => request
                .hashes
                .iter()
                .map(|h| {
                    self.client
                        .sign_hash(&request.sad, &request.credential_id, h, None)
                        .map_err(|e| match e.reason() {
                            // The confirmed session's token has run out: confirm again.
                            Reason::TokenExpired => Error::Csc {
                                method: "documents".into(),
                                status: 400,
                                code: remote_client::CscErrorCode::InvalidRequest,
                                description: "SAD expired: the confirmed session ended".into(),
                            },
                            _ => e,
                        })
                })
                .collect(),
        }
    }
}
