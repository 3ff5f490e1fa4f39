//! The arguments of the random calls: a small deterministic generator, pools of the handles seen
//! (valid, stale, made up), and buffers whose claimed lengths never exceed their size (a huge length
//! comes only with a NULL pointer), so that every call is memory-safe for a correct module.

use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;
use support::prelude::ulong;

/// splitmix64: a small deterministic generator (test input, not cryptography).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub const MECHS: &[CK_MECHANISM_TYPE] = &[
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_SHA_1,
    CKM_SHA256,
    CKM_SHA512,
    CKM_AES_CBC,
    CKM_RSA_PKCS_OAEP,
    CKM_EC_KEY_PAIR_GEN,
    CKM_VENDOR_DEFINED,
];

const ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_LABEL,
    CKA_ID,
    CKA_VALUE,
    CKA_KEY_TYPE,
    CKA_SIGN,
    CKA_PRIVATE,
    CKA_TOKEN,
    CKA_MODULUS,
    CKA_EC_POINT,
    CKA_EC_PARAMS,
    CKA_ALLOWED_MECHANISMS,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_CERTIFICATE_TYPE,
    CKA_SUBJECT,
    CKA_SENSITIVE,
    0x7fff_0000,
];

/// Input bytes and the (pointer, length) an argument gives for them.
pub struct In {
    buf: Vec<u8>,
    pub null: bool,
    pub len: CK_ULONG,
}

impl In {
    pub fn ptr(&mut self) -> *mut u8 {
        if self.null {
            null_mut()
        } else {
            self.buf.as_mut_ptr()
        }
    }
}

/// An output buffer and its length variable.
pub struct Out {
    pub buf: Vec<u8>,
    null_buf: bool,
    pub len: CK_ULONG,
    null_len: bool,
}

impl Out {
    /// (pBuffer, pulLength): NULL buffer (a length query) or a buffer whose claimed length is at most
    /// its size; the length pointer itself may be NULL.
    pub fn ptrs(&mut self) -> (*mut u8, *mut CK_ULONG) {
        (
            if self.null_buf {
                null_mut()
            } else {
                self.buf.as_mut_ptr()
            },
            if self.null_len {
                null_mut()
            } else {
                &mut self.len
            },
        )
    }
}

/// An attribute template and the buffers its values point into (alive as long as it).
pub struct Template {
    pub attrs: Vec<CK_ATTRIBUTE>,
    _values: Vec<Vec<u8>>,
}

impl Template {
    /// (pTemplate, ulCount): sometimes NULL with a count, which the module must refuse.
    pub fn ptrs(&mut self, rng: &mut Rng) -> (*mut CK_ATTRIBUTE, CK_ULONG) {
        if self.attrs.is_empty() && rng.chance(50) {
            (null_mut(), rng.pick(&[0, 1, 3]))
        } else {
            (self.attrs.as_mut_ptr(), self.attrs.len() as CK_ULONG)
        }
    }
}

/// A mechanism and the parameter bytes it points into (alive as long as it).
pub struct Mechanism {
    pub m: Option<CK_MECHANISM>,
    _param: Vec<u8>,
}

impl Mechanism {
    pub fn ptr(&mut self) -> *mut CK_MECHANISM {
        self.m.as_mut().map_or(null_mut(), |m| m as *mut _)
    }
}

/// The generator and the handles seen so far.
pub struct Gen {
    pub rng: Rng,
    pub pin: String,
    pub sessions: Vec<CK_SESSION_HANDLE>,
    pub closed: Vec<CK_SESSION_HANDLE>,
    pub objects: Vec<CK_OBJECT_HANDLE>,
    pub slots: Vec<CK_SLOT_ID>,
}

impl Gen {
    /// `p` most of the time (`percent`), else NULL: an out-parameter the module may be given NULL for.
    pub fn or_null<T>(&mut self, p: &mut T, percent: u64) -> *mut T {
        if self.rng.chance(percent) {
            p
        } else {
            null_mut()
        }
    }

    pub fn session(&mut self) -> CK_SESSION_HANDLE {
        match self.rng.below(10) {
            0..=5 if !self.sessions.is_empty() => self.rng.pick(&self.sessions),
            6 if !self.closed.is_empty() => self.rng.pick(&self.closed),
            7 => 0,
            8 => self.rng.below(64) as CK_SESSION_HANDLE,
            _ => self.rng.next() as CK_SESSION_HANDLE,
        }
    }

    pub fn object(&mut self) -> CK_OBJECT_HANDLE {
        match self.rng.below(10) {
            0..=5 if !self.objects.is_empty() => self.rng.pick(&self.objects),
            7 => 0,
            8 => self.rng.below(64) as CK_OBJECT_HANDLE,
            _ => self.rng.next() as CK_OBJECT_HANDLE,
        }
    }

    pub fn slot(&mut self) -> CK_SLOT_ID {
        match self.rng.below(10) {
            0..=6 if !self.slots.is_empty() => self.rng.pick(&self.slots),
            7 => self.rng.below(8) as CK_SLOT_ID,
            _ => self.rng.next() as CK_SLOT_ID,
        }
    }

