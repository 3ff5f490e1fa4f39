//! The JSON of the GlobalSign Digital Signing Service API (v2), and its error bodies. Every field is
//! named as the public sources name it:
//!
//! - GlobalSign, "GlobalSign DSS API documentation version v2.6" (globalsign.com, resources/apis/
//!   api-documentation/digital-signing-service-api-documentation): `POST /login` takes `api_key` (16
//!   hex digits) and `api_secret` (40 hex digits) and answers `access_token`; errors are
//!   `application/problem+json` with a required `description`, an optional `id` and an optional
//!   `errors` object of "error type" → details.
//! - The public clients of that API: unidoc/globalsign-dss (Go: identity.go, signing.go,
//!   certificate_path.go, trustchain.go, quotas.go, timestamp.go), Setasign's
//!   SetaPDF-Signer-Addon-GlobalSign-DSS (PHP: Client.php, Identity.php) and the iText C# sample:
//!   `subject_dn` and its fields, `id`/`signing_cert` (PEM)/`ocsp_response` (base64 DER), `signature`
//!   (hex), `path` (PEM), `trustchain` (PEM list)/`ocsp_revocation_info` (base64 DER list), `value`,
//!   `token` (base64 DER).

use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// `POST /login`.
#[derive(Serialize)]
pub(crate) struct LoginRequest<'a> {
    pub api_key: &'a str,
    pub api_secret: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct LoginResponse {
    pub access_token: Secret,
}

/// The subject of the signing certificates of an identity: `subject_dn` of `POST /identity`, field by
/// field as unidoc/globalsign-dss (identity.go) names them. Which fields an account may or must give is
/// its validation policy (`GET /validationpolicy`); an account with a static identity gives none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectDn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organization_unit: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction_of_incorporation_locality_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction_of_incorporation_state_or_province_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction_of_incorporation_country_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_attributes: Vec<ExtraAttribute>,
}

impl SubjectDn {
    pub fn is_empty(&self) -> bool {
        self == &SubjectDn::default()
    }
}

/// One of `subject_dn.extra_attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraAttribute {
    /// The attribute's OID.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

/// `POST /identity`: `{"subject_dn": {...}}`, or `{}` for an account with a static identity (pdf-tools'
/// GlobalSign DSS provider documentation shows both forms).
#[derive(Serialize)]
pub(crate) struct IdentityRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_dn: Option<&'a SubjectDn>,
}

#[derive(Deserialize)]
pub(crate) struct IdentityResponse {
    pub id: String,
    pub signing_cert: String,
    #[serde(default)]
    pub ocsp_response: Option<String>,
}

/// `GET /identity/{id}/sign/{digest}`.
#[derive(Deserialize)]
pub(crate) struct SignResponse {
    pub signature: String,
}

/// `GET /certificate_path`.
#[derive(Deserialize)]
pub(crate) struct PathResponse {
    pub path: String,
}

/// `GET /trustchain`.
#[derive(Deserialize)]
pub(crate) struct TrustchainResponse {
    pub trustchain: Vec<String>,
    #[serde(default)]
    pub ocsp_revocation_info: Vec<String>,
}

/// `GET /quotas/{kind}` and `GET /counters/{kind}`.
#[derive(Deserialize)]
pub(crate) struct ValueResponse {
    pub value: u64,
}

/// `GET /timestamp/{digest}`.
#[derive(Deserialize)]
pub(crate) struct TimestampResponse {
    pub token: String,
}

/// An `application/problem+json` error body.
#[derive(Deserialize)]
pub(crate) struct Problem {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub errors: std::collections::BTreeMap<String, serde_json::Value>,
}
