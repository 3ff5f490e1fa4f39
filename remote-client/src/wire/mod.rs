//! JSON bodies as they travel. Requests differ between v1 and v2 (field names, how PIN and OTP are
//! carried), so each version has its own module; responses are read by one set of lenient types that
//! accept both shapes, since real services mix them (a v1 service with v2 `auth`, numbers as strings).

pub(crate) mod b64;
mod credential;
pub(crate) mod v1;
pub(crate) mod v2;

pub(crate) use credential::CredentialInfoWire;

use crate::secret::Secret;
use crate::types::{Sad, ServiceInfo, Tokens};
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// CSC v1 §10.1: `expiresIn` defaults to 3600 seconds when the service leaves it out.
pub(crate) const DEFAULT_SAD_LIFETIME: u64 = 3600;

/// The CSC error body, `{"error": ..., "error_description": ...}`.
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Empty {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InfoResponse {
    #[serde(default, deserialize_with = "flex_string")]
    specs: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    auth_type: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    sign_algorithms: Option<SignAlgorithms>,
    #[serde(default)]
    oauth2: Option<String>,
}

#[derive(Deserialize)]
struct SignAlgorithms {
    #[serde(default)]
    algos: Vec<String>,
}

impl From<InfoResponse> for ServiceInfo {
    fn from(w: InfoResponse) -> Self {
        ServiceInfo {
            specs: w.specs,
            name: w.name,
            region: w.region,
            lang: w.lang,
            auth_types: w.auth_type,
            methods: w.methods,
            sign_algorithms: w.sign_algorithms.map(|s| s.algos).unwrap_or_default(),
            oauth2: w.oauth2.filter(|u| !u.trim().is_empty()),
        }
    }
}

/// `auth/login` body; the password travels in the Basic header, a refresh token here.
#[derive(Serialize)]
pub(crate) struct LoginRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<&'a str>,
    #[serde(rename = "rememberMe")]
    pub remember_me: bool,
}

#[derive(Deserialize)]
pub(crate) struct LoginResponse {
    access_token: Secret,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default, deserialize_with = "flex_opt_u64")]
    expires_in: Option<u64>,
}

impl From<LoginResponse> for Tokens {
    fn from(w: LoginResponse) -> Self {
        Tokens {
            access_token: w.access_token,
            refresh_token: w.refresh_token.filter(|t| !t.is_empty()),
            expires_in: w.expires_in.map(Duration::from_secs),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct RevokeRequest<'a> {
    pub token: &'a str,
    pub token_type_hint: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_token: Option<&'a str>,
    /// v2.0 §11.4: ask for `credentialInfos` in the answer, with the fields below.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub infos: Option<ListInfos>,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListInfos {
    pub credential_info: bool,
    pub certificates: &'static str,
    pub cert_info: bool,
    pub auth_info: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListResponse {
    #[serde(default, rename = "credentialIDs")]
    pub credential_ids: Vec<String>,
    /// v2: one `credentials/info` answer per credential, with its `credentialID`; each is read on its
    /// own, so one the client cannot read does not hide the others.
    #[serde(default)]
    pub credential_infos: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InfoRequest<'a> {
    #[serde(rename = "credentialID")]
    pub credential_id: &'a str,
    pub certificates: &'static str,
    pub cert_info: bool,
    pub auth_info: bool,
}

/// `authorize`, `authorizeCheck` and `extendTransaction` answer with a SAD (or, with 202, a handle).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SadResponse {
    #[serde(default, rename = "SAD")]
    pub sad: Option<Secret>,
    #[serde(default, deserialize_with = "flex_opt_u64")]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub handle: Option<Secret>,
}

impl SadResponse {
    /// The SAD, or `None` when the body has none.
    pub(crate) fn into_sad(self) -> Option<Sad> {
        let value = self.sad.filter(|s| !s.is_empty())?;
        Some(Sad {
            value,
            expires_in: Duration::from_secs(self.expires_in.unwrap_or(DEFAULT_SAD_LIFETIME)),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct SignaturesResponse {
    #[serde(default)]
    pub signatures: Vec<String>,
}

/// A string that some services send as a number (`specs`, `SCAL`).
pub(crate) fn flex_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

pub(crate) fn flex_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    })
}

/// A count that some services send as a string (`multisign`, `len`, `expiresIn`).
pub(crate) fn flex_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a non-negative integer")),
        serde_json::Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom("expected a non-negative integer")),
        _ => Err(D::Error::custom("expected a non-negative integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_v1_and_v2() {
        let v1: ServiceInfo = serde_json::from_str::<InfoResponse>(
            r#"{"specs":"1.0.4.0","name":"Demo","logo":"https://x/logo.png","region":"IT",
                "lang":"en-US","description":"d","authType":["basic","oauth2code"],
                "oauth2":"https://x","methods":["auth/login","credentials/list"]}"#,
        )
        .unwrap()
        .into();
        assert_eq!(v1.specs, "1.0.4.0");
        assert_eq!(v1.name, "Demo");
        assert_eq!(v1.region.as_deref(), Some("IT"));
        assert_eq!(v1.auth_types, ["basic", "oauth2code"]);
        assert_eq!(v1.methods.len(), 2);
        assert!(v1.offers("credentials/list") && !v1.offers("credentials/extendTransaction"));
        assert_eq!(v1.oauth2.as_deref(), Some("https://x"));
        assert!(v1.sign_algorithms.is_empty());

        let v2: ServiceInfo = serde_json::from_str::<InfoResponse>(
            r#"{"specs":"2.0.0.2","name":"Demo","authType":["basic"],"methods":["info"],
                "signAlgorithms":{"algos":["1.2.840.113549.1.1.11","1.2.840.10045.4.3.2"],
                "algoParams":[]},"asynchronousOperationMode":false}"#,
        )
        .unwrap()
        .into();
        assert_eq!(v2.specs, "2.0.0.2");
        assert_eq!(
            v2.sign_algorithms,
            ["1.2.840.113549.1.1.11", "1.2.840.10045.4.3.2"]
        );
    }

