//! The JSON of CryptoPro DSS's REST API, as its public documentation and public clients show it (field
//! names are PascalCase; binary values standard base64). Sources, per structure:
//! - `DSSCertificateEx` (GET /certificates): dss.cryptopro.ru/docs3284/articles/rest/signserver/structs/certstruct.html;
//! - the signature request (`Content`, `Name`, `Signature {Type, Parameters, CertificateId, PinCode}`,
//!   `Type` GOST3410 = 1, `Parameters.Hash` for the raw signature of a hash): the REST samples page
//!   dss.cryptopro.ru/docs/articles/rest/signserver/samples.html and the type definitions DocsVision
//!   publishes (@docsvision/webclient BackOffice/DssSignRequestModels.d.ts);
//! - transactions (`OperationCode`, `Document`/`Documents`, `Parameters [{Name, Value}]`), the confirmation
//!   answer (`IsFinal`, `IsError`, `ErrorDescription`, `AccessToken`, `ExpiresIn`, `Challenge.ContextData.RefID`,
//!   `Challenge.TextChallenge[].ExpiresIn`) and its poll (`ChallengeResponse.TextChallengeResponse[].RefId`),
//!   the package result (`Results`): the confirmation guide docs3284/articles/rest/signserver/confirmop.html
//!   and the open-source DSS clients of CryptoARM (trusted-ru) and a bank's Python client, which use them.
//!
//! Tolerant where services differ in what they omit: optional fields are optional here too.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// `DSSCertificateEx`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CertificateWire {
    #[serde(rename = "ID")]
    pub id: serde_json::Value,
    #[serde(default)]
    pub d_name: Option<String>,
    pub certificate_base64: String,
    #[serde(default)]
    pub status: Option<StatusWire>,
    #[serde(default)]
    pub is_default: Option<bool>,
    #[serde(default)]
    pub has_pin: Option<bool>,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub hash_algorithms: Option<Vec<String>>,
}

/// `CertificateStatus`: an object with its `Value` ("ACTIVE", ...), or the bare value.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum StatusWire {
    Object {
        #[serde(rename = "Value")]
        value: String,
    },
    Text(String),
}

impl StatusWire {
    pub(crate) fn value(&self) -> &str {
        match self {
            StatusWire::Object { value } | StatusWire::Text(value) => value,
        }
    }
}

/// The `Signature` part of a signature request.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SignatureWire<'a> {
    #[serde(rename = "Type")]
    pub kind: &'a str,
    pub parameters: ParametersWire,
    pub certificate_id: u64,
    pub pin_code: &'a str,
}

/// The raw signature's parameters: "Hash": "True" says the content is the hash to sign.
#[derive(Serialize)]
pub(crate) struct ParametersWire {
    #[serde(rename = "Hash")]
    pub hash: &'static str,
}

/// POST /documents without a confirmed operation: one document, signed at once.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DocumentWire<'a> {
    pub content: String,
    pub name: &'a str,
    pub signature: SignatureWire<'a>,
}

/// POST /documents and /documents/packagesignature with the token of a confirmed operation: the
/// documents and parameters are the operation's; only the key's PIN may travel here.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConfirmedWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<PinOnlyWire<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PinOnlyWire<'a> {
    pub pin_code: &'a str,
}

/// The answer of /documents/packagesignature.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PackageResultWire {
    pub results: Vec<String>,
}

/// POST /transactions.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TransactionWire<'a> {
    pub operation_code: u32,
    pub document: String,
    pub documents: Vec<NamedContentWire<'a>>,
    pub parameters: Vec<NameValueWire<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NamedContentWire<'a> {
    pub name: &'a str,
    pub content: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NameValueWire<'a> {
    pub name: &'a str,
    pub value: String,
}

/// POST {sts}/confirmation: confirm a transaction, ...
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConfirmWire<'a> {
    pub resource: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_token_id: Option<&'a str>,
}

/// ... or ask how a challenge stands.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ChallengeAnswerWire<'a> {
    pub resource: &'a str,
    pub challenge_response: TextChallengeResponsesWire<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TextChallengeResponsesWire<'a> {
    pub text_challenge_response: [RefIdWire<'a>; 1],
}

#[derive(Serialize)]
pub(crate) struct RefIdWire<'a> {
    #[serde(rename = "RefId")]
    pub ref_id: &'a str,
}

/// The confirmation service's answer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConfirmationWire {
    #[serde(default)]
    pub is_final: bool,
    #[serde(default)]
    pub is_error: bool,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub challenge: Option<ChallengeWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ChallengeWire {
    #[serde(default)]
    pub context_data: Option<ContextDataWire>,
    #[serde(default)]
    pub text_challenge: Vec<TextChallengeWire>,
}

#[derive(Deserialize)]
pub(crate) struct ContextDataWire {
    #[serde(rename = "RefID", alias = "RefId")]
    pub ref_id: Option<Secret>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TextChallengeWire {
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default, alias = "RefID")]
    pub ref_id: Option<Secret>,
}
