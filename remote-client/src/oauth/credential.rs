//! Credential authorization with OAuth 2.0: the `scope=credential` authorization request, which the user
//! approves in a browser, and the exchange of its code for the credential token that `signHash` takes as
//! its SAD.
//!
//! Parameters, per version:
//! - CSC v1.0.4 §8.4.2 (`oauth2/authorize`, credential scope): `credentialID`, `numSignatures`, and
//!   `hash` — one or more base64url hash values, comma-separated (REQUIRED under SCAL 2) — plus
//!   `description` and `clientData`. v1.0.4 has no hash algorithm parameter there.
//! - CSC v2.0.0.2 §8.4.2: the same with `hashes` (comma-separated base64url) and `hashAlgorithmOID`, and
//!   alternatively `authorization_details` (RFC 9396) of type `credential` (v2.0 §8.4.3: `credentialID`,
//!   `documentDigests` [{`hash` base64, `label`}], `hashAlgorithmOID`). Both forms are sent, so that a
//!   server reading either finds the hashes.
//! - v1.0.4 §11.9 / v2.0 §11.9 (`signatures/signHash`): the credential-scope access token is passed as
//!   `SAD` (v2.0 also accepts it in the Authorization header; the `SAD` field is its backward-compatible
//!   form, valid for both versions).

use super::{PendingAuthorization, Purpose};
use crate::client::CscClient;
use crate::endpoint::Wire;
use crate::error::{Error, Result};
use crate::oauth::OAuth2Client;
use crate::types::{AuthorizeRequest, Sad};
use crate::wire::{b64, DEFAULT_SAD_LIFETIME};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2::{Scope, TokenResponse};
use serde::Serialize;
use std::time::Duration;

const CREDENTIAL_SCOPE: &str = "credential";

/// RFC 9396 authorization details of CSC v2.0 type `credential`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialDetails<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "credentialID")]
    credential_id: &'a str,
    document_digests: Vec<DocumentDigest>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: &'a str,
}

#[derive(Serialize)]
struct DocumentDigest {
    hash: String,
    label: String,
}

/// The query parameters of a credential-scope authorization request for `wire`.
fn parameters(wire: Wire, request: &AuthorizeRequest) -> Result<Vec<(&'static str, String)>> {
    if request.num_signatures == 0 {
        return Err(Error::Config("numSignatures must be at least 1".into()));
    }
    if request.pin.is_some() || request.otp.is_some() {
        return Err(Error::Config(
            "an OAuth 2.0 credential authorization carries no PIN or OTP: the user gives them to the service".into(),
        ));
    }
    let mut out = vec![
        ("credentialID", request.credential_id.clone()),
        ("numSignatures", request.num_signatures.to_string()),
    ];
    let hashes: Vec<String> = request
        .hashes
        .iter()
        .map(|h| URL_SAFE_NO_PAD.encode(h))
        .collect();
    match wire {
        Wire::V1 if !hashes.is_empty() => out.push(("hash", hashes.join(","))),
        Wire::V1 => {}
        Wire::V2 if !hashes.is_empty() => {
            let oid = request.hash_algorithm_oid.as_deref().ok_or_else(|| {
                Error::Config("CSC v2 needs the hash algorithm OID with the hashes".into())
            })?;
            out.push(("hashes", hashes.join(",")));
            out.push(("hashAlgorithmOID", oid.to_owned()));
            let label = request.description.as_deref().unwrap_or("Document");
            let details = [CredentialDetails {
                kind: "credential",
                credential_id: &request.credential_id,
                document_digests: request
                    .hashes
                    .iter()
                    .enumerate()
                    .map(|(i, h)| DocumentDigest {
                        hash: b64::encode(h),
                        label: if request.hashes.len() == 1 {
                            label.to_owned()
                        } else {
                            format!("{label} {}", i + 1)
                        },
                    })
                    .collect(),
                hash_algorithm_oid: oid,
            }];
            let json = serde_json::to_string(&details)
                .map_err(|_| Error::Config("cannot encode authorization_details".into()))?;
            out.push(("authorization_details", json));
        }
        Wire::V2 => {}
    }
    if let Some(d) = &request.description {
        out.push((
            "description",
            crate::client::limit_description(d).to_owned(),
        ));
    }
    if let Some(c) = &request.client_data {
        out.push(("clientData", c.clone()));
    }
    Ok(out)
}

