//! Base64 as CSC uses it: the client sends standard base64 with padding; it accepts what services
//! actually send (padding or not, line breaks in certificates, the URL-safe alphabet).

use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn encode_all(items: &[Vec<u8>]) -> Vec<String> {
    items.iter().map(|h| encode(h)).collect()
}

/// Decodes one value; the error names only `what`, never the value.
pub(crate) fn decode(what: &str, text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = if compact.contains(['-', '_']) {
        &URL_SAFE_LENIENT
    } else {
        &STANDARD_LENIENT
    };
    match engine.decode(compact.as_bytes()) {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(format!("{what} is empty")),
        Err(_) => Err(format!("{what} is not valid base64")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lenient_forms() {
        let data: Vec<u8> = (0u8..=255).collect();
        let e = encode(&data);
        assert!(e.ends_with("=="));
        assert_eq!(decode("x", &e).unwrap(), data);
        assert_eq!(decode("x", e.trim_end_matches('=')).unwrap(), data);
        let wrapped: String = e
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        assert_eq!(decode("x", &wrapped).unwrap(), data);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&data);
        assert_eq!(decode("x", &url_safe).unwrap(), data);
    }

    #[test]
    fn errors_name_the_field_only() {
        let e = decode("signature 1", "sec!ret*value").unwrap_err();
        assert_eq!(e, "signature 1 is not valid base64");
        assert_eq!(
            decode("signature 1", "").unwrap_err(),
            "signature 1 is empty"
        );
    }
}
