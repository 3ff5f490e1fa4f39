//! A scripted service for unit tests, the way kmsp11 tests against a fake KMS: one account with real
//! ECDSA P-256 credentials (a fresh key and self-signed certificate per fake), PIN-only or PIN+TOTP-like
//! authorization, SAD counting, and faults injected per method (errors, delays, wrong signature counts,
//! malformed signatures, an access token that expires).
//!
//! It records every call, so tests can assert what the module asked and how often.

use super::{
    Access, AuthMode, Authorization, AuthorizeRequest, CredentialInfo, Error, Sad, Scal, Secret,
    Service, SignHashRequest,
};
use parking_lot::Mutex;
use remote_client::{AuthInfo, CscErrorCode, FactorInfo, KeyInfo};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    SignIn,
    List,
    Info,
    SendOtp,
    Authorize,
    AuthorizeCheck,
    Sign,
}

/// What to do instead of (or before) answering one call.
pub enum Fault {
    /// Answer with this error; nothing happens at the service.
    Fail(Error),
    /// Act normally (sign, authorize), then answer with this error: the answer was lost after the service
    /// acted.
    FailAfter(Error),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Wait this long, then answer with this error (a service that stalls and fails).
    SlowFail(Duration, Error),
    /// signHash: answer this many signatures (each a valid one for the first hash).
    SignatureCount(usize),
    /// signHash: answer these bytes as the signature.
    Signature(Vec<u8>),
    /// The access token stops working: this call and later ones answer "expired" until a new sign-in.
    ExpireAccess,
    /// Wait until the test sends (or drops its sender), then answer normally: a request held in flight.
    Hold(std::sync::mpsc::Receiver<()>),
}

pub const PIN: &str = "1234";

pub struct FakeService {
    inner: Mutex<Inner>,
}

struct Credential {
    info: CredentialInfo,
    key: p256::ecdsa::SigningKey,
}

struct Inner {
    credentials: Vec<Credential>,
    faults: HashMap<Method, VecDeque<Fault>>,
    calls: Vec<Method>,
    /// The thread each call came from (its name, or "unnamed").
    threads: Vec<(Method, String)>,
    /// Hashes in each signHash request, in order.
    sign_sizes: Vec<usize>,
    /// The access token that works now.
    access: u64,
    /// SAD value → (credential, signatures left).
    sads: HashMap<String, (String, u32)>,
    next_sad: u64,
    signatures_made: usize,
}

fn csc_error(method: &str, status: u16, code: CscErrorCode, description: &str) -> Error {
    Error::Csc {
        method: method.into(),
        status,
        code,
        description: description.into(),
    }
}

/// A 503 the module may retry (for reads).
pub fn unavailable() -> Error {
    Error::Http {
        status: 503,
        message: "Service Unavailable".into(),
    }
}

/// A 500 with a CSC body, as a failing service answers.
pub fn server_error(method: &str) -> Error {
    csc_error(method, 500, CscErrorCode::ServerError, "Internal error")
}

fn expired(method: &str) -> Error {
    csc_error(
        method,
        401,
        CscErrorCode::InvalidToken,
        "Invalid access token",
    )
}

/// A self-signed P-256 certificate for `id`, and its key.
fn p256_credential(id: &str, scal: Scal, multisign: u32) -> Credential {
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("Fake {id}"));
    let cert = params.self_signed(&key_pair).expect("certificate");
    use p256::pkcs8::DecodePrivateKey;
    let key = p256::ecdsa::SigningKey::from_pkcs8_der(&key_pair.serialize_der()).expect("key");
    let info = CredentialInfo {
        id: id.into(),
        description: Some(format!("Fake {id}")),
        key: KeyInfo {
            status: "enabled".into(),
            algos: vec![
                remote_client::oid::ECDSA_WITH_SHA256.into(),
                remote_client::oid::ECDSA_WITH_SHA384.into(),
            ],
            len: 256,
            curve: Some(remote_client::oid::P256.into()),
        },
        certificates: vec![cert.der().to_vec()],
        cert_status: Some("valid".into()),
        subject_dn: None,
        issuer_dn: None,
        valid_from: None,
        valid_to: None,
        auth: AuthInfo {
            mode: AuthMode::Explicit,
            expression: Some("PIN".into()),
            pin: Some(FactorInfo::default()),
            otp: None,
        },
        multisign,
        scal,
    };
    Credential { info, key }
}