    #[test]
    fn login_response() {
        let t: Tokens = serde_json::from_str::<LoginResponse>(
            r#"{"access_token":"AT-1","refresh_token":"RT-1","expires_in":3600}"#,
        )
        .unwrap()
        .into();
        assert_eq!(t.access_token.expose(), "AT-1");
        assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "RT-1");
        assert_eq!(t.expires_in, Some(Duration::from_secs(3600)));
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("AT-1") && !dbg.contains("RT-1"), "{dbg}");

        let t: Tokens = serde_json::from_str::<LoginResponse>(
            r#"{"access_token":"AT-2","refresh_token":"","expires_in":"60"}"#,
        )
        .unwrap()
        .into();
        assert!(t.refresh_token.is_none());
        assert_eq!(t.expires_in, Some(Duration::from_secs(60)));
        assert!(serde_json::from_str::<LoginResponse>(r#"{"expires_in":1}"#).is_err());
    }

    #[test]
    fn login_request_bodies() {
        let b = serde_json::to_string(&LoginRequest {
            refresh_token: None,
            remember_me: true,
        })
        .unwrap();
        assert_eq!(b, r#"{"rememberMe":true}"#);
        let b = serde_json::to_string(&LoginRequest {
            refresh_token: Some("RT"),
            remember_me: false,
        })
        .unwrap();
        assert_eq!(b, r#"{"refresh_token":"RT","rememberMe":false}"#);
    }

    #[test]
    fn sad_response() {
        let s = serde_json::from_str::<SadResponse>(r#"{"SAD":"S-1","expiresIn":300}"#)
            .unwrap()
            .into_sad()
            .unwrap();
        assert_eq!(s.value.expose(), "S-1");
        assert_eq!(s.expires_in, Duration::from_secs(300));
        let s = serde_json::from_str::<SadResponse>(r#"{"SAD":"S-2"}"#)
            .unwrap()
            .into_sad()
            .unwrap();
        assert_eq!(s.expires_in, Duration::from_secs(3600));
        let pending = serde_json::from_str::<SadResponse>(r#"{"handle":"H-1"}"#).unwrap();
        assert_eq!(pending.handle.as_ref().unwrap().expose(), "H-1");
        assert!(pending.into_sad().is_none());
        assert!(serde_json::from_str::<SadResponse>(r#"{"SAD":""}"#)
            .unwrap()
            .into_sad()
            .is_none());
    }

    #[test]
    fn list_bodies() {
        assert_eq!(
            serde_json::to_string(&ListRequest {
                page_token: None,
                infos: None
            })
            .unwrap(),
            "{}"
        );
        assert_eq!(
            serde_json::to_string(&ListRequest {
                page_token: Some("p2"),
                infos: Some(ListInfos {
                    credential_info: true,
                    certificates: "chain",
                    cert_info: false,
                    auth_info: true
                })
            })
            .unwrap(),
            r#"{"pageToken":"p2","credentialInfo":true,"certificates":"chain","certInfo":false,"authInfo":true}"#
        );
        let r: ListResponse =
            serde_json::from_str(r#"{"credentialIDs":["a","b"],"nextPageToken":"p2"}"#).unwrap();
        assert_eq!(r.credential_ids, ["a", "b"]);
        assert_eq!(r.next_page_token.as_deref(), Some("p2"));
    }
}
