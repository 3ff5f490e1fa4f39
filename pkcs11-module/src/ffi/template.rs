//! Templates in C memory: copying a caller's template (C_FindObjectsInit) and answering one
//! (C_GetAttributeValue) from the outcomes the object table decides (object::resolve_attributes).

use crate::object::{resolve_attributes, Attribute, AttributeOutcome, AttributeRequest, Object};
use cryptoki_sys::*;

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
pub(super) unsafe fn get_attribute_value(
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
pub(super) unsafe fn read_template(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::tests::{rsa_objects, EE_RSA};
    use crate::object::ulong_value;

    #[test]
    fn get_attribute_value_writes_within_bounds() {
        let objs = rsa_objects(false);
        let cert = &objs.certificate;
        let value_len = EE_RSA.len();
        // Room for the value plus a guard zone that must stay untouched.
        let mut value_buf = vec![0xaau8; value_len + 16];
        let mut small_buf = vec![0xaau8; 8];
        let mut label_buf = vec![0xaau8; 5];
        let mut template = [
            CK_ATTRIBUTE {
                type_: CKA_VALUE,
                pValue: std::ptr::null_mut(),
                ulValueLen: 0,
            },
            CK_ATTRIBUTE {
                type_: CKA_VALUE,
                pValue: value_buf.as_mut_ptr().cast(),
                ulValueLen: value_len as CK_ULONG,
            },
            CK_ATTRIBUTE {
                type_: CKA_SUBJECT,
                pValue: small_buf.as_mut_ptr().cast(),
                ulValueLen: small_buf.len() as CK_ULONG,
            },
            CK_ATTRIBUTE {
                type_: CKA_MODULUS,
                pValue: std::ptr::null_mut(),
                ulValueLen: 0,
            },
            CK_ATTRIBUTE {
                type_: CKA_LABEL,
                pValue: label_buf.as_mut_ptr().cast(),
                ulValueLen: label_buf.len() as CK_ULONG,
            },
        ];
        let rv =
            // SAFETY: every pValue points to a live buffer of at least ulValueLen bytes.
            unsafe { get_attribute_value(cert, template.as_mut_ptr(), template.len() as CK_ULONG) };
        // Both a too-small buffer and an invalid type: the invalid type is reported.
        assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);
        assert_eq!(template[0].ulValueLen, value_len as CK_ULONG);
        assert_eq!(template[1].ulValueLen, value_len as CK_ULONG);
        assert_eq!(&value_buf[..value_len], EE_RSA);
        assert!(value_buf[value_len..].iter().all(|&b| b == 0xaa));
        assert_eq!(template[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert!(
            small_buf.iter().all(|&b| b == 0xaa),
            "nothing written on too-small"
        );
        assert_eq!(template[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(template[4].ulValueLen, 5);
        assert_eq!(label_buf, b"Alice");

        // A private key's secret: sensitive, buffer untouched.
        let mut secret_buf = vec![0xaau8; 512];
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_PRIVATE_EXPONENT,
            pValue: secret_buf.as_mut_ptr().cast(),
            ulValueLen: secret_buf.len() as CK_ULONG,
        }];
        // SAFETY: as above.
        let rv = unsafe { get_attribute_value(&objs.private_key, template.as_mut_ptr(), 1) };
        assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
        assert_eq!(template[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert!(secret_buf.iter().all(|&b| b == 0xaa));

        // CK_ULONG and CK_BBOOL come out in native layout.
        let mut class: CK_ULONG = 0;
        let mut sign: CK_BBOOL = 0;
        let mut template = [
            CK_ATTRIBUTE {
                type_: CKA_CLASS,
                pValue: (&mut class as *mut CK_ULONG).cast(),
                ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
            },
            CK_ATTRIBUTE {
                type_: CKA_SIGN,
                pValue: (&mut sign as *mut CK_BBOOL).cast(),
                ulValueLen: 1,
            },
        ];
        // SAFETY: as above.
        let rv = unsafe { get_attribute_value(&objs.private_key, template.as_mut_ptr(), 2) };
        assert_eq!(rv, CKR_OK);
        assert_eq!((class, sign), (CKO_PRIVATE_KEY, CK_TRUE));

        assert_eq!(
            // SAFETY: a NULL template with a zero count is allowed; with a non-zero count it is refused unread.
            unsafe { get_attribute_value(cert, std::ptr::null_mut(), 0) },
            CKR_OK
        );
        assert_eq!(
            // SAFETY: as above.
            unsafe { get_attribute_value(cert, std::ptr::null_mut(), 1) },
            CKR_ARGUMENTS_BAD
        );
    }

    #[test]
    fn read_template_copies_and_validates() {
        assert_eq!(
            // SAFETY: NULL templates are refused or empty without being read.
            unsafe { read_template(std::ptr::null(), 0) },
            Ok(Vec::new())
        );
        assert_eq!(
            // SAFETY: as above.
            unsafe { read_template(std::ptr::null(), 1) },
            Err(CKR_ARGUMENTS_BAD)
        );
        let mut class = CKO_CERTIFICATE;
        let mut id = *b"abc";
        let template = [
            CK_ATTRIBUTE {
                type_: CKA_CLASS,
                pValue: (&mut class as *mut CK_ULONG).cast(),
                ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
            },
            CK_ATTRIBUTE {
                type_: CKA_ID,
                pValue: id.as_mut_ptr().cast(),
                ulValueLen: 3,
            },
            CK_ATTRIBUTE {
                type_: CKA_LABEL,
                pValue: std::ptr::null_mut(),
                ulValueLen: 0,
            },
        ];
        // SAFETY: three live entries whose values outlive the call.
        let copied = unsafe { read_template(template.as_ptr(), 3) }.unwrap();
        assert_eq!(
            copied,
            vec![
                Attribute::new(CKA_CLASS, ulong_value(CKO_CERTIFICATE)),
                Attribute::new(CKA_ID, &b"abc"[..]),
                Attribute::new(CKA_LABEL, Vec::new()),
            ]
        );
        let bad = [CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: std::ptr::null_mut(),
            ulValueLen: 4,
        }];
        assert_eq!(
            // SAFETY: one live entry; its NULL value is refused unread.
            unsafe { read_template(bad.as_ptr(), 1) },
            Err(CKR_ARGUMENTS_BAD)
        );
        let huge = [CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: id.as_mut_ptr().cast(),
            ulValueLen: CK_ULONG::MAX,
        }];
        assert_eq!(
            // SAFETY: one live entry; its absurd length is refused before the value is read.
            unsafe { read_template(huge.as_ptr(), 1) },
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            // SAFETY: an absurd count is refused before any entry is read.
            unsafe { read_template(template.as_ptr(), CK_ULONG::MAX) },
            Err(CKR_ARGUMENTS_BAD)
        );
    }
}
