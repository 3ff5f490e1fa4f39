//! CSC API v2.0.0.2 request bodies: `hashes`/`hashAlgorithmOID`, PIN and OTP in `authData`.

use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct AuthDatum<'a> {
    pub id: &'static str,
    pub value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthorizeRequest<'a> {
    #[serde(rename = "credentialID")]
    pub credential_id: &'a str,
    pub num_signatures: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<String>,
    #[serde(rename = "hashAlgorithmOID", skip_serializing_if = "Option::is_none")]
    pub hash_algorithm_oid: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_data: Vec<AuthDatum<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_data: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct AuthorizeCheckRequest<'a> {
    pub handle: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExtendTransactionRequest<'a> {
    #[serde(rename = "credentialID")]
    pub credential_id: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<String>,
    #[serde(rename = "hashAlgorithmOID", skip_serializing_if = "Option::is_none")]
    pub hash_algorithm_oid: Option<&'a str>,
    #[serde(rename = "SAD")]
    pub sad: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignHashRequest<'a> {
    #[serde(rename = "credentialID")]
    pub credential_id: &'a str,
    #[serde(rename = "SAD")]
    pub sad: &'a str,
    pub hashes: Vec<String>,
    #[serde(rename = "hashAlgorithmOID")]
    pub hash_algorithm_oid: &'a str,
    pub sign_algo: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_algo_params: Option<String>,
    /// "S": synchronous; this client never asks for asynchronous signing.
    pub operation_mode: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn authorize_body() {
        let v = serde_json::to_value(AuthorizeRequest {
            credential_id: "c1",
            num_signatures: 1,
            hashes: vec!["AAEC".into()],
            hash_algorithm_oid: Some("2.16.840.1.101.3.4.2.1"),
            auth_data: vec![
                AuthDatum {
                    id: "PIN",
                    value: "1234",
                },
                AuthDatum {
                    id: "OTP",
                    value: "654321",
                },
            ],
            description: None,
            client_data: None,
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"credentialID":"c1","numSignatures":1,"hashes":["AAEC"],
                   "hashAlgorithmOID":"2.16.840.1.101.3.4.2.1",
                   "authData":[{"id":"PIN","value":"1234"},{"id":"OTP","value":"654321"}]})
        );
    }

    #[test]
    fn sign_hash_body() {
        let v = serde_json::to_value(SignHashRequest {
            credential_id: "c1",
            sad: "S",
            hashes: vec!["AA==".into()],
            hash_algorithm_oid: "2.16.840.1.101.3.4.2.1",
            sign_algo: "1.2.840.10045.4.3.2",
            sign_algo_params: None,
            operation_mode: "S",
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"credentialID":"c1","SAD":"S","hashes":["AA=="],
                   "hashAlgorithmOID":"2.16.840.1.101.3.4.2.1",
                   "signAlgo":"1.2.840.10045.4.3.2","operationMode":"S"})
        );
        let v = serde_json::to_value(ExtendTransactionRequest {
            credential_id: "c1",
            hashes: vec!["AA==".into()],
            hash_algorithm_oid: Some("2.16.840.1.101.3.4.2.1"),
            sad: "S",
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"credentialID":"c1","hashes":["AA=="],
                   "hashAlgorithmOID":"2.16.840.1.101.3.4.2.1","SAD":"S"})
        );
    }
}
