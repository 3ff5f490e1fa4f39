//! Wire form of attribute values, C_GetAttributeValue and template copying.

use super::{AttrValue, Attribute, Object};
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

/// Largest template C_GetAttributeValue / C_FindObjectsInit accept; far beyond any real client's.
const MAX_TEMPLATE_LEN: usize = 1 << 16;

/// Largest attribute value copied from a caller's template: larger than any value an object here holds, so
/// such a template could not match anyway.
const MAX_TEMPLATE_VALUE_LEN: usize = 1 << 20;

fn template_len(count: CK_ULONG) -> Result<usize, CK_RV> {
    usize::try_from(count)
        .ok()
        .filter(|&n| n <= MAX_TEMPLATE_LEN)
        .ok_or(CKR_ARGUMENTS_BAD)
}

/// C_GetAttributeValue on one object: processes every entry per PKCS#11 3.0 §5.7 and never writes more than an
/// entry's ulValueLen bytes to its pValue. CKR_ARGUMENTS_BAD for a NULL template with a non-zero count or an
/// absurd count.
///
/// # Safety
/// `template` is NULL (then `count` must be 0) or points to `count` writable CK_ATTRIBUTE entries; every
/// non-NULL `pValue` points to `ulValueLen` writable bytes.
pub unsafe fn get_attribute_value(
    obj: &Object,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    let n = match template_len(count) {
        Ok(n) => n,
        Err(rv) => return rv,
    };
    if n == 0 {
        return CKR_OK;
    }
    if template.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    // SAFETY: non-NULL, `n` writable entries per the caller's contract.
    let entries = unsafe { std::slice::from_raw_parts_mut(template, n) };
    let requests: Vec<AttributeRequest> = entries
        .iter()
        .map(|e| AttributeRequest {
            type_: e.type_,
            buffer_len: (!e.pValue.is_null()).then_some(e.ulValueLen),
        })
        .collect();
    let (outcomes, rv) = resolve_attributes(obj, &requests);
    for (entry, outcome) in entries.iter_mut().zip(outcomes) {
        entry.ulValueLen = match outcome {
            AttributeOutcome::Copy(bytes) => {
                // resolve_attributes only answers Copy when pValue is non-NULL and ulValueLen >= len.
                // SAFETY: pValue points to ulValueLen >= bytes.len() writable bytes per the caller's contract.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        entry.pValue as *mut u8,
                        bytes.len(),
                    )
                };
                bytes.len() as CK_ULONG
            }
            AttributeOutcome::Length(len) => len,
            AttributeOutcome::Unavailable => CK_UNAVAILABLE_INFORMATION,
        };
    }
    rv
}

/// Copies a caller's template (C_FindObjectsInit). NULL `ptr` with `count == 0` is the empty template;
/// CKR_ARGUMENTS_BAD for NULL `ptr` with a non-zero count, an absurd count, or a NULL pValue with a non-zero
/// length; CKR_ATTRIBUTE_VALUE_INVALID for a value larger than any attribute could be.
///
/// # Safety
/// `ptr` is NULL or points to `count` readable CK_ATTRIBUTE entries whose non-NULL `pValue` point to
/// `ulValueLen` readable bytes.
pub unsafe fn read_template(
    ptr: *const CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<Vec<Attribute>, CK_RV> {
    let n = template_len(count)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL, `n` readable entries per the caller's contract.
    let entries = unsafe { std::slice::from_raw_parts(ptr, n) };
    entries
        .iter()
        .map(|e| {
            let len = usize::try_from(e.ulValueLen).map_err(|_| CKR_ATTRIBUTE_VALUE_INVALID)?;
            let value = if len == 0 {
                Vec::new()
            } else if e.pValue.is_null() {
                return Err(CKR_ARGUMENTS_BAD);
            } else if len > MAX_TEMPLATE_VALUE_LEN {
                return Err(CKR_ATTRIBUTE_VALUE_INVALID);
            } else {
                // SAFETY: pValue points to ulValueLen readable bytes per the caller's contract.
                unsafe { std::slice::from_raw_parts(e.pValue as *const u8, len) }.to_vec()
            };
            Ok(Attribute {
                type_: e.type_,
                value,
            })
        })
        .collect()
}
