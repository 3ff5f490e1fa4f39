//! The CSC client: one per service, its API version, `info`, and signing in to the service. The methods
//! of credentials and signatures are in the submodules, each in one place for both API versions.

mod credentials;

pub use credentials::ListedCredential;
mod signing;

use crate::access::{Access, AccessRef, ServiceAuth, SignIn};
use crate::endpoint::Wire;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::transport::{Auth, Op, Transport};
use crate::types::*;
use crate::wire;
use once_cell::sync::OnceCell;
use std::fmt;
use std::sync::atomic::AtomicBool;

/// CSC's limit on `description`, in characters.
const MAX_DESCRIPTION: usize = 500;

/// A CSC service. Thread-safe (`Send + Sync`): share one per service.
pub struct CscClient {
    transport: Transport,
    configured: ApiVersion,
    resolved: OnceCell<Wire>,
    /// The first `info` answer of the version in use (detection's, or `service_info`'s).
    service: OnceCell<ServiceInfo>,
    /// Set once the service refused `certInfo: true` (400/501) and answered without it.
    no_cert_info: AtomicBool,
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
            service: OnceCell::new(),
            no_cert_info: AtomicBool::new(false),
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

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    pub(crate) fn wire(&self) -> Result<Wire> {
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
            let _ = self.service.set(info);
            return Ok(wire);
        }
        let (wire, info) = match self.fetch_info(Wire::V2) {
            Ok(info) if spec_major(&info.specs) == Some(1) => (Wire::V1, info),
            Ok(info) => (Wire::V2, info),
            Err(e @ (Error::Transport { .. } | Error::Config(_))) => return Err(e),
            Err(v2_error) => {
                log::debug!("CSC v2 info unavailable ({v2_error}); trying v1");
                (Wire::V1, self.fetch_info(Wire::V1)?)
            }
        };
        log::debug!("CSC API version in use: {wire:?}");
        let _ = self.service.set(info);
        Ok(wire)
    }

    fn fetch_info(&self, wire: Wire) -> Result<ServiceInfo> {
        let reply =
            self.transport
                .call(wire, Op::read("info"), Auth::None, &wire::Empty {}, &[])?;
        Ok(reply.json::<wire::InfoResponse>("info")?.into())
    }

    /// `info`, asked now.
    pub fn info(&self) -> Result<ServiceInfo> {
        self.fetch_info(self.wire()?)
    }

    /// `info` as the service first answered it to this client (asked once, then kept).
    pub fn service_info(&self) -> Result<ServiceInfo> {
        self.service.get_or_try_init(|| self.info()).cloned()
    }

    /// Whether the service lists `method` in `info.methods` ([`ServiceInfo::offers`]), so that a caller
    /// never calls a method the service does not offer.
    pub fn offers(&self, method: &str) -> Result<bool> {
        Ok(self.service_info()?.offers(method))
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
    pub fn revoke<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        token: &Secret,
        hint: &str,
    ) -> Result<()> {
        let body = wire::RevokeRequest {
            token: token.expose(),
            token_type_hint: hint,
        };
        self.transport.call(
            self.wire()?,
            Op::read("auth/revoke"),
            access.into().0,
            &body,
            &[token.expose()],
        )?;
        Ok(())
    }

    /// Signs in to the service as `auth` says: no request for the static kinds (none, bearer token, API
    /// key), `auth/login` for a password or refresh token, the token endpoint for OAuth 2.0. Pass the result's `access` to every method;
    /// when one answers [`Reason::TokenExpired`](crate::Reason::TokenExpired) and
    /// [`ServiceAuth::renews`], sign in again.
    pub fn sign_in(&self, auth: &ServiceAuth) -> Result<SignIn> {
        match auth {
            ServiceAuth::None => Ok(SignIn::fixed(Access::Anonymous)),
            ServiceAuth::Bearer(token) => Ok(SignIn::fixed(Access::Bearer(token.clone()))),
            ServiceAuth::ApiKey { header, key } => Ok(SignIn::fixed(Access::ApiKey {
                header: header.clone(),
                key: key.clone(),
            })),
            ServiceAuth::Password { account, password } => {
                Ok(self.login(account, password, false)?.into())
            }
            ServiceAuth::RefreshToken(token) => Ok(self.refresh(token)?.into()),
            ServiceAuth::OAuth2 { client, grant } => self.oauth2_sign_in(client, grant),
        }
    }
}

impl From<Tokens> for SignIn {
    fn from(t: Tokens) -> Self {
        SignIn {
            access: Access::Bearer(t.access_token),
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
        }
    }
}

/// The first number of a `specs` value such as "2.0.0.2".
fn spec_major(specs: &str) -> Option<u32> {
    specs.trim().split('.').next()?.parse().ok()
}

pub(crate) fn limit_description(d: &str) -> &str {
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
