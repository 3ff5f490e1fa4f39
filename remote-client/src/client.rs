//! The CSC methods, each in one place for both API versions.

use crate::endpoint::Wire;
use crate::error::{Error, Result};
use crate::failure;
use crate::secret::Secret;
use crate::transport::{Auth, Op, Transport};
use crate::types::*;
use crate::wire::{self, b64, v1, v2};
use once_cell::sync::OnceCell;
use std::fmt;

/// CSC's limit on `description`, in characters.
const MAX_DESCRIPTION: usize = 500;
/// A service that keeps handing out page tokens is broken; stop rather than loop forever.
const MAX_PAGES: usize = 1000;

/// A CSC service. Thread-safe (`Send + Sync`): share one per service.
pub struct CscClient {
    transport: Transport,
    configured: ApiVersion,
    resolved: OnceCell<Wire>,
}

impl fmt::Debug for CscClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CscClient")
            .field("endpoint", self.transport.endpoint())
            .field("api_version", &self.configured)
            .field("resolved", &self.resolved.get())
            .finish()
    }
}

impl CscClient {
    /// Builds the HTTP client (TLS roots, client identity, timeouts). Makes no request.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        Ok(CscClient {
            transport: Transport::new(config)?,
            configured: config.api_version,
            resolved: OnceCell::new(),
        })
    }

    /// What is left of the wait the service last asked for with `Retry-After` (on a 429 or 503), so a
    /// caller can back off; `None` once it has passed or after the next successful answer.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.transport.retry_after()
    }

    /// The version in use (resolves `Auto` with one `info` call, cached).
    pub fn api_version(&self) -> Result<ApiVersion> {
        Ok(match self.wire()? {
            Wire::V1 => ApiVersion::V1,
            Wire::V2 => ApiVersion::V2,
        })
    }

    fn wire(&self) -> Result<Wire> {
        match self.configured {
            ApiVersion::V1 => Ok(Wire::V1),
            ApiVersion::V2 => Ok(Wire::V2),
            ApiVersion::Auto => self.resolved.get_or_try_init(|| self.detect()).copied(),
        }
    }

    /// v2's `info` first; a service without it (404, an error body, garbage) is asked at v1. A service
    /// that serves v1 under the v2 path says so in `specs`. At an explicit API base there is one `info`,
    /// whose `specs` decide (v0 services are v1-shaped).
    fn detect(&self) -> Result<Wire> {
        if self.transport.endpoint().is_api_base() {
            let info = self.fetch_info(Wire::V2)?;
            let wire = match spec_major(&info.specs) {
                Some(2) => Wire::V2,
                _ => Wire::V1,
            };
            log::debug!("CSC API version at the API base: {wire:?}");
            return Ok(wire);
        }
        let wire = match self.fetch_info(Wire::V2) {
            Ok(info) if spec_major(&info.specs) == Some(1) => Wire::V1,
            Ok(_) => Wire::V2,
            Err(e @ (Error::Transport { .. } | Error::Config(_))) => return Err(e),
            Err(v2_error) => {
                log::debug!("CSC v2 info unavailable ({v2_error}); trying v1");
                self.fetch_info(Wire::V1)?;
                Wire::V1
            }
        };
        log::debug!("CSC API version in use: {wire:?}");
        Ok(wire)
    }

    fn fetch_info(&self, wire: Wire) -> Result<ServiceInfo> {
        let reply =
            self.transport
                .call(wire, Op::read("info"), Auth::None, &wire::Empty {}, &[])?;
        Ok(reply.json::<wire::InfoResponse>("info")?.into())
    }

    pub fn info(&self) -> Result<ServiceInfo> {
        self.fetch_info(self.wire()?)
    }

    /// `auth/login` with HTTP Basic. `remember_me` asks for a refresh token.
    pub fn login(&self, user: &str, password: &Secret, remember_me: bool) -> Result<Tokens> {
        let body = wire::LoginRequest {
            refresh_token: None,
            remember_me,
        };
        let auth = Auth::Basic { user, password };
        let reply = self
            .transport
            .call(self.wire()?, Op::read("auth/login"), auth, &body, &[])?;
        Ok(reply.json::<wire::LoginResponse>("auth/login")?.into())
    }

    /// `auth/login` with a refresh token. `rememberMe` is false: the caller keeps the refresh token it
    /// has, so the service has no reason to issue (or rotate to) another one.
    pub fn refresh(&self, refresh_token: &Secret) -> Result<Tokens> {
        let body = wire::LoginRequest {
            refresh_token: Some(refresh_token.expose()),
            remember_me: false,
        };
        let reply = self.transport.call(
            self.wire()?,
            Op::read("auth/login"),
            Auth::None,
            &body,
            &[refresh_token.expose()],
        )?;
        Ok(reply.json::<wire::LoginResponse>("auth/login")?.into())
    }

    /// `auth/revoke`. `hint` is "access_token" or "refresh_token".
    pub fn revoke(&self, access_token: &Secret, token: &Secret, hint: &str) -> Result<()> {
        let body = wire::RevokeRequest {
            token: token.expose(),
            token_type_hint: hint,
        };
        self.transport.call(
            self.wire()?,
            Op::read("auth/revoke"),
            Auth::Bearer(access_token),
            &body,
            &[token.expose()],
        )?;
        Ok(())
    }

    /// `credentials/list`, all pages.
    pub fn list_credentials(&self, access_token: &Secret) -> Result<Vec<String>> {
        const METHOD: &str = "credentials/list";
        let wire = self.wire()?;
        let mut ids = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = wire::ListRequest {
                page_token: page.as_deref(),
            };
            let reply = self.transport.call(
                wire,
                Op::read(METHOD),
                Auth::Bearer(access_token),
                &body,
                &[],
            )?;
            let list: wire::ListResponse = reply.json(METHOD)?;
            ids.extend(list.credential_ids);
            match list.next_page_token.filter(|t| !t.is_empty()) {
                None => return Ok(ids),
                Some(next) if page.as_ref() == Some(&next) => {
                    return Err(failure::protocol(METHOD, "the same page token came back"))
                }
                Some(next) => page = Some(next),
            }
        }
        Err(failure::protocol(METHOD, "too many pages"))
    }

    /// `credentials/info` with the whole chain, cert info and auth info.
    pub fn credential_info(
        &self,
        access_token: &Secret,
        credential_id: &str,
    ) -> Result<CredentialInfo> {
        const METHOD: &str = "credentials/info";
        let wire = self.wire()?;
        let body = wire::InfoRequest {
            credential_id,
            certificates: "chain",
            cert_info: true,
            auth_info: true,
        };
        let reply = self.transport.call(
            wire,
            Op::read(METHOD),
            Auth::Bearer(access_token),
            &body,
            &[],
        )?;
        reply
            .json::<wire::CredentialInfoWire>(METHOD)?
            .normalise(credential_id, wire)
            .map_err(|e| failure::protocol(METHOD, e))
    }

    /// Asks the service to send an online OTP: v1 `credentials/sendOTP`, v2 `credentials/getChallenge`.
    pub fn send_otp(&self, access_token: &Secret, credential_id: &str) -> Result<()> {
        self.send_otp_with_description(access_token, credential_id, None)
    }

    /// [`send_otp`](Self::send_otp) with a text the service shows the user next to the code (e.g. in
    /// the SMS), at most 500 characters (longer text is cut).
    pub fn send_otp_with_description(
        &self,
        access_token: &Secret,
        credential_id: &str,
        description: Option<&str>,
    ) -> Result<()> {
        let wire = self.wire()?;
        let method = match wire {
            Wire::V1 => "credentials/sendOTP",
            Wire::V2 => "credentials/getChallenge",
        };
        let body = v1::SendOtpRequest {
            credential_id,
            description: description.map(limit_description),
        };
        // A second SMS may void the first code: sent once unless it surely never arrived.
        self.transport.call(
            wire,
            Op::write(method),
            Auth::Bearer(access_token),
            &body,
            &[],
        )?;
        Ok(())
    }

    pub fn authorize(
        &self,
        access_token: &Secret,
        request: &AuthorizeRequest,
    ) -> Result<Authorization> {
        const METHOD: &str = "credentials/authorize";
        if request.num_signatures == 0 {
            return Err(Error::Config("numSignatures must be at least 1".into()));
        }
        let wire = self.wire()?;
        let secrets: Vec<&str> = [&request.pin, &request.otp]
            .into_iter()
            .flatten()
            .map(Secret::expose)
            .collect();
        let hashes = b64::encode_all(&request.hashes);
        let description = request.description.as_deref().map(limit_description);
        let client_data = request.client_data.as_deref();
        let auth = Auth::Bearer(access_token);
        let reply = match wire {
            Wire::V1 => {
                let body = v1::AuthorizeRequest {
                    credential_id: &request.credential_id,
                    num_signatures: request.num_signatures,
                    hash: hashes,
                    pin: request.pin.as_ref().map(Secret::expose),
                    otp: request.otp.as_ref().map(Secret::expose),
                    description,
                    client_data,
                };
                self.transport
                    .call(wire, Op::authorize(METHOD), auth, &body, &secrets)?
            }
            Wire::V2 => {
                let hash_algorithm_oid =
                    v2_hash_algorithm(&request.hashes, request.hash_algorithm_oid.as_deref())?;
                let mut auth_data = Vec::new();
                if let Some(pin) = &request.pin {
                    auth_data.push(v2::AuthDatum {
                        id: "PIN",
                        value: pin.expose(),
                    });
                }
                if let Some(otp) = &request.otp {
                    auth_data.push(v2::AuthDatum {
                        id: "OTP",
                        value: otp.expose(),
                    });
                }
                let body = v2::AuthorizeRequest {
                    credential_id: &request.credential_id,
                    num_signatures: request.num_signatures,
                    hashes,
                    hash_algorithm_oid,
                    auth_data,
                    description,
                    client_data,
                };
                self.transport
                    .call(wire, Op::authorize(METHOD), auth, &body, &secrets)?
            }
        };
        authorization(METHOD, reply.json(METHOD)?, None)
    }

    /// `credentials/authorizeCheck` (v2 only): polls an authorization that answered `Pending`.
    pub fn authorize_check(&self, access_token: &Secret, handle: &Secret) -> Result<Authorization> {
        const METHOD: &str = "credentials/authorizeCheck";
        let wire = self.wire()?;
        if wire == Wire::V1 {
            return Err(Error::Config(format!("{METHOD} needs CSC API v2")));
        }
        let body = v2::AuthorizeCheckRequest {
            handle: handle.expose(),
        };
        let reply = self.transport.call(
            wire,
            Op::read(METHOD),
            Auth::Bearer(access_token),
            &body,
            &[handle.expose()],
        )?;
        if reply.status == 202 && reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Authorization::Pending {
                handle: handle.clone(),
            });
        }
        authorization(METHOD, reply.json(METHOD)?, Some(handle))
    }

    pub fn extend_transaction(
        &self,
        access_token: &Secret,
        credential_id: &str,
        hashes: &[Vec<u8>],
        hash_algorithm_oid: Option<&str>,
        sad: &Secret,
    ) -> Result<Sad> {
        const METHOD: &str = "credentials/extendTransaction";
        let wire = self.wire()?;
        let auth = Auth::Bearer(access_token);
        let secrets = [sad.expose()];
        let reply = match wire {
            Wire::V1 => {
                let body = v1::ExtendTransactionRequest {
                    credential_id,
                    hash: b64::encode_all(hashes),
                    sad: sad.expose(),
                };
                self.transport
                    .call(wire, Op::write(METHOD), auth, &body, &secrets)?
            }
            Wire::V2 => {
                let body = v2::ExtendTransactionRequest {
                    credential_id,
                    hashes: b64::encode_all(hashes),
                    hash_algorithm_oid: v2_hash_algorithm(hashes, hash_algorithm_oid)?,
                    sad: sad.expose(),
                };
                self.transport
                    .call(wire, Op::write(METHOD), auth, &body, &secrets)?
            }
        };
        reply
            .json::<wire::SadResponse>(METHOD)?
            .into_sad()
            .ok_or_else(|| failure::protocol(METHOD, "response has no SAD"))
    }

    /// `signatures/signHash`: one signature per hash, in order.
    pub fn sign_hash(
        &self,
        access_token: &Secret,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>> {
        const METHOD: &str = "signatures/signHash";
        if request.hashes.is_empty() {
            return Err(Error::Config("signHash needs at least one hash".into()));
        }
        let wire = self.wire()?;
        let auth = Auth::Bearer(access_token);
        let secrets = [request.sad.expose()];
        let hashes = b64::encode_all(&request.hashes);
        let params = request.sign_algorithm_params.as_deref().map(b64::encode);
        let reply = match wire {
            Wire::V1 => {
                let body = v1::SignHashRequest {
                    credential_id: &request.credential_id,
                    sad: request.sad.expose(),
                    hash: hashes,
                    hash_algo: &request.hash_algorithm_oid,
                    sign_algo: &request.sign_algorithm_oid,
                    sign_algo_params: params,
                };
                self.transport
                    .call(wire, Op::write(METHOD), auth, &body, &secrets)?
            }
            Wire::V2 => {
                let body = v2::SignHashRequest {
                    credential_id: &request.credential_id,
                    sad: request.sad.expose(),
                    hashes,
                    hash_algorithm_oid: &request.hash_algorithm_oid,
                    sign_algo: &request.sign_algorithm_oid,
                    sign_algo_params: params,
                    operation_mode: "S",
                };
                self.transport
                    .call(wire, Op::write(METHOD), auth, &body, &secrets)?
            }
        };
        if reply.status == 202 {
            return Err(failure::protocol(
                METHOD,
                "the service answered asynchronously to a synchronous request",
            ));
        }
        let signatures: wire::SignaturesResponse = reply.json(METHOD)?;
        if signatures.signatures.len() != request.hashes.len() {
            return Err(failure::protocol(
                METHOD,
                format!(
                    "{} signatures for {} hashes",
                    signatures.signatures.len(),
                    request.hashes.len()
                ),
            ));
        }
        signatures
            .signatures
            .iter()
            .enumerate()
            .map(|(i, s)| {
                b64::decode(&format!("signature {}", i + 1), s)
                    .map_err(|e| failure::protocol(METHOD, e))
            })
            .collect()
    }
}

