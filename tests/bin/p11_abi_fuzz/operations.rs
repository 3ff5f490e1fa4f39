//! The calls on objects and operations: C_Login and C_Logout, the object functions, and every
//! operation function (initializations, single and multiple parts, dual functions, keys, random
//! numbers, the legacy parallel functions).

use crate::{Call, Fuzz};
use cryptoki_sys::*;
use std::ptr::null_mut;

impl Fuzz {
    /// C_Login and C_Logout, the object functions, and now and then the way to a signature.
    pub(crate) fn objects_and_login(&mut self) -> Call {
        if self.g.rng.chance(8) {
            return self.toward_a_signature();
        }
        let (f, g) = (self.p.f, &mut self.g);
        // SAFETY: as in `general_slot_and_session`.
        unsafe {
            match g.rng.below(30) {
                0..=6 => {
                    let user = g
                        .rng
                        .pick(&[CKU_USER, CKU_USER, CKU_SO, CKU_CONTEXT_SPECIFIC, 7]);
                    let (h, mut pin) = (g.session(), g.pin());
                    let rv = (f.C_Login.unwrap())(h, user, pin.ptr(), pin.len);
                    (
                        "C_Login",
                        rv,
                        format!("user {user}, PIN length {} NULL {}", pin.len, pin.null),
                    )
                }
                7..=8 => (
                    "C_Logout",
                    (f.C_Logout.unwrap())(g.session()),
                    String::new(),
                ),
                9..=10 => {
                    let (h, mut t, mut o) = (g.session(), g.template(), 0);
                    let (tp, n) = t.ptrs(&mut g.rng);
                    (
                        "C_CreateObject",
                        (f.C_CreateObject.unwrap())(h, tp, n, &mut o),
                        String::new(),
                    )
                }
                11 => {
                    let (h, obj, mut t, mut o) = (g.session(), g.object(), g.template(), 0);
                    let (tp, n) = t.ptrs(&mut g.rng);
                    (
                        "C_CopyObject",
                        (f.C_CopyObject.unwrap())(h, obj, tp, n, &mut o),
                        String::new(),
                    )
                }
                12 => {
                    let (h, obj) = (g.session(), g.object());
                    (
                        "C_DestroyObject",
                        (f.C_DestroyObject.unwrap())(h, obj),
                        String::new(),
                    )
                }
                13 => {
                    let (h, obj, mut size) = (g.session(), g.object(), 0 as CK_ULONG);
                    (
                        "C_GetObjectSize",
                        (f.C_GetObjectSize.unwrap())(h, obj, g.or_null(&mut size, 85)),
                        String::new(),
                    )
                }
                14..=19 => {
                    let (h, obj, mut t) = (g.session(), g.object(), g.template());
                    let (tp, n) = t.ptrs(&mut g.rng);
                    (
                        "C_GetAttributeValue",
                        (f.C_GetAttributeValue.unwrap())(h, obj, tp, n),
                        format!("{n} attributes"),
                    )
                }
                20 => {
                    let (h, obj, mut t) = (g.session(), g.object(), g.template());
                    let (tp, n) = t.ptrs(&mut g.rng);
                    (
                        "C_SetAttributeValue",
                        (f.C_SetAttributeValue.unwrap())(h, obj, tp, n),
                        String::new(),
                    )
                }
                21..=24 => {
                    let (h, mut t) = (g.session(), g.template());
                    let (tp, n) = t.ptrs(&mut g.rng);
                    (
                        "C_FindObjectsInit",
                        (f.C_FindObjectsInit.unwrap())(h, tp, n),
                        format!("{n} attributes"),
                    )
                }
                25..=27 => {
                    let mut found = vec![0 as CK_OBJECT_HANDLE; g.rng.below(8) as usize];
                    let max = g.rng.below(found.len() as u64 + 1) as CK_ULONG;
                    let (h, mut n) = (g.session(), 0 as CK_ULONG);
                    let fp = if g.rng.chance(90) {
                        found.as_mut_ptr()
                    } else {
                        null_mut()
                    };
                    let np = g.or_null(&mut n, 90);
                    let rv = (f.C_FindObjects.unwrap())(h, fp, max, np);
                    if rv == CKR_OK && !fp.is_null() && !np.is_null() {
                        g.objects
                            .extend_from_slice(&found[..(n as usize).min(found.len())]);
                    }
                    ("C_FindObjects", rv, format!("max {max}"))
                }
                _ => (
                    "C_FindObjectsFinal",
                    (f.C_FindObjectsFinal.unwrap())(g.session()),
                    String::new(),
                ),
            }
        }
    }

