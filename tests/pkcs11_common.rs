//! Shared by the tests/pkcs11_*.rs module tests (included with `#[path]`, not a test target): the built
//! module loaded with cryptoki-sys (dlopen, then C_GetFunctionList, as applications do), thin wrappers
//! that keep every CK_RV visible, and the test data helpers.
#![allow(dead_code)]

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use support::{module_path, DemoCredential, Service};

/// The module's function list. The library is loaded once per test process and never unloaded.
#[derive(Clone, Copy)]
pub struct P11 {
    pub f: &'static CK_FUNCTION_LIST,
    pub lib: &'static cryptoki_sys::Pkcs11,
}

pub fn p11() -> P11 {
    static LIB: OnceCell<(&'static cryptoki_sys::Pkcs11, usize)> = OnceCell::new();
    let (lib, list) = *LIB.get_or_init(|| {
        // SAFETY: loading the module under test; its initialisers are Rust statics only.
        let lib: &'static cryptoki_sys::Pkcs11 = Box::leak(Box::new(
            unsafe { cryptoki_sys::Pkcs11::new(module_path()) }.expect("dlopen the module"),
        ));
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: valid out pointer.
        let rv = unsafe { lib.C_GetFunctionList(&mut list) };
        assert_eq!(rv, CKR_OK, "C_GetFunctionList");
        assert!(!list.is_null());
        (lib, list as usize)
    });
    // SAFETY: the function list is a static of the loaded (never unloaded) module.
    P11 {
        f: unsafe { &*(list as *const CK_FUNCTION_LIST) },
        lib,
    }
}

