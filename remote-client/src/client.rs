//! PLACEHOLDER: the implementation is being written (see the API contract in lib.rs and types.rs).
use crate::error::Result;
use crate::secret::Secret;
use crate::types::*;

/// A CSC service. Thread-safe (`Send + Sync`): share one per service.
pub struct CscClient {
    _private: (),
}

impl CscClient {
    /// Builds the HTTP client (TLS roots, client identity, timeouts). Makes no request.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let _ = config;
        unimplemented!()
    }
    /// The version in use (resolves `Auto` with one `info` call, cached).
    pub fn api_version(&self) -> Result<ApiVersion> { unimplemented!() }
    pub fn info(&self) -> Result<ServiceInfo> { unimplemented!() }
    /// `auth/login` with HTTP Basic. `remember_me` asks for a refresh token.
    pub fn login(&self, user: &str, password: &Secret, remember_me: bool) -> Result<Tokens> { let _ = (user, password, remember_me); unimplemented!() }
    /// `auth/login` with a refresh token.
    pub fn refresh(&self, refresh_token: &Secret) -> Result<Tokens> { let _ = refresh_token; unimplemented!() }
    /// `auth/revoke`.
    pub fn revoke(&self, access_token: &Secret, token: &Secret, hint: &str) -> Result<()> { let _ = (access_token, token, hint); unimplemented!() }
    /// `credentials/list`, all pages.
    pub fn list_credentials(&self, access_token: &Secret) -> Result<Vec<String>> { let _ = access_token; unimplemented!() }
    /// `credentials/info` with the whole chain, cert info and auth info.
    pub fn credential_info(&self, access_token: &Secret, credential_id: &str) -> Result<CredentialInfo> { let _ = (access_token, credential_id); unimplemented!() }
    /// Asks the service to send an online OTP: v1 `credentials/sendOTP`, v2 `credentials/getChallenge`.
    pub fn send_otp(&self, access_token: &Secret, credential_id: &str) -> Result<()> { let _ = (access_token, credential_id); unimplemented!() }
    pub fn authorize(&self, access_token: &Secret, request: &AuthorizeRequest) -> Result<Authorization> { let _ = (access_token, request); unimplemented!() }
    pub fn authorize_check(&self, access_token: &Secret, handle: &Secret) -> Result<Authorization> { let _ = (access_token, handle); unimplemented!() }
    pub fn extend_transaction(&self, access_token: &Secret, credential_id: &str, hashes: &[Vec<u8>], hash_algorithm_oid: Option<&str>, sad: &Secret) -> Result<Sad> { let _ = (access_token, credential_id, hashes, hash_algorithm_oid, sad); unimplemented!() }
    /// `signatures/signHash`: one signature per hash, in order.
    pub fn sign_hash(&self, access_token: &Secret, request: &SignHashRequest) -> Result<Vec<Vec<u8>>> { let _ = (access_token, request); unimplemented!() }
}
