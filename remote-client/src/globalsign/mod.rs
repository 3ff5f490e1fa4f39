//! A client for the GlobalSign Digital Signing Service (DSS) API v2: blocking, over this crate's
//! transport (verified rustls TLS with the account's client certificate, a deadline per exchange,
//! `Retry-After`, secrets scrubbed from errors). It knows HTTP and JSON and nothing of PKCS#11.
//!
//! What the API is, from its public sources (wire.rs names them field by field):
//! - the account signs in with mutual TLS and `POST /login` {api_key, api_secret} → an access token,
//!   carried as `Authorization: Bearer` afterwards (API documentation v2.6, §/login);
//! - `POST /identity` {subject_dn} creates a signing identity: a key pair at GlobalSign and a
//!   short-lived certificate for it ("signing keys and certificates expire after 10 minutes", the DSS
//!   Technical Guide 1.3; "signing sessions and signing certificates expire after 10 minutes",
//!   pdf-tools' GlobalSignDss provider reference);
//! - `GET /identity/{id}/sign/{digest}` signs the hex SHA-256 digest of the data to be signed and
//!   answers the signature in hex (unidoc signing.go: "Digest is the hex encoded SHA256 checksum";
//!   Setasign and the iText sample put the answer, PKCS#1 v1.5, into a CMS signer info as it is);
//! - `GET /certificate_path` (the CA that issues the identities' certificates), `GET /trustchain`
//!   (the chain above it and OCSP responses for it), `GET /quotas/{signatures|timestamps}`,
//!   `GET /counters/{signatures|timestamps|identities}`, `GET /timestamp/{digest}` (an RFC 3161 token)
//!   and `GET /validationpolicy`.
//!
//! Not found in any public source, and therefore decided here (problem.rs says how): the statuses of a
//! rate limit (429 with `Retry-After`, as RFC 6585 defines it) and of an exhausted quota.

mod problem;
mod wire;

pub use wire::{ExtraAttribute, SubjectDn};

use crate::access::AccessRef;
use crate::endpoint::Wire;
use crate::error::{Error, Result};
use crate::failure;
use crate::retry::{Effect, RetryPolicy};
use crate::secret::Secret;
use crate::transport::{Auth, Op, Reply, Request, Transport};
use crate::types::ClientConfig;
use base64::Engine;

/// The Content-Type the API documentation requires of request bodies (§/login:
/// `^application/json;charset=utf-8$`).
const CONTENT_TYPE: &str = "application/json;charset=utf-8";
/// SHA-256 digests are what the sign call takes.
const DIGEST_LEN: usize = 32;

/// An identity `POST /identity` created.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Names the identity in its sign calls.
    pub id: String,
    /// The identity's signing certificate, DER.
    pub certificate: Vec<u8>,
    /// The OCSP response for that certificate, DER (empty when the service sent none).
    pub ocsp_response: Vec<u8>,
}

/// `GET /trustchain`.
#[derive(Debug, Clone)]
pub struct TrustChain {
    /// DER certificates, as the service listed them.
    pub certificates: Vec<Vec<u8>>,
    /// DER OCSP responses for them.
    pub ocsp_responses: Vec<Vec<u8>>,
}

/// What `GET /quotas/{kind}` and `GET /counters/{kind}` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Signatures,
    Timestamps,
    /// Counters only.
    Identities,
}

impl Count {
    fn path(self) -> &'static str {
        match self {
            Count::Signatures => "signatures",
            Count::Timestamps => "timestamps",
            Count::Identities => "identities",
        }
    }
}

/// A GlobalSign DSS account's API. Thread-safe (`Send + Sync`): share one per account.
pub struct GlobalsignClient {
    transport: Transport,
}

impl std::fmt::Debug for GlobalsignClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalsignClient")
            .field("endpoint", self.transport.endpoint())
            .finish()
    }
}

fn b64(what: &str, text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| failure::protocol(what, "not base64"))
}

/// The DER certificates of a PEM text (a certificate, or several).
fn pem_certificates(what: &str, pem: &str) -> Result<Vec<Vec<u8>>> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| failure::protocol(what, "not PEM"))?;
    if certs.is_empty() {
        return Err(failure::protocol(what, "no certificate in the PEM text"));
    }
    Ok(certs.into_iter().map(|c| c.to_vec()).collect())
}

/// An identity ID goes into the URL path: only characters that need no escaping.
fn check_id(id: &str) -> Result<&str> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if ok {
        Ok(id)
    } else {
        Err(Error::Config(
            "the identity ID has characters that cannot go into a URL path".into(),
        ))
    }
}

