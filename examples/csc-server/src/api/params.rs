//! Reading a CSC request body: a JSON object whose fields are checked one by one, so that a client
//! learns exactly which parameter is missing or wrong (the CSC specification's error wording).

use crate::error::{CscError, CscResult};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// Hash values one request may carry.
pub const MAX_HASHES: usize = 1000;

pub struct Params(Map<String, Value>);

/// A secret the client sent (PIN, OTP), wiped on drop.
pub type SecretValue = Zeroizing<String>;

impl Params {
    /// An empty body counts as `{}` (e.g. `info` without `lang`).
    pub fn parse(body: &[u8]) -> CscResult<Params> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Params(map)),
            Ok(_) => Err(CscError::invalid_request(
                "The request body must be a JSON object",
            )),
            Err(_) => Err(CscError::invalid_request(
                "The request body is not valid JSON",
            )),
        }
    }

    fn present(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> CscResult<&str> {
        self.opt_string(name)?
            .ok_or_else(|| CscError::missing("string", name))
    }

    pub fn opt_string(&self, name: &str) -> CscResult<Option<&str>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(CscError::missing("string", name)),
        }
    }

    /// Removes a secret string (PIN, OTP, SAD, token) from the body so that it is wiped after use.
    pub fn take_secret(&mut self, name: &str) -> CscResult<Option<Zeroizing<String>>> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Zeroizing::new(s))),
            Some(other) => {
                drop(other);
                Err(CscError::missing("string", name))
            }
        }
    }

    pub fn opt_bool(&self, name: &str) -> CscResult<Option<bool>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(CscError::missing("boolean", name)),
        }
    }

    /// A JSON integer. Negative numbers come back as such, for the caller's range check.
    pub fn opt_integer(&self, name: &str) -> CscResult<Option<i64>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Ok(Some(i)),
                (None, Some(_)) => Ok(Some(i64::MAX)),
                _ => Err(CscError::missing("integer", name)),
            },
            Some(_) => Err(CscError::missing("integer", name)),
        }
    }

    pub fn integer(&self, name: &str) -> CscResult<i64> {
        self.opt_integer(name)?
            .ok_or_else(|| CscError::missing("integer", name))
    }

    /// An array of base64 values (hashes). Errors name the parameter as `error_name`.
    pub fn opt_base64_array(&self, name: &str) -> CscResult<Option<Vec<Vec<u8>>>> {
        let items = match self.present(name) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(CscError::missing("array", name)),
        };
        if items.is_empty() || items.len() > MAX_HASHES {
            return Err(CscError::invalid_param("hashes"));
        }
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(decode_base64)
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| CscError::invalid_param("hashes"))
            })
            .collect::<CscResult<Vec<_>>>()
            .map(Some)
    }

    pub fn opt_base64(&self, name: &str) -> CscResult<Option<Vec<u8>>> {
        match self.opt_string(name)? {
            None => Ok(None),
            Some(s) => decode_base64(s)
                .map(Some)
                .ok_or_else(|| CscError::invalid_param(name)),
        }
    }

    /// v2 `authData`: `[{"id": "PIN", "value": "..."}, {"id": "OTP", "value": "..."}]`. Returns the
    /// PIN and OTP values.
    pub fn take_auth_data(&mut self) -> CscResult<(Option<SecretValue>, Option<SecretValue>)> {
        let items = match self.0.remove("authData") {
            None | Some(Value::Null) => return Ok((None, None)),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(CscError::missing("array", "authData")),
        };
        let (mut pin, mut otp) = (None, None);
        for item in items {
            let Value::Object(mut obj) = item else {
                return Err(CscError::invalid_param("authData"));
            };
            let id = match obj.remove("id") {
                Some(Value::String(id)) => id,
                _ => return Err(CscError::invalid_param("authData")),
            };
            let value = match obj.remove("value") {
                Some(Value::String(v)) => Zeroizing::new(v),
                _ => return Err(CscError::invalid_param("authData")),
            };
            let slot = match id.as_str() {
                "PIN" => &mut pin,
                "OTP" => &mut otp,
                _ => return Err(CscError::invalid_param("authData")),
            };
            if slot.replace(value).is_some() {
                return Err(CscError::invalid_param("authData"));
            }
        }
        Ok((pin, otp))
    }
}

/// Standard or URL-safe alphabet, padded or not.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(s)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(s))
        .ok()
}

pub fn encode_base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants() {
        let bytes = vec![0xfb, 0xff, 0xfe, 0x00];
        for s in ["+//+AA==", "+//+AA", "-__-AA==", "-__-AA"] {
            assert_eq!(decode_base64(s).as_deref(), Some(bytes.as_slice()), "{s}");
        }
        assert_eq!(decode_base64("not base64!"), None);
        assert_eq!(encode_base64(&bytes), "+//+AA==");
    }

    #[test]
    fn precise_errors() {
        let mut p = Params::parse(br#"{"credentialID": 5, "numSignatures": "1", "PIN": 1234,
            "hash": ["AAAA", "%%"], "authData": [{"id": "PIN", "value": "1"}, {"id": "PIN", "value": "2"}]}"#)
        .unwrap();
        assert_eq!(
            p.string("credentialID").unwrap_err().description,
            "Missing (or invalid type) string parameter credentialID"
        );
        assert_eq!(
            p.integer("numSignatures").unwrap_err().description,
            "Missing (or invalid type) integer parameter numSignatures"
        );
        assert!(p.take_secret("PIN").is_err());
        assert_eq!(
            p.opt_base64_array("hash").unwrap_err().description,
            "Invalid parameter hashes"
        );
        assert_eq!(
            p.take_auth_data().unwrap_err().description,
            "Invalid parameter authData"
        );
        assert!(Params::parse(b"[1]").is_err());
        assert!(Params::parse(b"{").is_err());
        assert!(Params::parse(b"")
            .unwrap()
            .opt_string("lang")
            .unwrap()
            .is_none());
    }

    #[test]
    fn auth_data() {
        let mut p = Params::parse(br#"{"authData": [{"id": "OTP", "value": "654321"}, {"id": "PIN", "value": "123456"}]}"#)
            .unwrap();
        let (pin, otp) = p.take_auth_data().unwrap();
        assert_eq!(pin.as_deref().map(|s| s.as_str()), Some("123456"));
        assert_eq!(otp.as_deref().map(|s| s.as_str()), Some("654321"));
    }
}
