//! `credentials/info` in both shapes: v1 (`authMode`, `PIN{}`, `OTP{}`) and v2 (`auth{mode, expression,
//! objects}`), normalised into [`CredentialInfo`].

use super::{b64, flex_opt_string, flex_opt_u64, flex_string};
use crate::endpoint::Wire;
use crate::types::{
    AuthInfo, AuthMode, CredentialInfo, FactorInfo, KeyInfo, OtpInfo, OtpType, Scal,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CredentialInfoWire {
    #[serde(default)]
    description: Option<String>,
    key: KeyWire,
    #[serde(default)]
    cert: Option<CertWire>,
    #[serde(default)]
    auth_mode: Option<String>,
    #[serde(default, rename = "PIN")]
    pin: Option<V1Factor>,
    #[serde(default, rename = "OTP")]
    otp: Option<V1Factor>,
    #[serde(default)]
    auth: Option<V2Auth>,
    #[serde(default, rename = "SCAL", deserialize_with = "flex_opt_string")]
    scal: Option<String>,
    #[serde(default, deserialize_with = "flex_opt_u64")]
    multisign: Option<u64>,
}

#[derive(Deserialize)]
struct KeyWire {
    #[serde(default, deserialize_with = "flex_string")]
    status: String,
    #[serde(default)]
    algo: Vec<String>,
    #[serde(default, deserialize_with = "flex_opt_u64")]
    len: Option<u64>,
    #[serde(default)]
    curve: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertWire {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    certificates: Vec<String>,
    #[serde(default, rename = "issuerDN")]
    issuer_dn: Option<String>,
    #[serde(default, rename = "subjectDN")]
    subject_dn: Option<String>,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_to: Option<String>,
}

/// v1 `PIN` and `OTP` objects.
#[derive(Deserialize)]
struct V1Factor {
    /// "true" | "false" | "optional" (some services send a boolean).
    #[serde(default, deserialize_with = "flex_opt_string")]
    presence: Option<String>,
    #[serde(default, rename = "type")]
    otp_type: Option<String>,
    #[serde(default, rename = "ID")]
    id: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Not in the standard; the reference service sends it.
    #[serde(default, deserialize_with = "flex_opt_u64")]
    length: Option<u64>,
}

#[derive(Deserialize)]
struct V2Auth {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    objects: Vec<V2Object>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2Object {
    #[serde(default, rename = "type")]
    object_type: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    generator: Option<String>,
    /// Non-standard, like v1's: "online" | "offline".
    #[serde(default)]
    otp_type: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default, deserialize_with = "flex_opt_u64")]
    length: Option<u64>,
}

impl CredentialInfoWire {
    /// `wire` decides which shape wins when a service sends both.
    pub(crate) fn normalise(self, id: &str, wire: Wire) -> Result<CredentialInfo, String> {
        let v2_auth = self.auth;
        let has_v1_auth = self.auth_mode.is_some() || self.pin.is_some() || self.otp.is_some();
        let auth = match (wire, v2_auth) {
            (Wire::V2, Some(a)) => v2_auth_info(a)?,
            (Wire::V1, Some(a)) if !has_v1_auth => v2_auth_info(a)?,
            _ => v1_auth_info(self.auth_mode.as_deref(), self.pin, self.otp)?,
        };
        let cert = self.cert;
        let certificates = cert
            .as_ref()
            .map(|c| {
                c.certificates
                    .iter()
                    .enumerate()
                    .map(|(i, s)| b64::decode(&format!("certificate {}", i + 1), s))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let scal = match self.scal.as_deref().map(str::trim) {
            None | Some("") | Some("1") => Scal::One,
            Some("2") => Scal::Two,
            Some(_) => return Err("SCAL is neither \"1\" nor \"2\"".into()),
        };
        let multisign = match self.multisign {
            None => 1,
            Some(n) => u32::try_from(n.max(1)).unwrap_or(u32::MAX),
        };
        let len = match self.key.len {
            Some(n) => u32::try_from(n).map_err(|_| "key len is out of range".to_owned())?,
            None => 0,
        };
        Ok(CredentialInfo {
            id: id.to_owned(),
            description: self.description,
            key: KeyInfo {
                status: if self.key.status.is_empty() {
                    "enabled".into()
                } else {
                    self.key.status
                },
                algos: self.key.algo,
                len,
                curve: self.key.curve.filter(|c| !c.is_empty()),
            },
            certificates,
            cert_status: cert.as_ref().and_then(|c| c.status.clone()),
            subject_dn: cert.as_ref().and_then(|c| c.subject_dn.clone()),
            issuer_dn: cert.as_ref().and_then(|c| c.issuer_dn.clone()),
            valid_from: cert.as_ref().and_then(|c| c.valid_from.clone()),
            valid_to: cert.and_then(|c| c.valid_to),
            auth,
            multisign,
            scal,
        })
    }
}

fn auth_mode(mode: Option<&str>) -> Result<AuthMode, String> {
    match mode.map(str::trim) {
        None | Some("") | Some("explicit") => Ok(AuthMode::Explicit),
        Some("implicit") => Ok(AuthMode::Implicit),
        Some("oauth2code") => Ok(AuthMode::OAuth2Code),
        Some(_) => Err("unknown authorization mode".into()),
    }
}

fn length(n: Option<u64>) -> Option<usize> {
    n.and_then(|n| usize::try_from(n).ok()).filter(|&n| n > 0)
}

/// Services that say nothing about the OTP's kind mostly mean an authenticator app.
fn otp_type(explicit: Option<&str>, hint: Option<&str>) -> OtpType {
    let is_online = |s: &str| {
        let s = s.to_ascii_lowercase();
        ["online", "sms", "email", "e-mail", "push", "voice"]
            .iter()
            .any(|k| s.contains(k))
    };
    match explicit.map(str::to_ascii_lowercase).as_deref() {
        Some("online") => OtpType::Online,
        Some("offline") => OtpType::Offline,
        _ if hint.is_some_and(is_online) => OtpType::Online,
        _ => OtpType::Offline,
    }
}

fn v1_auth_info(
    mode: Option<&str>,
    pin: Option<V1Factor>,
    otp: Option<V1Factor>,
) -> Result<AuthInfo, String> {
    let present = |f: &V1Factor| {
        !matches!(
            f.presence.as_deref().map(str::trim),
            Some("false") | Some("")
        )
    };
    let pin = pin.filter(present).map(|p| FactorInfo {
        id: p.id,
        format: p.format,
        label: p.label,
        description: p.description,
        length: length(p.length),
    });
    let otp = otp.filter(present).map(|o| OtpInfo {
        otp_type: otp_type(o.otp_type.as_deref(), o.provider.as_deref()),
        provider: o.provider,
        factor: FactorInfo {
            id: o.id,
            format: o.format,
            label: o.label,
            description: o.description,
            length: length(o.length),
        },
    });
    let expression = match (&pin, &otp) {
        (Some(_), Some(_)) => Some("PIN AND OTP".to_owned()),
        (Some(_), None) => Some("PIN".to_owned()),
        (None, Some(_)) => Some("OTP".to_owned()),
        (None, None) => None,
    };
    Ok(AuthInfo {
        mode: auth_mode(mode)?,
        expression,
        pin,
        otp,
    })
}

fn v2_auth_info(auth: V2Auth) -> Result<AuthInfo, String> {
    let mut pin = None;
    let mut otp = None;
    for o in auth.objects {
        let id = o.id.as_deref().unwrap_or("").to_ascii_uppercase();
        let is_otp = id.contains("OTP")
            || o.generator.is_some()
            || o.otp_type.is_some()
            || o.object_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("otp"));
        if is_otp {
            if otp.is_none() {
                otp = Some(OtpInfo {
                    otp_type: otp_type(o.otp_type.as_deref(), o.generator.as_deref()),
                    provider: o.provider.or(o.generator),
                    factor: FactorInfo {
                        id: o.id,
                        format: o.format,
                        label: o.label,
                        description: o.description,
                        length: length(o.length),
                    },
                });
            }
        } else if pin.is_none() {
            pin = Some(FactorInfo {
                id: o.id,
                format: o.format,
                label: o.label,
                description: o.description,
                length: length(o.length),
            });
        }
    }
    let expression = auth
        .expression
        .filter(|e| !e.trim().is_empty())
        .or(match (&pin, &otp) {
            (Some(_), Some(_)) => Some("PIN AND OTP".to_owned()),
            (Some(_), None) => Some("PIN".to_owned()),
            (None, Some(_)) => Some("OTP".to_owned()),
            (None, None) => None,
        });
    Ok(AuthInfo {
        mode: auth_mode(auth.mode.as_deref())?,
        expression,
        pin,
        otp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, wire: Wire) -> CredentialInfo {
        serde_json::from_str::<CredentialInfoWire>(json)
            .unwrap()
            .normalise("cred-1", wire)
            .unwrap()
    }

    const CERT_A: &str = "MIIBszCCAVmgAwIBAgI=";
    const CERT_B: &str = "MIIBkTCCATegAwIBAgI=";

    #[test]
    fn v1_shape() {
        let json = format!(
            r#"{{"description":"Alice RSA","key":{{"status":"enabled",
            "algo":["1.2.840.113549.1.1.11","1.2.840.113549.1.1.10"],"len":2048}},
            "cert":{{"status":"valid","certificates":["{CERT_A}","{CERT_B}"],
            "issuerDN":"CN=Demo CA","serialNumber":"5AAC41CD8FA22B953640",
            "subjectDN":"CN=Alice","validFrom":"20250101000000Z","validTo":"20300101000000Z"}},
            "authMode":"explicit",
            "PIN":{{"presence":"true","format":"N","label":"PIN","description":"Signing PIN"}},
            "OTP":{{"presence":"true","type":"offline","ID":"totp-1","provider":"totp",
            "format":"N","label":"OTP","description":"Authenticator code","length":6}},
            "multisign":100,"SCAL":"1","lang":"en-US"}}"#
        );
        let c = parse(&json, Wire::V1);
        assert_eq!(c.id, "cred-1");
        assert_eq!(c.description.as_deref(), Some("Alice RSA"));
        assert_eq!(c.key.status, "enabled");
        assert_eq!(c.key.len, 2048);
        assert_eq!(c.key.algos.len(), 2);
        assert_eq!(c.key.curve, None);
        assert_eq!(c.certificates.len(), 2);
        assert_eq!(c.certificates[0], b64::decode("c", CERT_A).unwrap());
        assert_eq!(c.subject_dn.as_deref(), Some("CN=Alice"));
        assert_eq!(c.issuer_dn.as_deref(), Some("CN=Demo CA"));
        assert_eq!(c.cert_status.as_deref(), Some("valid"));
        assert_eq!(c.valid_to.as_deref(), Some("20300101000000Z"));
        assert_eq!(c.auth.mode, AuthMode::Explicit);
        assert_eq!(c.auth.expression.as_deref(), Some("PIN AND OTP"));
        let pin = c.auth.pin.as_ref().unwrap();
        assert_eq!(pin.format.as_deref(), Some("N"));
        assert_eq!(pin.length, None);
        let otp = c.auth.otp.as_ref().unwrap();
        assert_eq!(otp.otp_type, OtpType::Offline);
        assert_eq!(otp.factor.id.as_deref(), Some("totp-1"));
        assert_eq!(otp.factor.length, Some(6));
        assert_eq!(otp.provider.as_deref(), Some("totp"));
        assert_eq!(c.multisign, 100);
        assert_eq!(c.scal, Scal::One);
    }

    #[test]
    fn v1_online_otp_pin_absent_and_numbers_as_strings() {
        let c = parse(
            r#"{"key":{"status":"enabled","algo":["1.2.840.10045.4.3.3"],"len":"384",
                "curve":"1.3.132.0.34"},
                "authMode":"explicit","PIN":{"presence":"false"},
                "OTP":{"presence":"true","type":"online","provider":"sms-gw","length":"8"},
                "multisign":"10","SCAL":2}"#,
            Wire::V1,
        );
        assert_eq!(c.key.len, 384);
        assert_eq!(c.key.curve.as_deref(), Some("1.3.132.0.34"));
        assert!(c.certificates.is_empty());
        assert!(c.auth.pin.is_none());
        let otp = c.auth.otp.as_ref().unwrap();
        assert_eq!(otp.otp_type, OtpType::Online);
        assert_eq!(otp.factor.length, Some(8));
        assert_eq!(c.auth.expression.as_deref(), Some("OTP"));
        assert_eq!(c.multisign, 10);
        assert_eq!(c.scal, Scal::Two);
    }

    #[test]
    fn v2_shape() {
        let json = format!(
            r#"{{"description":"Bob","signatureQualifier":"eu_eidas_qes",
            "key":{{"status":"enabled","algo":["1.2.840.10045.4.3.2"],"len":256,
            "curve":"1.2.840.10045.3.1.7"}},
            "cert":{{"status":"valid","certificates":["{CERT_A}"],"subjectDN":"CN=Bob"}},
            "auth":{{"mode":"explicit","expression":"PIN AND OTP","objects":[
              {{"type":"Password","id":"PIN","format":"N","label":"PIN","description":"PIN",
                "length":4}},
              {{"type":"Password","id":"OTP","format":"N","generator":"sms","label":"OTP",
                "description":"SMS code","length":6}}]}},
            "multisign":1,"SCAL":"2"}}"#
        );
        let c = parse(&json, Wire::V2);
        assert_eq!(c.key.curve.as_deref(), Some("1.2.840.10045.3.1.7"));
        assert_eq!(c.certificates.len(), 1);
        assert_eq!(c.auth.expression.as_deref(), Some("PIN AND OTP"));
        let pin = c.auth.pin.as_ref().unwrap();
        assert_eq!(pin.id.as_deref(), Some("PIN"));
        assert_eq!(pin.length, Some(4));
        let otp = c.auth.otp.as_ref().unwrap();
        assert_eq!(otp.otp_type, OtpType::Online);
        assert_eq!(otp.factor.length, Some(6));
        assert_eq!(c.multisign, 1);
        assert_eq!(c.scal, Scal::Two);
    }

    #[test]
    fn v2_totp_generator_is_offline_and_explicit_type_wins() {
        let c = parse(
            r#"{"key":{"status":"enabled","algo":[],"len":256},
               "auth":{"mode":"explicit","objects":[{"id":"OTP","generator":"totp"}]}}"#,
            Wire::V2,
        );
        let otp = c.auth.otp.as_ref().unwrap();
        assert_eq!(otp.otp_type, OtpType::Offline);
        assert!(c.auth.pin.is_none());
        assert_eq!(c.auth.expression.as_deref(), Some("OTP"));
        assert_eq!(c.multisign, 1);
        assert_eq!(c.scal, Scal::One);
        let c = parse(
            r#"{"key":{"len":256},
               "auth":{"objects":[{"id":"OTP","generator":"acme","otpType":"online"}]}}"#,
            Wire::V2,
        );
        assert_eq!(c.auth.otp.unwrap().otp_type, OtpType::Online);
        assert_eq!(c.key.status, "enabled");
    }

    #[test]
    fn preferred_shape_follows_the_api_version() {
        let json = r#"{"key":{"len":256},
            "authMode":"explicit","PIN":{"presence":"true"},
            "auth":{"mode":"explicit","objects":[{"id":"PIN"},{"id":"OTP","generator":"totp"}]}}"#;
        assert!(parse(json, Wire::V2).auth.otp.is_some());
        assert!(parse(json, Wire::V1).auth.otp.is_none());
        // A v1 service that only sends the v2 object is still understood.
        let json = r#"{"key":{"len":256},"auth":{"objects":[{"id":"OTP"}]}}"#;
        assert!(parse(json, Wire::V1).auth.otp.is_some());
    }

    #[test]
    fn malformed_values_are_errors_without_echo() {
        let bad = |json: &str| {
            serde_json::from_str::<CredentialInfoWire>(json)
                .unwrap()
                .normalise("x", Wire::V2)
                .unwrap_err()
        };
        let e = bad(r#"{"key":{"len":1},"cert":{"certificates":["MII%%%SECRETISH"]}}"#);
        assert_eq!(e, "certificate 1 is not valid base64");
        assert!(bad(r#"{"key":{"len":1},"SCAL":"3"}"#).contains("SCAL"));
        assert!(bad(r#"{"key":{"len":1},"auth":{"mode":"magic"}}"#).contains("mode"));
        assert!(serde_json::from_str::<CredentialInfoWire>(r#"{"cert":{}}"#).is_err());
    }
}