    /// The operation functions: initializations, single and multiple parts, dual functions, keys,
    /// random numbers, the legacy parallel functions.
    pub(crate) fn cryptography(&mut self) -> Call {
        let (f, g) = (self.p.f, &mut self.g);
        // SAFETY: as in `general_slot_and_session`.
        unsafe {
            match g.rng.below(40) {
                0..=7 => {
                    let (h, k, mut m) = (g.session(), g.object(), g.mechanism());
                    let mp = m.ptr();
                    let (name, rv) = match g.rng.below(8) {
                        0 => ("C_EncryptInit", (f.C_EncryptInit.unwrap())(h, mp, k)),
                        1 => ("C_DecryptInit", (f.C_DecryptInit.unwrap())(h, mp, k)),
                        2 => ("C_VerifyInit", (f.C_VerifyInit.unwrap())(h, mp, k)),
                        3 => (
                            "C_SignRecoverInit",
                            (f.C_SignRecoverInit.unwrap())(h, mp, k),
                        ),
                        4 => (
                            "C_VerifyRecoverInit",
                            (f.C_VerifyRecoverInit.unwrap())(h, mp, k),
                        ),
                        5 => ("C_DigestInit", (f.C_DigestInit.unwrap())(h, mp)),
                        _ => ("C_SignInit", (f.C_SignInit.unwrap())(h, mp, k)),
                    };
                    (
                        name,
                        rv,
                        format!("mechanism {:?}", m.m.map(|m| m.mechanism)),
                    )
                }
                8..=21 => {
                    let (h, mut d, mut out) = (g.session(), g.input(), g.output());
                    let (o, l) = out.ptrs();
                    let (name, rv) = match g.rng.below(13) {
                        0 => ("C_Encrypt", (f.C_Encrypt.unwrap())(h, d.ptr(), d.len, o, l)),
                        1 => ("C_Decrypt", (f.C_Decrypt.unwrap())(h, d.ptr(), d.len, o, l)),
                        2 => ("C_Digest", (f.C_Digest.unwrap())(h, d.ptr(), d.len, o, l)),
                        3 => (
                            "C_SignRecover",
                            (f.C_SignRecover.unwrap())(h, d.ptr(), d.len, o, l),
                        ),
                        4 => (
                            "C_VerifyRecover",
                            (f.C_VerifyRecover.unwrap())(h, d.ptr(), d.len, o, l),
                        ),
                        5 => (
                            "C_EncryptUpdate",
                            (f.C_EncryptUpdate.unwrap())(h, d.ptr(), d.len, o, l),
                        ),
                        6 => (
                            "C_DecryptUpdate",
                            (f.C_DecryptUpdate.unwrap())(h, d.ptr(), d.len, o, l),
                        ),
                        7 => (
                            "C_DigestEncryptUpdate",
                            (f.C_DigestEncryptUpdate.unwrap())(h, d.ptr(), d.len, o, l),
                        ),
                        8 => (
                            "C_DecryptDigestUpdate",
                            (f.C_DecryptDigestUpdate.unwrap())(h, d.ptr(), d.len, o, l),
                        ),
                        9 => (
                            "C_SignEncryptUpdate",
                            (f.C_SignEncryptUpdate.unwrap())(h, d.ptr(), d.len, o, l),
                        ),
                        10 => (
                            "C_DecryptVerifyUpdate",
                            (f.C_DecryptVerifyUpdate.unwrap())(h, d.ptr(), d.len, o, l),
                        ),
                        _ => ("C_Sign", (f.C_Sign.unwrap())(h, d.ptr(), d.len, o, l)),
                    };
                    (
                        name,
                        rv,
                        format!(
                            "data {} (NULL {}), out {} claimed {}",
                            d.len,
                            d.null,
                            out.buf.len(),
                            out.len
                        ),
                    )
                }
                22..=27 => {
                    let (h, mut d) = (g.session(), g.input());
                    let (name, rv) = match g.rng.below(6) {
                        0 => (
                            "C_VerifyUpdate",
                            (f.C_VerifyUpdate.unwrap())(h, d.ptr(), d.len),
                        ),
                        1 => (
                            "C_DigestUpdate",
                            (f.C_DigestUpdate.unwrap())(h, d.ptr(), d.len),
                        ),
                        2 => ("C_DigestKey", (f.C_DigestKey.unwrap())(h, g.object())),
                        3 => {
                            let mut sig = g.input();
                            (
                                "C_Verify",
                                (f.C_Verify.unwrap())(h, d.ptr(), d.len, sig.ptr(), sig.len),
                            )
                        }
                        _ => ("C_SignUpdate", (f.C_SignUpdate.unwrap())(h, d.ptr(), d.len)),
                    };
                    (name, rv, format!("data {} (NULL {})", d.len, d.null))
                }
                28..=32 => {
                    let (h, mut out) = (g.session(), g.output());
                    let (o, l) = out.ptrs();
                    let (name, rv) = match g.rng.below(6) {
                        0 => ("C_EncryptFinal", (f.C_EncryptFinal.unwrap())(h, o, l)),
                        1 => ("C_DecryptFinal", (f.C_DecryptFinal.unwrap())(h, o, l)),
                        2 => ("C_DigestFinal", (f.C_DigestFinal.unwrap())(h, o, l)),
                        3 => {
                            let mut sig = g.input();
                            (
                                "C_VerifyFinal",
                                (f.C_VerifyFinal.unwrap())(h, sig.ptr(), sig.len),
                            )
                        }
                        _ => ("C_SignFinal", (f.C_SignFinal.unwrap())(h, o, l)),
                    };
                    (
                        name,
                        rv,
                        format!("out {} claimed {}", out.buf.len(), out.len),
                    )
                }
                33..=35 => {
                    let (h, k1, k2, mut m) = (g.session(), g.object(), g.object(), g.mechanism());
                    let (mut t1, mut t2, mut wrapped, mut out) =
                        (g.template(), g.template(), g.input(), g.output());
                    let (mp, (tp1, n1), (tp2, n2)) =
                        (m.ptr(), t1.ptrs(&mut g.rng), t2.ptrs(&mut g.rng));
                    let (mut k, mut k_) = (0, 0);
                    let name_rv = match g.rng.below(5) {
                        0 => (
                            "C_GenerateKey",
                            (f.C_GenerateKey.unwrap())(h, mp, tp1, n1, &mut k),
                        ),
                        1 => (
                            "C_GenerateKeyPair",
                            (f.C_GenerateKeyPair.unwrap())(
                                h, mp, tp1, n1, tp2, n2, &mut k, &mut k_,
                            ),
                        ),
                        2 => {
                            let (o, l) = out.ptrs();
                            ("C_WrapKey", (f.C_WrapKey.unwrap())(h, mp, k1, k2, o, l))
                        }
                        3 => (
                            "C_UnwrapKey",
                            (f.C_UnwrapKey.unwrap())(
                                h,
                                mp,
                                k1,
                                wrapped.ptr(),
                                wrapped.len,
                                tp1,
                                n1,
                                &mut k,
                            ),
                        ),
                        _ => (
                            "C_DeriveKey",
                            (f.C_DeriveKey.unwrap())(h, mp, k1, tp1, n1, &mut k),
                        ),
                    };
                    (name_rv.0, name_rv.1, String::new())
                }
                36..=37 => {
                    let h = g.session();
                    if g.rng.chance(50) {
                        let mut d = g.input();
                        (
                            "C_SeedRandom",
                            (f.C_SeedRandom.unwrap())(h, d.ptr(), d.len),
                            String::new(),
                        )
                    } else {
                        let mut out = g.output();
                        let (o, _) = out.ptrs();
                        let len = out.len;
                        (
                            "C_GenerateRandom",
                            (f.C_GenerateRandom.unwrap())(h, o, len),
                            format!("{len} bytes"),
                        )
                    }
                }
                38 => (
                    "C_GetFunctionStatus",
                    (f.C_GetFunctionStatus.unwrap())(g.session()),
                    String::new(),
                ),
                _ => (
                    "C_CancelFunction",
                    (f.C_CancelFunction.unwrap())(g.session()),
                    String::new(),
                ),
            }
        }
    }
}