    /// Input data: NULL with any length (possibly huge), or a buffer with its length or less.
    pub fn input(&mut self) -> In {
        let size = self.rng.pick(&[0usize, 1, 20, 32, 35, 48, 64, 256, 4096]);
        let buf = self.rng.bytes(size);
        if self.rng.chance(15) {
            let len = self
                .rng
                .pick(&[0, 1, 32, u32::MAX as CK_ULONG, CK_ULONG::MAX]);
            return In {
                buf,
                null: true,
                len,
            };
        }
        let len = if self.rng.chance(80) {
            size
        } else {
            self.rng.below(size as u64 + 1) as usize
        };
        In {
            buf,
            null: false,
            len: len as CK_ULONG,
        }
    }

    pub fn output(&mut self) -> Out {
        let size = self.rng.pick(&[0usize, 1, 16, 64, 512, 4096]);
        Out {
            buf: vec![0u8; size],
            null_buf: self.rng.chance(30),
            len: self.rng.below(size as u64 + 1) as CK_ULONG,
            null_len: self.rng.chance(10),
        }
    }

    /// A mechanism: sometimes none (NULL), sometimes with a NULL parameter of non-zero length (which
    /// the module must refuse, not read), PSS parameters valid or not, random parameter bytes.
    pub fn mechanism(&mut self) -> Mechanism {
        if self.rng.chance(5) {
            return Mechanism {
                m: None,
                _param: Vec::new(),
            };
        }
        let ty = if self.rng.chance(90) {
            self.rng.pick(MECHS)
        } else {
            self.rng.next() as CK_ULONG
        };
        let param = match self.rng.below(6) {
            0 => {
                let p = CK_RSA_PKCS_PSS_PARAMS {
                    hashAlg: self.rng.pick(&[CKM_SHA256, CKM_SHA_1, 0x1234]),
                    mgf: self.rng.pick(&[CKG_MGF1_SHA256, CKG_MGF1_SHA1, 0]),
                    sLen: self.rng.pick(&[0, 20, 32, 1 << 40]),
                };
                // SAFETY: a plain-old-data struct viewed as its bytes.
                unsafe {
                    std::slice::from_raw_parts(
                        &p as *const CK_RSA_PKCS_PSS_PARAMS as *const u8,
                        std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>(),
                    )
                }
                .to_vec()
            }
            1 => {
                let n = self.rng.below(40) as usize;
                self.rng.bytes(n)
            }
            _ => Vec::new(),
        };
        let mut m = CK_MECHANISM {
            mechanism: ty,
            pParameter: if param.is_empty() {
                null_mut()
            } else {
                param.as_ptr() as *mut c_void
            },
            ulParameterLen: param.len() as CK_ULONG,
        };
        if param.is_empty() && self.rng.chance(10) {
            m.ulParameterLen = self.rng.pick(&[1, 24, CK_ULONG::MAX]);
        }
        Mechanism {
            m: Some(m),
            _param: param,
        }
    }

    /// Up to four attributes: known and unknown types, values of several sizes, NULL values with any
    /// length (a size query, which the module must answer without writing).
    pub fn template(&mut self) -> Template {
        let n = self.rng.below(5) as usize;
        let mut values = Vec::new();
        let mut attrs = Vec::new();
        for _ in 0..n {
            let ty = if self.rng.chance(90) {
                self.rng.pick(ATTRS)
            } else {
                self.rng.next() as CK_ULONG
            };
            let size = self.rng.pick(&[0usize, 1, 8, 32, 300]);
            let mut v = if ty == CKA_CLASS && size == 8 && self.rng.chance(50) {
                ulong(self.rng.below(4) as CK_ULONG)
            } else {
                self.rng.bytes(size)
            };
            let null = self.rng.chance(25);
            attrs.push(CK_ATTRIBUTE {
                type_: ty,
                pValue: if null {
                    null_mut()
                } else {
                    v.as_mut_ptr() as *mut c_void
                },
                ulValueLen: if null {
                    self.rng.pick(&[0, 8, CK_ULONG::MAX])
                } else {
                    v.len() as CK_ULONG
                },
            });
            values.push(v);
        }
        Template {
            attrs,
            _values: values,
        }
    }

    /// A PIN: NULL with a length, the right one, or digits of many lengths.
    pub fn pin(&mut self) -> In {
        match self.rng.below(6) {
            0 => In {
                buf: Vec::new(),
                null: true,
                len: self.rng.pick(&[0, 6, CK_ULONG::MAX]),
            },
            1 | 2 => {
                let buf = self.pin.clone().into_bytes();
                In {
                    len: buf.len() as CK_ULONG,
                    buf,
                    null: false,
                }
            }
            _ => {
                let n = self.rng.pick(&[0usize, 1, 6, 12, 300]);
                let buf: Vec<u8> = (0..n).map(|_| b'0' + self.rng.below(10) as u8).collect();
                In {
                    len: buf.len() as CK_ULONG,
                    buf,
                    null: false,
                }
            }
        }
    }
}