/// The first number of a `specs` value such as "2.0.0.2".
fn spec_major(specs: &str) -> Option<u32> {
    specs.trim().split('.').next()?.parse().ok()
}

fn limit_description(d: &str) -> &str {
    match d.char_indices().nth(MAX_DESCRIPTION) {
        Some((cut, _)) => &d[..cut],
        None => d,
    }
}

/// v2 needs `hashAlgorithmOID` whenever hashes are sent.
fn v2_hash_algorithm<'a>(hashes: &[Vec<u8>], oid: Option<&'a str>) -> Result<Option<&'a str>> {
    match (hashes.is_empty(), oid) {
        (false, None) => Err(Error::Config(
            "CSC v2 needs the hash algorithm OID with the hashes".into(),
        )),
        (true, _) => Ok(None),
        (false, oid) => Ok(oid),
    }
}

fn authorization(
    method: &str,
    response: wire::SadResponse,
    previous_handle: Option<&Secret>,
) -> Result<Authorization> {
    let handle = response.handle.clone();
    if let Some(sad) = response.into_sad() {
        return Ok(Authorization::Granted(sad));
    }
    match handle
        .filter(|h| !h.is_empty())
        .or(previous_handle.cloned())
    {
        Some(handle) => Ok(Authorization::Pending { handle }),
        None => Err(failure::protocol(
            method,
            "response has neither SAD nor handle",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_versions() {
        assert_eq!(spec_major("1.0.4.0"), Some(1));
        assert_eq!(spec_major(" 2.0.0.2"), Some(2));
        assert_eq!(spec_major("2"), Some(2));
        assert_eq!(spec_major("v2"), None);
        assert_eq!(spec_major(""), None);
    }

    #[test]
    fn description_is_cut_at_500_characters() {
        let long = "é".repeat(600);
        assert_eq!(limit_description(&long).chars().count(), 500);
        assert_eq!(limit_description("short"), "short");
    }

    #[test]
    fn v2_hashes_need_an_algorithm() {
        assert!(v2_hash_algorithm(&[vec![1]], None).is_err());
        assert_eq!(v2_hash_algorithm(&[], Some("x")).unwrap(), None);
        assert_eq!(v2_hash_algorithm(&[vec![1]], Some("x")).unwrap(), Some("x"));
    }

    #[test]
    fn new_makes_no_request_and_checks_the_url() {
        let mut cfg = ClientConfig::new("http://127.0.0.1:1");
        assert!(matches!(CscClient::new(&cfg), Err(Error::Config(_))));
        cfg.allow_loopback_http = true;
        let c = CscClient::new(&cfg).unwrap();
        assert!(format!("{c:?}").contains("http://127.0.0.1:1"));
        cfg.request_timeout = std::time::Duration::ZERO;
        assert!(matches!(CscClient::new(&cfg), Err(Error::Config(_))));
    }

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<CscClient>();
    }
}
