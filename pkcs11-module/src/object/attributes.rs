//! Wire form of attribute values, template matching, and the safe core of C_GetAttributeValue (which
//! outcome each template entry gets; ffi/template.rs applies them to C memory).

use super::{AttrValue, Object};
use cryptoki_sys::*;

/// CK_ULONG in native layout.
pub fn ulong_value(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// An array of CK_ULONG (CKA_ALLOWED_MECHANISMS).
pub fn ulongs_value(v: &[CK_ULONG]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

/// CK_BBOOL.
pub fn bool_value(v: bool) -> Vec<u8> {
    vec![if v { CK_TRUE } else { CK_FALSE }]
}

/// CK_DATE ("YYYYMMDD" as ASCII digits). `None` for a date outside years 0..=9999 or an impossible month or day.
pub fn date_value(year: u32, month: u32, day: u32) -> Option<Vec<u8>> {
    if year > 9999 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!("{year:04}{month:02}{day:02}").into_bytes())
}

/// Reads a CK_ULONG attribute value (exactly `size_of::<CK_ULONG>()` bytes).
#[cfg(test)]
pub fn parse_ulong(value: &[u8]) -> Option<CK_ULONG> {
    value.try_into().ok().map(CK_ULONG::from_ne_bytes)
}

/// The attributes whose values are CK_BBOOL: template matching compares them by truth value, so a caller's
/// 0xFF means true as it does in C.
fn is_bool_attribute(type_: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        type_,
        CKA_TOKEN
            | CKA_PRIVATE
            | CKA_MODIFIABLE
            | CKA_COPYABLE
            | CKA_DESTROYABLE
            | CKA_TRUSTED
            | CKA_SENSITIVE
            | CKA_ENCRYPT
            | CKA_DECRYPT
            | CKA_WRAP
            | CKA_UNWRAP
            | CKA_SIGN
            | CKA_SIGN_RECOVER
            | CKA_VERIFY
            | CKA_VERIFY_RECOVER
            | CKA_DERIVE
            | CKA_EXTRACTABLE
            | CKA_LOCAL
            | CKA_NEVER_EXTRACTABLE
            | CKA_ALWAYS_SENSITIVE
            | CKA_WRAP_WITH_TRUSTED
            | CKA_ALWAYS_AUTHENTICATE
    )
}

/// Whether a caller's template value equals an object's value for `type_`.
pub(super) fn value_matches(type_: CK_ATTRIBUTE_TYPE, held: &[u8], wanted: &[u8]) -> bool {
    if is_bool_attribute(type_) && held.len() == 1 && wanted.len() == 1 {
        return (held[0] != 0) == (wanted[0] != 0);
    }
    held == wanted
}

/// One entry of a C_GetAttributeValue template, as seen by the safe core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeRequest {
    pub type_: CK_ATTRIBUTE_TYPE,
    /// `None` when pValue is NULL (length query), else the caller's ulValueLen.
    pub buffer_len: Option<CK_ULONG>,
}

/// What to do with one template entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeOutcome<'a> {
    /// Copy these bytes into pValue and set ulValueLen to their length.
    Copy(&'a [u8]),
    /// Set ulValueLen only (pValue was NULL).
    Length(CK_ULONG),
    /// Set ulValueLen to CK_UNAVAILABLE_INFORMATION.
    Unavailable,
}

/// The safe core of C_GetAttributeValue: one outcome per request, plus the function's return value.
///
/// PKCS#11 3.0 §5.7 lets the function return any of the errors that apply when several do; this returns
/// them in the order the specification lists them (CKR_ATTRIBUTE_SENSITIVE, then CKR_ATTRIBUTE_TYPE_INVALID,
/// then CKR_BUFFER_TOO_SMALL), so the answer does not depend on the order of the template.
pub fn resolve_attributes<'a>(
    obj: &'a Object,
    requests: &[AttributeRequest],
) -> (Vec<AttributeOutcome<'a>>, CK_RV) {
    let (mut sensitive, mut invalid, mut too_small) = (false, false, false);
    let outcomes = requests
        .iter()
        .map(|req| match obj.attribute(req.type_) {
            Some(AttrValue::Sensitive) => {
                sensitive = true;
                AttributeOutcome::Unavailable
            }
            None => {
                invalid = true;
                AttributeOutcome::Unavailable
            }
            Some(AttrValue::Value(v)) => {
                // A usize always fits CK_ULONG on the platforms cryptoki-sys supports; an attribute that did
                // not would be reported as unavailable rather than truncated.
                let Ok(len) = CK_ULONG::try_from(v.len()) else {
                    too_small = true;
                    return AttributeOutcome::Unavailable;
                };
                match req.buffer_len {
                    None => AttributeOutcome::Length(len),
                    Some(room) if room >= len => AttributeOutcome::Copy(v),
                    Some(_) => {
                        too_small = true;
                        AttributeOutcome::Unavailable
                    }
                }
            }
        })
        .collect();
    let rv = if sensitive {
        CKR_ATTRIBUTE_SENSITIVE
    } else if invalid {
        CKR_ATTRIBUTE_TYPE_INVALID
    } else if too_small {
        CKR_BUFFER_TOO_SMALL
    } else {
        CKR_OK
    };
    (outcomes, rv)
}
