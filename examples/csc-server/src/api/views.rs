//! The JSON a client sees for `info` and for a credential, in v1 and v2 shape.

use super::params::encode_base64;
use super::Version;
use crate::algorithms;
use crate::model::{OtpKind, OTP_LENGTH};
use crate::service::Credential;
use serde_json::{json, Map, Value};

pub const SERVICE_NAME: &str = "cloudtoken reference CSC service";
pub const LANG: &str = "en-US";

/// CSC method names each version offers (`auth/*` only while logins are accepted).
pub fn methods(v: Version, login: bool) -> Vec<&'static str> {
    let mut m = if login {
        vec!["auth/login", "auth/revoke"]
    } else {
        Vec::new()
    };
    m.extend([
        "credentials/list",
        "credentials/info",
        "credentials/authorize",
        "credentials/extendTransaction",
        "credentials/sendOTP",
        "signatures/signHash",
    ]);
    if v == Version::V2 {
        m.push("credentials/getChallenge");
        m.push("credentials/authorizeCheck");
    }
    m
}

pub fn info(v: Version, service: &crate::service::Service) -> Value {
    let accepted = service.accepted();
    let mut body = json!({
        "specs": match v { Version::V1 => "1.0.4.0", Version::V2 => "2.0.0.2" },
        "name": SERVICE_NAME,
        "region": "DE",
        "lang": LANG,
        "description": "Reference Cloud Signature Consortium service for cloudtoken demos and tests",
        "authType": accepted.auth_types(),
        "methods": methods(v, accepted.login),
    });
    if let Some(base) = service.oauth2_base() {
        body["oauth2"] = json!(base);
    }
    if v == Version::V2 {
        body["signAlgorithms"] = json!({ "algos": algorithms::service_algos() });
        body["asynchronousOperationMode"] = json!(false);
    }
    body
}

/// `certificates` of `credentials/info` and `credentials/list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatesMode {
    None,
    Single,
    Chain,
}

impl CertificatesMode {
    pub fn parse(s: Option<&str>) -> Option<CertificatesMode> {
        match s {
            None | Some("single") => Some(CertificatesMode::Single),
            Some("none") => Some(CertificatesMode::None),
            Some("chain") => Some(CertificatesMode::Chain),
            Some(_) => None,
        }
    }
}

/// Label and description of the OTP object; approval and PIN-only credentials have none.
fn otp_texts(otp: OtpKind) -> Option<(&'static str, &'static str)> {
    match otp {
        OtpKind::Totp => Some((
            "Authenticator code",
            "The 6-digit code of your authenticator app",
        )),
        OtpKind::Sms => Some(("SMS code", "The 6-digit code sent to you by SMS")),
        OtpKind::Approval | OtpKind::PinOnly | OtpKind::OAuth2 => None,
    }
}

const PIN_LABEL: &str = "PIN";
const PIN_DESCRIPTION: &str = "Your 6-digit signing PIN";
/// Approval credentials take the PIN in band; the second factor is the user's approval of each
/// request on the approval page, out of band, which CSC v2 expresses by answering 202 with a handle.
const PIN_DESCRIPTION_APPROVAL: &str =
    "Your 6-digit signing PIN; you then approve each request on \
                                        your approval page (out of band)";

/// `credentials/info` (v1 and v2), also a `credentialInfos` item in v2 (with `credential_id`).
pub fn credential(
    v: Version,
    cred: &Credential,
    certs: CertificatesMode,
    ca_der: &[u8],
    with_id: bool,
) -> Value {
    let mut key = json!({
        "status": "enabled",
        "algo": algorithms::key_algos(cred.key),
        "len": cred.key.bits(),
    });
    if let Some(curve) = algorithms::curve_oid(cred.key) {
        key["curve"] = json!(curve);
    }
    let certificates: Vec<String> = match certs {
        CertificatesMode::None => vec![],
        CertificatesMode::Single => vec![encode_base64(&cred.cert_der)],
        CertificatesMode::Chain => vec![encode_base64(&cred.cert_der), encode_base64(ca_der)],
    };
    let mut cert = json!({
        "status": "valid",
        "issuerDN": cred.cert.issuer_dn,
        "serialNumber": cred.cert.serial_hex,
        "subjectDN": cred.cert.subject_dn,
        "validFrom": cred.cert.valid_from,
        "validTo": cred.cert.valid_to,
    });
    if certs != CertificatesMode::None {
        cert["certificates"] = json!(certificates);
    }
    let otp_texts = otp_texts(cred.otp);
    let pin_description = match cred.otp {
        OtpKind::Approval => PIN_DESCRIPTION_APPROVAL,
        OtpKind::Totp | OtpKind::Sms | OtpKind::PinOnly | OtpKind::OAuth2 => PIN_DESCRIPTION,
    };
    let mut out = Map::new();
    if with_id {
        out.insert("credentialID".into(), json!(cred.id));
    }
    out.insert("description".into(), json!(cred.label));
    out.insert("key".into(), key);
    out.insert("cert".into(), cert);
    match v {
        // The user authorizes at the OAuth 2.0 page; there is no PIN or OTP to give in band.
        Version::V1 if cred.otp == OtpKind::OAuth2 => {
            out.insert("authMode".into(), json!("oauth2code"));
        }
        Version::V2 if cred.otp == OtpKind::OAuth2 => {
            out.insert("auth".into(), json!({ "mode": "oauth2code" }));
        }
        Version::V1 => {
            out.insert("authMode".into(), json!("explicit"));
            out.insert(
                "PIN".into(),
                json!({
                    "presence": "true",
                    "format": "N",
                    "label": PIN_LABEL,
                    "description": pin_description,
                }),
            );
            if let Some((otp_label, otp_description)) = otp_texts {
                out.insert(
                    "OTP".into(),
                    json!({
                        "presence": "true",
                        "type": if cred.otp == OtpKind::Sms { "online" } else { "offline" },
                        "ID": cred.otp.name(),
                        "provider": SERVICE_NAME,
                        "format": "N",
                        "label": otp_label,
                        "description": otp_description,
                        "length": OTP_LENGTH,
                    }),
                );
            }
        }
        Version::V2 => {
            let mut objects = vec![json!({
                "type": "Password",
                "id": "PIN",
                "format": "N",
                "label": PIN_LABEL,
                "description": pin_description,
            })];
            if let Some((otp_label, otp_description)) = otp_texts {
                objects.push(json!({
                    "type": "Password",
                    "id": "OTP",
                    "format": "N",
                    "generator": cred.otp.name(),
                    "label": otp_label,
                    "description": otp_description,
                    "length": OTP_LENGTH,
                }));
            }
            out.insert(
                "auth".into(),
                json!({
                    "mode": "explicit",
                    "expression": if otp_texts.is_some() { "PIN AND OTP" } else { "PIN" },
                    "objects": objects,
                }),
            );
        }
    }
    out.insert("SCAL".into(), json!(cred.scal.to_string()));
    out.insert("multisign".into(), json!(cred.multisign));
    out.insert("lang".into(), json!(LANG));
    Value::Object(out)
}