impl CscClient {
    /// Starts an OAuth 2.0 credential authorization (`authMode` / `auth.mode` `oauth2code`): the page
    /// where the user approves `request` (credential, number of signatures and, under SCAL 2, the hashes
    /// and their algorithm; no PIN or OTP), with PKCE S256 and a random `state`.
    pub fn oauth2_credential_authorization(
        &self,
        client: &OAuth2Client,
        redirect_uri: &str,
        request: &AuthorizeRequest,
    ) -> Result<PendingAuthorization> {
        let extra = parameters(self.wire()?, request)?;
        let scope = Scope::new(CREDENTIAL_SCOPE.to_owned());
        self.authorization(client, redirect_uri, Purpose::Credential, &[scope], &extra)
    }

    /// Ends a credential authorization: checks the redirect and exchanges its code for the credential
    /// token, returned as the SAD to pass to `sign_hash`.
    pub fn oauth2_exchange_credential_code(
        &self,
        client: &OAuth2Client,
        pending: &PendingAuthorization,
        redirect: &str,
    ) -> Result<Sad> {
        let response = self.exchange_code(client, pending, Purpose::Credential, redirect)?;
        Ok(Sad {
            value: crate::Secret::new(response.access_token().secret().as_str()),
            expires_in: response
                .expires_in()
                .unwrap_or(Duration::from_secs(DEFAULT_SAD_LIFETIME)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn request(hashes: Vec<Vec<u8>>) -> AuthorizeRequest {
        AuthorizeRequest {
            credential_id: "cred/1".into(),
            num_signatures: 2,
            hashes,
            hash_algorithm_oid: Some(crate::oid::SHA256.into()),
            description: Some("Invoice".into()),
            ..Default::default()
        }
    }

    fn get<'a>(p: &'a [(&str, String)], name: &str) -> Option<&'a str> {
        p.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn v1_parameters() {
        let p = parameters(Wire::V1, &request(vec![vec![0xfb; 32], vec![1; 32]])).unwrap();
        assert_eq!(get(&p, "credentialID"), Some("cred/1"));
        assert_eq!(get(&p, "numSignatures"), Some("2"));
        let hash = get(&p, "hash").unwrap();
        let parts: Vec<&str> = hash.split(',').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[0]).unwrap(), vec![0xfb; 32]);
        assert!(!hash.contains(['+', '/', '=']));
        assert_eq!(get(&p, "hashAlgorithmOID"), None);
        assert_eq!(get(&p, "authorization_details"), None);
        assert_eq!(get(&p, "description"), Some("Invoice"));
        // SCAL 1: no hashes at all.
        let p = parameters(Wire::V1, &request(vec![])).unwrap();
        assert_eq!(get(&p, "hash"), None);
    }

    #[test]
    fn v2_parameters_and_authorization_details() {
        let p = parameters(Wire::V2, &request(vec![vec![2; 32], vec![3; 32]])).unwrap();
        assert_eq!(get(&p, "hashAlgorithmOID"), Some(crate::oid::SHA256));
        assert_eq!(get(&p, "hashes").unwrap().split(',').count(), 2);
        let details: serde_json::Value =
            serde_json::from_str(get(&p, "authorization_details").unwrap()).unwrap();
        assert_eq!(
            details,
            serde_json::json!([{"type":"credential","credentialID":"cred/1",
                "documentDigests":[{"hash":b64::encode(&[2; 32]),"label":"Invoice 1"},
                                   {"hash":b64::encode(&[3; 32]),"label":"Invoice 2"}],
                "hashAlgorithmOID":crate::oid::SHA256}])
        );
        let mut r = request(vec![vec![2; 32]]);
        r.hash_algorithm_oid = None;
        assert!(matches!(parameters(Wire::V2, &r), Err(Error::Config(_))));
    }

    #[test]
    fn factors_and_zero_signatures_are_refused() {
        let mut r = request(vec![]);
        r.pin = Some(Secret::new("1234"));
        let e = parameters(Wire::V1, &r).unwrap_err();
        assert!(matches!(e, Error::Config(_)) && !e.to_string().contains("1234"));
        let mut r = request(vec![]);
        r.num_signatures = 0;
        assert!(parameters(Wire::V2, &r).is_err());
    }
}