impl FakeService {
    /// An account with one SCAL 1 P-256 credential, `fake-p256` (multisign 100), PIN [`PIN`].
    pub fn new() -> FakeService {
        FakeService::with_credentials(&[("fake-p256", Scal::One, 100)])
    }

    /// An account whose one credential is authorized without PIN or code (`authMode` implicit).
    pub fn implicit() -> FakeService {
        let fake = FakeService::new();
        for c in &mut fake.inner.lock().credentials {
            c.info.auth = AuthInfo {
                mode: AuthMode::Implicit,
                expression: None,
                pin: None,
                otp: None,
            };
        }
        fake
    }

    pub fn with_credentials(creds: &[(&str, Scal, u32)]) -> FakeService {
        FakeService {
            inner: Mutex::new(Inner {
                credentials: creds
                    .iter()
                    .map(|(id, scal, n)| p256_credential(id, *scal, *n))
                    .collect(),
                faults: HashMap::new(),
                calls: Vec::new(),
                threads: Vec::new(),
                sign_sizes: Vec::new(),
                access: 0,
                sads: HashMap::new(),
                next_sad: 1,
                signatures_made: 0,
            }),
        }
    }

    /// Queues a fault for the next call of `method` (faults of one method apply in order, one per call).
    pub fn inject(&self, method: Method, fault: Fault) {
        self.inner
            .lock()
            .faults
            .entry(method)
            .or_default()
            .push_back(fault);
    }

    /// How many calls of `method` reached the service.
    pub fn calls(&self, method: Method) -> usize {
        self.inner
            .lock()
            .calls
            .iter()
            .filter(|m| **m == method)
            .count()
    }

    /// The threads the calls of `method` came from, in order.
    pub fn threads(&self, method: Method) -> Vec<String> {
        self.inner
            .lock()
            .threads
            .iter()
            .filter(|(m, _)| *m == method)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// How many hashes each signHash request carried, in order.
    pub fn sign_sizes(&self) -> Vec<usize> {
        self.inner.lock().sign_sizes.clone()
    }

    /// Signatures the service made (whether or not the answer reached the module).
    pub fn signatures_made(&self) -> usize {
        self.inner.lock().signatures_made
    }

    /// Records the call, applies a delay, and returns the fault to act on (delays are waited here,
    /// without the lock).
    fn begin(&self, method: Method, access: Option<&Access>) -> Result<Option<Fault>, Error> {
        let fault = {
            let mut inner = self.inner.lock();
            inner.calls.push(method);
            let thread = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_owned();
            inner.threads.push((method, thread));
            inner.faults.get_mut(&method).and_then(VecDeque::pop_front)
        };
        let fault = match fault {
            Some(Fault::Hold(release)) => {
                let _ = release.recv();
                None
            }
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                None
            }
            Some(Fault::SlowFail(d, e)) => {
                std::thread::sleep(d);
                Some(Fault::Fail(e))
            }
            other => other,
        };
        let mut inner = self.inner.lock();
        if let Some(Fault::ExpireAccess) = fault {
            inner.access += 1;
        }
        if let Some(a) = access {
            let current = Secret::new(format!("access-{}", inner.access));
            let valid = matches!(&a.carried, remote_client::Access::Bearer(t) if t.expose() == current.expose());
            if !valid {
                return Err(expired("fake"));
            }
        }
        match fault {
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::ExpireAccess) => Err(expired("fake")),
            other => Ok(other),
        }
    }

    fn info_of(&self, id: &str) -> Option<CredentialInfo> {
        self.inner
            .lock()
            .credentials
            .iter()
            .find(|c| c.info.id == id)
            .map(|c| c.info.clone())
    }
}

impl Default for FakeService {
    fn default() -> Self {
        FakeService::new()
    }
}

fn after(fault: Option<Fault>) -> Result<(), Error> {
    match fault {
        Some(Fault::FailAfter(e)) => Err(e),
        _ => Ok(()),
    }
}

impl Service for FakeService {
    fn address(&self) -> &str {
        "https://fake.invalid"
    }

    fn sign_in(&self) -> Result<Access, Error> {
        let fault = self.begin(Method::SignIn, None)?;
        let mut inner = self.inner.lock();
        inner.access += 1;
        let access = Access::bearer(
            Secret::new(format!("access-{}", inner.access)),
            Some(Duration::from_secs(3600)),
        );
        drop(inner);
        after(fault).map(|()| access)
    }

