//! CSC API v1.0.4.0 request bodies: `hash`/`hashAlgo`, `PIN` and `OTP` as top-level fields.

use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthorizeRequest<'a> {
    #[serde(rename = "credentialID")]
    pub credential_id: &'a str,
    pub num_signatures: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hash: Vec<String>,
    #[serde(rename = "PIN", skip_serializing_if = "Option::is_none")]
    pub pin: Option<&'a str>,
    #[serde(rename = "OTP", skip_serializing_if = "Option::is_none")]
    pub otp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_data: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendOtpRequest<'a> {
    #[serde(rename = "credentialID")]
    pub credential_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExtendTransactionRequest<'a> {
    #[serde(rename = "credentialID")]
    pub credential_id: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hash: Vec<String>,
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
    pub hash: Vec<String>,
    pub hash_algo: &'a str,
    pub sign_algo: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_algo_params: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn authorize_body() {
        let v = serde_json::to_value(AuthorizeRequest {
            credential_id: "c1",
            num_signatures: 2,
            hash: vec!["AAEC".into()],
            pin: Some("1234"),
            otp: Some("654321"),
            description: Some("sign it"),
            client_data: None,
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"credentialID":"c1","numSignatures":2,"hash":["AAEC"],"PIN":"1234",
                   "OTP":"654321","description":"sign it"})
        );
        let v = serde_json::to_value(AuthorizeRequest {
            credential_id: "c1",
            num_signatures: 1,
            hash: vec![],
            pin: None,
            otp: None,
            description: None,
            client_data: Some("cd"),
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"credentialID":"c1","numSignatures":1,"clientData":"cd"})
        );
    }

    #[test]
    fn sign_hash_and_extend_bodies() {
        let v = serde_json::to_value(SignHashRequest {
            credential_id: "c1",
            sad: "S",
            hash: vec!["AA==".into(), "AQ==".into()],
            hash_algo: "2.16.840.1.101.3.4.2.1",
            sign_algo: "1.2.840.113549.1.1.10",
            sign_algo_params: Some("MAA=".into()),
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"credentialID":"c1","SAD":"S","hash":["AA==","AQ=="],
                   "hashAlgo":"2.16.840.1.101.3.4.2.1","signAlgo":"1.2.840.113549.1.1.10",
                   "signAlgoParams":"MAA="})
        );
        let v = serde_json::to_value(ExtendTransactionRequest {
            credential_id: "c1",
            hash: vec![],
            sad: "S",
        })
        .unwrap();
        assert_eq!(v, json!({"credentialID":"c1","SAD":"S"}));
        let v = serde_json::to_value(SendOtpRequest {
            credential_id: "c1",
            description: None,
        })
        .unwrap();
        assert_eq!(v, json!({"credentialID":"c1"}));
    }
}