fn hex_digest(digest: &[u8]) -> Result<String> {
    if digest.len() != DIGEST_LEN {
        return Err(Error::Config(format!(
            "GlobalSign DSS signs SHA-256 digests (32 bytes), not {} bytes",
            digest.len()
        )));
    }
    Ok(base16ct::upper::encode_string(digest))
}

impl GlobalsignClient {
    /// Builds the HTTP client. `config.base_url` is the API base including its version, e.g.
    /// `https://emea.api.dss.globalsign.com:8443/v2` (the documentation's base URI); the account's
    /// client certificate (`config.client_identity`) is required: the API is reached over mutual TLS
    /// only. Makes no request.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        if config.client_identity.is_none() {
            return Err(Error::Config(
                "GlobalSign DSS needs the account's TLS client certificate and key".into(),
            ));
        }
        let mut config = config.clone();
        config.api_base = Some(config.base_url.clone());
        Ok(GlobalsignClient {
            transport: Transport::new(&config)?,
        })
    }

    fn url(&self, path: &str) -> String {
        self.transport.endpoint().method_url(Wire::V2, path)
    }

    /// A request to `url` in the API's formats (its Content-Type, its problem bodies).
    fn request<'a, B>(
        method: reqwest::Method,
        url: &'a str,
        body: Option<&'a B>,
        retry: &'a RetryPolicy,
    ) -> Request<'a, B> {
        Request {
            method,
            url,
            body,
            content_type: CONTENT_TYPE,
            decode_error: problem::decode,
            retry,
        }
    }

    /// A read: `GET path`, repeated per the configured retry policy.
    fn get(&self, path: &str, name: &'static str, access: AccessRef<'_>) -> Result<Reply> {
        let url = self.url(path);
        let request = Self::request::<()>(
            reqwest::Method::GET,
            &url,
            None,
            self.transport.retry_policy(),
        );
        self.transport.send(&request, Op::read(name), access.0, &[])
    }

    /// `POST /login`: the access token of the account. The API says nothing of its lifetime.
    pub fn login(&self, api_key: &str, api_secret: &Secret) -> Result<Secret> {
        let body = wire::LoginRequest {
            api_key,
            api_secret: api_secret.expose(),
        };
        let url = self.url("login");
        let request = Self::request(
            reqwest::Method::POST,
            &url,
            Some(&body),
            self.transport.retry_policy(),
        );
        let reply = self.transport.send(
            &request,
            Op::write("login"),
            Auth::None,
            &[api_secret.expose()],
        )?;
        Ok(reply.json::<wire::LoginResponse>("login")?.access_token)
    }

    /// `POST /identity`: a new identity for `subject` (`None`: the account's static identity). Repeated
    /// only when the service cannot have created one (a refused connection, 429, 503).
    pub fn identity<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        subject: Option<&SubjectDn>,
    ) -> Result<Identity> {
        let body = wire::IdentityRequest {
            subject_dn: subject.filter(|s| !s.is_empty()),
        };
        let url = self.url("identity");
        let request = Self::request(
            reqwest::Method::POST,
            &url,
            Some(&body),
            self.transport.retry_policy(),
        );
        let reply = self
            .transport
            .send(&request, Op::write("identity"), access.into().0, &[])?;
        let r: wire::IdentityResponse = reply.json("identity")?;
        let certificate = pem_certificates("identity", &r.signing_cert)?.swap_remove(0);
        let ocsp_response = match r.ocsp_response.as_deref() {
            Some(text) if !text.trim().is_empty() => b64("identity", text)?,
            _ => Vec::new(),
        };
        check_id(&r.id).map_err(|_| failure::protocol("identity", "unusable identity ID"))?;
        Ok(Identity {
            id: r.id,
            certificate,
            ocsp_response,
        })
    }

    /// `GET /identity/{id}/sign/{digest}`: the PKCS#1 v1.5 signature of the SHA-256 `digest`. Sent once,
    /// whatever happens: a signature request is never repeated by this client.
    pub fn sign<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        id: &str,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        let url = self.url(&format!(
            "identity/{}/sign/{}",
            check_id(id)?,
            hex_digest(digest)?
        ));
        let once = RetryPolicy::default();
        let request = Self::request::<()>(reqwest::Method::GET, &url, None, &once);
        let op = Op {
            effect: Effect::Write,
            ..Op::read("sign")
        };
        let reply = self.transport.send(&request, op, access.into().0, &[])?;
        let r: wire::SignResponse = reply.json("sign")?;
        base16ct::mixed::decode_vec(r.signature.trim())
            .map_err(|_| failure::protocol("sign", "the signature is not hex"))
    }

    /// `GET /certificate_path`: the certificate of the CA that issues the identities' certificates.
    pub fn certificate_path<'a>(&self, access: impl Into<AccessRef<'a>>) -> Result<Vec<Vec<u8>>> {
        let r: wire::PathResponse = self
            .get("certificate_path", "certificate_path", access.into())?
            .json("certificate_path")?;
        pem_certificates("certificate_path", &r.path)
    }

    /// `GET /trustchain`: the chain of trust of the account's certificates and OCSP responses for it.
    pub fn trustchain<'a>(&self, access: impl Into<AccessRef<'a>>) -> Result<TrustChain> {
        let r: wire::TrustchainResponse = self
            .get("trustchain", "trustchain", access.into())?
            .json("trustchain")?;
        let mut certificates = Vec::new();
        for pem in &r.trustchain {
            certificates.extend(pem_certificates("trustchain", pem)?);
        }
        let ocsp_responses = r
            .ocsp_revocation_info
            .iter()
            .map(|t| b64("trustchain", t))
            .collect::<Result<_>>()?;
        Ok(TrustChain {
            certificates,
            ocsp_responses,
        })
    }

    /// `GET /quotas/{kind}`: what is left of the account's quota (signatures or timestamps).
    pub fn quota<'a>(&self, access: impl Into<AccessRef<'a>>, kind: Count) -> Result<u64> {
        if kind == Count::Identities {
            return Err(Error::Config(
                "identities have a counter, not a quota".into(),
            ));
        }
        let path = format!("quotas/{}", kind.path());
        let r: wire::ValueResponse = self.get(&path, "quotas", access.into())?.json("quotas")?;
        Ok(r.value)
    }

    /// `GET /counters/{kind}`: how many the account has made.
    pub fn counter<'a>(&self, access: impl Into<AccessRef<'a>>, kind: Count) -> Result<u64> {
        let path = format!("counters/{}", kind.path());
        let r: wire::ValueResponse = self
            .get(&path, "counters", access.into())?
            .json("counters")?;
        Ok(r.value)
    }

    /// `GET /timestamp/{digest}`: an RFC 3161 time-stamp token (DER) over the SHA-256 `digest`.
    pub fn timestamp<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        let path = format!("timestamp/{}", hex_digest(digest)?);
        let r: wire::TimestampResponse = self
            .get(&path, "timestamp", access.into())?
            .json("timestamp")?;
        b64("timestamp", &r.token)
    }

    /// `GET /validationpolicy`: which `subject_dn` fields the account may and must give, as the service
    /// describes them.
    pub fn validation_policy<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
    ) -> Result<serde_json::Value> {
        self.get("validationpolicy", "validationpolicy", access.into())?
            .json("validationpolicy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_upper_case_hex_of_32_bytes() {
        assert_eq!(hex_digest(&[0xab; 32]).unwrap(), "AB".repeat(32));
        assert!(matches!(hex_digest(&[0; 48]), Err(Error::Config(_))));
    }

    #[test]
    fn identity_ids_must_be_path_safe() {
        assert!(check_id("8a1c-9f.x_y~").is_ok());
        for bad in ["", "a/b", "a?b", "a b", "..%2f"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_certificate_is_required() {
        let mut cfg = ClientConfig::new("https://127.0.0.1:1/v2");
        let e = GlobalsignClient::new(&cfg).unwrap_err();
        assert!(e.to_string().contains("client certificate"), "{e}");
        cfg.client_identity = Some(crate::types::ClientIdentity {
            cert_file: "/nonexistent.pem".into(),
            key_file: "/nonexistent.key".into(),
        });
        assert!(matches!(GlobalsignClient::new(&cfg), Err(Error::Config(_))));
    }

    #[test]
    fn subject_dn_serialises_only_what_is_given() {
        let s = SubjectDn {
            common_name: Some("ACME Seal".into()),
            organization_unit: vec!["Invoices".into()],
            ..SubjectDn::default()
        };
        let body = serde_json::to_value(wire::IdentityRequest {
            subject_dn: Some(&s),
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"subject_dn": {"common_name": "ACME Seal", "organization_unit": ["Invoices"]}})
        );
        let empty = serde_json::to_string(&wire::IdentityRequest { subject_dn: None }).unwrap();
        assert_eq!(empty, "{}");
    }
}