    fn list_credentials(&self, access: &Access) -> Result<Vec<String>, Error> {
        let fault = self.begin(Method::List, Some(access))?;
        after(fault)?;
        Ok(self
            .inner
            .lock()
            .credentials
            .iter()
            .map(|c| c.info.id.clone())
            .collect())
    }

    fn credential_info(&self, access: &Access, id: &str) -> Result<CredentialInfo, Error> {
        let fault = self.begin(Method::Info, Some(access))?;
        after(fault)?;
        self.info_of(id).ok_or_else(|| {
            csc_error(
                "credentials/info",
                400,
                CscErrorCode::InvalidRequest,
                "Invalid parameter credentialID",
            )
        })
    }

    fn send_otp(&self, access: &Access, _id: &str, _description: &str) -> Result<(), Error> {
        let fault = self.begin(Method::SendOtp, Some(access))?;
        after(fault)
    }

    fn authorize(
        &self,
        access: &Access,
        request: &AuthorizeRequest,
    ) -> Result<Authorization, Error> {
        let fault = self.begin(Method::Authorize, Some(access))?;
        let info = self.info_of(&request.credential_id).ok_or_else(|| {
            csc_error(
                "credentials/authorize",
                400,
                CscErrorCode::InvalidRequest,
                "Invalid parameter credentialID",
            )
        })?;
        if request.num_signatures == 0 || request.num_signatures > info.multisign {
            return Err(csc_error(
                "credentials/authorize",
                400,
                CscErrorCode::InvalidRequest,
                "Invalid parameter numSignatures",
            ));
        }
        let needs_pin = info.auth.pin.is_some();
        if needs_pin && request.pin.as_ref().map(Secret::expose) != Some(PIN) {
            return Err(csc_error(
                "credentials/authorize",
                400,
                CscErrorCode::InvalidPin,
                "Invalid PIN",
            ));
        }
        let mut inner = self.inner.lock();
        let value = format!("sad-{}", inner.next_sad);
        inner.next_sad += 1;
        inner.sads.insert(
            value.clone(),
            (request.credential_id.clone(), request.num_signatures),
        );
        drop(inner);
        after(fault)?;
        Ok(Authorization::Granted(Sad {
            value: Secret::new(value),
            expires_in: Duration::from_secs(300),
        }))
    }

    fn authorize_check(&self, access: &Access, _handle: &Secret) -> Result<Authorization, Error> {
        let fault = self.begin(Method::AuthorizeCheck, Some(access))?;
        after(fault)?;
        Err(csc_error(
            "credentials/authorizeCheck",
            400,
            CscErrorCode::InvalidRequest,
            "Request expired",
        ))
    }

    fn sign_hashes(
        &self,
        access: &Access,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>, Error> {
        self.inner.lock().sign_sizes.push(request.hashes.len());
        let fault = self.begin(Method::Sign, Some(access))?;
        let mut inner = self.inner.lock();
        let sad = request.sad.expose().to_owned();
        let left = match inner.sads.get(&sad) {
            Some((cred, left)) if *cred == request.credential_id => *left,
            _ => 0,
        };
        let n = request.hashes.len() as u32;
        if n == 0 || left < n {
            return Err(csc_error(
                "signatures/signHash",
                400,
                CscErrorCode::InvalidRequest,
                "SAD expired",
            ));
        }
        if let Some(entry) = inner.sads.get_mut(&sad) {
            entry.1 -= n;
        }
        let cred = inner
            .credentials
            .iter()
            .find(|c| c.info.id == request.credential_id)
            .ok_or_else(|| {
                csc_error(
                    "signatures/signHash",
                    400,
                    CscErrorCode::InvalidRequest,
                    "Invalid parameter credentialID",
                )
            })?;
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let sign = |hash: &[u8]| -> Vec<u8> {
            let sig: p256::ecdsa::Signature = cred.key.sign_prehash(hash).expect("prehash sign");
            sig.to_der().as_bytes().to_vec()
        };
        let mut signatures: Vec<Vec<u8>> = request.hashes.iter().map(|h| sign(h)).collect();
        inner.signatures_made += signatures.len();
        drop(inner);
        match fault {
            Some(Fault::SignatureCount(k)) => {
                let first = signatures.first().cloned().unwrap_or_default();
                signatures = vec![first; k];
            }
            Some(Fault::Signature(bytes)) => signatures = vec![bytes; signatures.len()],
            other => after(other)?,
        }
        Ok(signatures)
    }
}
