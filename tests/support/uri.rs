//! RFC 7512 `pkcs11:` URIs as the tests hand them to clients: attribute values percent-encoded except
//! for unreserved characters.

/// Percent-encodes one attribute value (token or object label).
pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The URI of an object of `kind` (`private`, `cert`) labelled `object` on the token `token`.
pub fn object_uri(token: &str, object: &str, kind: &str) -> String {
    format!(
        "pkcs11:token={};object={};type={kind}",
        pct(token),
        pct(object)
    )
}