/// Readable names for assertion messages.
pub fn rv_name(rv: CK_RV) -> String {
    let names: &[(CK_RV, &str)] = &[
        (CKR_OK, "CKR_OK"),
        (CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"),
        (CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"),
        (CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"),
        (CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"),
        (CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED"),
        (CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"),
        (CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"),
        (CKR_PIN_LOCKED, "CKR_PIN_LOCKED"),
        (CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"),
        (CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"),
        (CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"),
        (CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"),
        (CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"),
        (
            CKR_OPERATION_NOT_INITIALIZED,
            "CKR_OPERATION_NOT_INITIALIZED",
        ),
        (CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"),
        (CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"),
        (CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"),
        (CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"),
        (CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"),
        (CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"),
        (CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"),
        (CKR_DATA_INVALID, "CKR_DATA_INVALID"),
        (CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"),
        (CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"),
        (CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"),
        (CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"),
        (
            CKR_CRYPTOKI_ALREADY_INITIALIZED,
            "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        ),
        (CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"),
        (CKR_FUNCTION_NOT_PARALLEL, "CKR_FUNCTION_NOT_PARALLEL"),
        (
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            "CKR_KEY_FUNCTION_NOT_PERMITTED",
        ),
        (CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"),
        (CKR_CANT_LOCK, "CKR_CANT_LOCK"),
        (CKR_NEED_TO_CREATE_THREADS, "CKR_NEED_TO_CREATE_THREADS"),
        (
            CKR_RANDOM_SEED_NOT_SUPPORTED,
            "CKR_RANDOM_SEED_NOT_SUPPORTED",
        ),
        (
            CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        ),
        (CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED"),
    ];
    names
        .iter()
        .find(|(v, _)| *v == rv)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("CKR 0x{rv:x}"))
}

#[track_caller]
pub fn assert_rv(got: CK_RV, want: CK_RV, what: &str) {
    assert!(
        got == want,
        "{what}: got {}, want {}",
        rv_name(got),
        rv_name(want)
    );
}

pub fn ok<T>(r: Result<T, CK_RV>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(rv) => panic!("{what}: {}", rv_name(rv)),
    }
}

/// A mechanism with its parameter bytes.
#[derive(Clone, Debug)]
pub struct Mech {
    pub ty: CK_MECHANISM_TYPE,
    pub param: Vec<u8>,
}

impl Mech {
    pub fn new(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech {
            ty,
            param: Vec::new(),
        }
    }

    pub fn pss(
        ty: CK_MECHANISM_TYPE,
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt: usize,
    ) -> Mech {
        let p = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: hash,
            mgf,
            sLen: salt as CK_ULONG,
        };
        // SAFETY: a plain-old-data struct viewed as its bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                &p as *const CK_RSA_PKCS_PSS_PARAMS as *const u8,
                std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>(),
            )
        };
        Mech {
            ty,
            param: bytes.to_vec(),
        }
    }

    /// The CK_MECHANISM; `self` must outlive its use.
    pub fn raw(&self) -> CK_MECHANISM {
        CK_MECHANISM {
            mechanism: self.ty,
            pParameter: if self.param.is_empty() {
                ptr::null_mut()
            } else {
                self.param.as_ptr() as *mut c_void
            },
            ulParameterLen: self.param.len() as CK_ULONG,
        }
    }
}

impl P11 {
    pub fn initialize(&self, args: Option<&mut CK_C_INITIALIZE_ARGS>) -> CK_RV {
        let p = args.map_or(ptr::null_mut(), |a| {
            a as *mut CK_C_INITIALIZE_ARGS as *mut c_void
        });
        // SAFETY: NULL or a valid args struct.
        unsafe { (self.f.C_Initialize.unwrap())(p) }
    }

    /// C_Initialize with `cloudtoken_conf=PATH` in pReserved and OS locking.
    pub fn initialize_with_config(&self, path: &std::path::Path) -> CK_RV {
        let s = std::ffi::CString::new(format!("cloudtoken_conf={}", path.display())).unwrap();
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: CKF_OS_LOCKING_OK,
            pReserved: s.as_ptr() as *mut c_void,
        };
        self.initialize(Some(&mut args))
    }

    pub fn finalize(&self) -> CK_RV {
        // SAFETY: NULL reserved pointer.
        unsafe { (self.f.C_Finalize.unwrap())(ptr::null_mut()) }
    }

    pub fn slots(&self) -> Result<Vec<CK_SLOT_ID>, CK_RV> {
        let mut n: CK_ULONG = 0;
        // SAFETY: size query with a valid count pointer.
        let rv = unsafe { (self.f.C_GetSlotList.unwrap())(CK_TRUE, ptr::null_mut(), &mut n) };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut v = vec![0; n as usize];
        // SAFETY: buffer of n entries.
        let rv = unsafe { (self.f.C_GetSlotList.unwrap())(CK_TRUE, v.as_mut_ptr(), &mut n) };
        if rv != CKR_OK {
            return Err(rv);
        }
        v.truncate(n as usize);
        Ok(v)
    }

    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO, CK_RV> {
        let mut info = CK_TOKEN_INFO::default();
        // SAFETY: valid out pointer.
        match unsafe { (self.f.C_GetTokenInfo.unwrap())(slot, &mut info) } {
            CKR_OK => Ok(info),
            rv => Err(rv),
        }
    }

    pub fn slot_of(&self, label: &str) -> CK_SLOT_ID {
        for s in ok(self.slots(), "C_GetSlotList") {
            let info = ok(self.token_info(s), "C_GetTokenInfo");
            if String::from_utf8_lossy(&info.label).trim_end() == label {
                return s;
            }
        }
        panic!("no token labelled {label:?}");
    }

    pub fn open(&self, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
        let mut h = 0;
        // SAFETY: valid out pointer.
        let rv = unsafe {
            (self.f.C_OpenSession.unwrap())(slot, CKF_SERIAL_SESSION, ptr::null_mut(), None, &mut h)
        };
        assert_rv(rv, CKR_OK, "C_OpenSession");
        h
    }

    pub fn close(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        // SAFETY: plain call.
        unsafe { (self.f.C_CloseSession.unwrap())(h) }
    }

    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> CK_RV {
        // SAFETY: pin bytes valid for the call.
        unsafe {
            (self.f.C_Login.unwrap())(h, user, pin.as_ptr() as *mut u8, pin.len() as CK_ULONG)
        }
    }

    pub fn logout(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        // SAFETY: plain call.
        unsafe { (self.f.C_Logout.unwrap())(h) }
    }

    pub fn find(
        &self,
        h: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<Vec<CK_OBJECT_HANDLE>, CK_RV> {
        let mut attrs: Vec<CK_ATTRIBUTE> = template
            .iter()
            .map(|(t, v)| CK_ATTRIBUTE {
                type_: *t,
                pValue: v.as_ptr() as *mut c_void,
                ulValueLen: v.len() as CK_ULONG,
            })
            .collect();
        // SAFETY: template entries point into `template`, alive for the call.
        let rv = unsafe {
            (self.f.C_FindObjectsInit.unwrap())(h, attrs.as_mut_ptr(), attrs.len() as CK_ULONG)
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut out = Vec::new();
        loop {
            let mut buf = [0 as CK_OBJECT_HANDLE; 3];
            let mut n = 0;
            // SAFETY: buffer of 3 handles.
            let rv = unsafe { (self.f.C_FindObjects.unwrap())(h, buf.as_mut_ptr(), 3, &mut n) };
            if rv != CKR_OK {
                return Err(rv);
            }
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        // SAFETY: plain call.
        let rv = unsafe { (self.f.C_FindObjectsFinal.unwrap())(h) };
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok(out)
    }

    /// One attribute: size query, then fetch.
    pub fn attr(
        &self,
        h: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        ty: CK_ATTRIBUTE_TYPE,
    ) -> Result<Vec<u8>, CK_RV> {
        let mut a = CK_ATTRIBUTE {
            type_: ty,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        };
        // SAFETY: one-entry template.
        let rv = unsafe { (self.f.C_GetAttributeValue.unwrap())(h, obj, &mut a, 1) };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut v = vec![0u8; a.ulValueLen as usize];
        a.pValue = v.as_mut_ptr() as *mut c_void;
        // SAFETY: buffer of ulValueLen bytes.
        let rv = unsafe { (self.f.C_GetAttributeValue.unwrap())(h, obj, &mut a, 1) };
        if rv != CKR_OK {
            return Err(rv);
        }
        v.truncate(a.ulValueLen as usize);
        Ok(v)
    }

    pub fn sign_init(&self, h: CK_SESSION_HANDLE, mech: &Mech, key: CK_OBJECT_HANDLE) -> CK_RV {
        let mut m = mech.raw();
        // SAFETY: mechanism alive for the call.
        unsafe { (self.f.C_SignInit.unwrap())(h, &mut m, key) }
    }

    /// C_Sign as applications do it: a length query, then the signature.
    pub fn sign_only(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut len: CK_ULONG = 0;
        // SAFETY: data valid; NULL signature buffer is the length query.
        let rv = unsafe {
            (self.f.C_Sign.unwrap())(
                h,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                ptr::null_mut(),
                &mut len,
            )
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut sig = vec![0u8; len as usize];
        // SAFETY: buffer of len bytes.
        let rv = unsafe {
            (self.f.C_Sign.unwrap())(
                h,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                sig.as_mut_ptr(),
                &mut len,
            )
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        sig.truncate(len as usize);
        Ok(sig)
    }

    pub fn sign(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        match self.sign_init(h, mech, key) {
            CKR_OK => self.sign_only(h, data),
            rv => Err(rv),
        }
    }

    pub fn sign_update(&self, h: CK_SESSION_HANDLE, part: &[u8]) -> CK_RV {
        // SAFETY: part valid for the call.
        unsafe {
            (self.f.C_SignUpdate.unwrap())(h, part.as_ptr() as *mut u8, part.len() as CK_ULONG)
        }
    }

    pub fn sign_final(&self, h: CK_SESSION_HANDLE) -> Result<Vec<u8>, CK_RV> {
        let mut len: CK_ULONG = 0;
        // SAFETY: length query.
        let rv = unsafe { (self.f.C_SignFinal.unwrap())(h, ptr::null_mut(), &mut len) };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut sig = vec![0u8; len as usize];
        // SAFETY: buffer of len bytes.
        let rv = unsafe { (self.f.C_SignFinal.unwrap())(h, sig.as_mut_ptr(), &mut len) };
        if rv != CKR_OK {
            return Err(rv);
        }
        sig.truncate(len as usize);
        Ok(sig)
    }

    pub fn sign_multipart(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mech,
        key: CK_OBJECT_HANDLE,
        parts: &[&[u8]],
    ) -> Result<Vec<u8>, CK_RV> {
        match self.sign_init(h, mech, key) {
            CKR_OK => {}
            rv => return Err(rv),
        }
        for p in parts {
            match self.sign_update(h, p) {
                CKR_OK => {}
                rv => return Err(rv),
            }
        }
        self.sign_final(h)
    }
}

pub fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub fn ulongs(bytes: &[u8]) -> Vec<CK_ULONG> {
    bytes
        .chunks_exact(std::mem::size_of::<CK_ULONG>())
        .map(|c| CK_ULONG::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

/// A credential's objects as an application finds them: by label, certificate and private key paired by
/// CKA_ID.
pub struct Key {
    pub private: CK_OBJECT_HANDLE,
    pub cert_der: Vec<u8>,
    pub id: Vec<u8>,
    pub mechanisms: Vec<CK_MECHANISM_TYPE>,
    pub key_type: CK_KEY_TYPE,
}

/// Needs a logged-in session (private keys are private objects).
pub fn key_of(p: P11, h: CK_SESSION_HANDLE, label: &str) -> Key {
    let certs = ok(
        p.find(
            h,
            &[
                (CKA_CLASS, ulong(CKO_CERTIFICATE)),
                (CKA_LABEL, label.as_bytes().to_vec()),
            ],
        ),
        "find certificate",
    );
    assert_eq!(certs.len(), 1, "one certificate labelled {label}");
    let id = ok(p.attr(h, certs[0], CKA_ID), "CKA_ID");
    let cert_der = ok(p.attr(h, certs[0], CKA_VALUE), "certificate CKA_VALUE");
    let keys = ok(
        p.find(
            h,
            &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY)), (CKA_ID, id.clone())],
        ),
        "find private key",
    );
    assert_eq!(
        keys.len(),
        1,
        "one private key with the certificate's CKA_ID ({label})"
    );
    let mechanisms = ulongs(&ok(
        p.attr(h, keys[0], CKA_ALLOWED_MECHANISMS),
        "CKA_ALLOWED_MECHANISMS",
    ));
    let key_type = ulongs(&ok(p.attr(h, keys[0], CKA_KEY_TYPE), "CKA_KEY_TYPE"))[0];
    Key {
        private: keys[0],
        cert_der,
        id,
        mechanisms,
        key_type,
    }
}

/// The shared service of this test binary, with the module initialized on its configuration (once).
pub fn setup() -> (&'static Service, P11) {
    static INIT: OnceCell<()> = OnceCell::new();
    let svc = Service::shared();
    let p = p11();
    INIT.get_or_init(|| {
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "C_Initialize",
        );
    });
    (svc, p)
}

/// Tests that log in to the same token run one at a time (the login state belongs to the token).
pub fn token_lock(label: &str) -> MutexGuard<'static, ()> {
    static LOCKS: OnceCell<Mutex<HashMap<String, &'static Mutex<()>>>> = OnceCell::new();
    let m = {
        let mut map = LOCKS.get_or_init(Default::default).lock();
        *map.entry(label.to_owned())
            .or_insert_with(|| Box::leak(Box::new(Mutex::new(()))))
    };
    m.lock()
}

/// The credential with this id in demo.json.
pub fn demo_cred<'a>(svc: &'a Service, id: &str) -> (&'a support::DemoToken, &'a DemoCredential) {
    svc.demo.find(|c| c.id == id)
}

pub fn sha(name: &str, data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match name {
        "sha1" => {
            // sha1 via openssl-free path: the tests crate has sha2 only; sha1 via the command line.
            let out = std::process::Command::new("openssl")
                .args(["dgst", "-sha1", "-binary"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin.take().unwrap().write_all(data)?;
                    c.wait_with_output()
                })
                .expect("openssl dgst");
            out.stdout
        }
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => panic!("unknown hash {name}"),
    }
}

/// DER DigestInfo for CKM_RSA_PKCS.
pub fn digest_info(hash: &str, digest: &[u8]) -> Vec<u8> {
    let prefix: &[u8] = match hash {
        "sha1" => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        "sha224" => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        "sha256" => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        "sha384" => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        "sha512" => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => panic!("unknown hash {hash}"),
    };
    [prefix, digest].concat()
}

pub const HASHES: [(&str, CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE); 5] = [
    ("sha1", CKM_SHA_1, CKG_MGF1_SHA1),
    ("sha224", CKM_SHA224, CKG_MGF1_SHA224),
    ("sha256", CKM_SHA256, CKG_MGF1_SHA256),
    ("sha384", CKM_SHA384, CKG_MGF1_SHA384),
    ("sha512", CKM_SHA512, CKG_MGF1_SHA512),
];

pub fn hash_by_len(len: usize) -> (&'static str, CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE) {
    HASHES[[20, 28, 32, 48, 64]
        .iter()
        .position(|l| *l == len)
        .expect("hash length")]
}

/// How to drive one signing mechanism: what to feed it and how openssl verifies the result.
pub struct Case {
    pub mech: Mech,
    pub hash: &'static str,
    /// The input C_Sign gets for `message`.
    pub input: Vec<u8>,
    /// The digest openssl verifies against.
    pub digest: Vec<u8>,
    pub scheme: support::Scheme,
    /// The mechanism hashes the message itself (C_SignUpdate allowed).
    pub hashing: bool,
}

impl Case {
    /// Asserts that openssl, independently of the module, accepts `sig` as this case's signature by `key`.
    pub fn assert_verified(&self, key: &Key, sig: &[u8]) {
        assert!(
            support::openssl_verify(&key.cert_der, self.hash, &self.digest, sig, self.scheme),
            "openssl rejects the {} signature",
            self.hash
        );
    }
}

/// Every way the module can sign with `mech_ty`, for `message`.
pub fn cases_for(mech_ty: CK_MECHANISM_TYPE, message: &[u8]) -> Vec<Case> {
    use support::Scheme;
    let mut out = Vec::new();
    let hashed = |hash: &'static str, mech: Mech, scheme: Scheme| Case {
        mech,
        hash,
        input: message.to_vec(),
        digest: sha(hash, message),
        scheme,
        hashing: true,
    };
    match mech_ty {
        CKM_RSA_PKCS => {
            for (h, _, _) in HASHES {
                let d = sha(h, message);
                out.push(Case {
                    mech: Mech::new(CKM_RSA_PKCS),
                    hash: h,
                    input: digest_info(h, &d),
                    digest: d,
                    scheme: Scheme::RsaPkcs1,
                    hashing: false,
                });
            }
        }
        CKM_RSA_PKCS_PSS => {
            for (h, m, g) in HASHES {
                let d = sha(h, message);
                out.push(Case {
                    mech: Mech::pss(CKM_RSA_PKCS_PSS, m, g, d.len()),
                    hash: h,
                    input: d.clone(),
                    digest: d,
                    scheme: Scheme::RsaPss {
                        salt_len: sha(h, b"").len(),
                    },
                    hashing: false,
                });
            }
        }
        CKM_ECDSA => {
            for (h, _, _) in HASHES {
                let d = sha(h, message);
                out.push(Case {
                    mech: Mech::new(CKM_ECDSA),
                    hash: h,
                    input: d.clone(),
                    digest: d,
                    scheme: Scheme::EcdsaRaw,
                    hashing: false,
                });
            }
        }
        CKM_SHA1_RSA_PKCS => out.push(hashed("sha1", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA224_RSA_PKCS => out.push(hashed("sha224", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA256_RSA_PKCS => out.push(hashed("sha256", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA384_RSA_PKCS => out.push(hashed("sha384", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA512_RSA_PKCS => out.push(hashed("sha512", Mech::new(mech_ty), Scheme::RsaPkcs1)),
        CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS => {
            let (h, m, g) = match mech_ty {
                CKM_SHA1_RSA_PKCS_PSS => HASHES[0],
                CKM_SHA224_RSA_PKCS_PSS => HASHES[1],
                CKM_SHA256_RSA_PKCS_PSS => HASHES[2],
                CKM_SHA384_RSA_PKCS_PSS => HASHES[3],
                _ => HASHES[4],
            };
            let salt = sha(h, b"").len();
            out.push(hashed(
                h,
                Mech::pss(mech_ty, m, g, salt),
                Scheme::RsaPss { salt_len: salt },
            ));
        }
        CKM_ECDSA_SHA1 => out.push(hashed("sha1", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        CKM_ECDSA_SHA224 => out.push(hashed("sha224", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        CKM_ECDSA_SHA256 => out.push(hashed("sha256", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        CKM_ECDSA_SHA384 => out.push(hashed("sha384", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        CKM_ECDSA_SHA512 => out.push(hashed("sha512", Mech::new(mech_ty), Scheme::EcdsaRaw)),
        other => panic!("the module offers an unexpected signing mechanism 0x{other:x}"),
    }
    out
}
