//! The built module as applications load it: dlopen, then C_GetFunctionList (cryptoki-sys), and thin
//! wrappers around the C calls that keep every CK_RV visible to the test. The library is loaded once
//! per test process and never unloaded.
//!
//! Submodules: `rv` (names and assertions), `mech` (mechanisms and the signing cases with their
//! independent check), `objects` (finding keys and certificates, attributes), `flow` (the shared
//! service, the one open → log in → find → sign → verify helper, locks between tests).

pub mod flow;
pub mod mech;
pub mod objects;
pub mod rv;

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use rv::{assert_rv, ok};
use std::ffi::c_void;
use std::ptr;

/// The module's function list.
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
            unsafe { cryptoki_sys::Pkcs11::new(crate::paths::module_path()) }
                .expect("dlopen the module"),
        ));
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: valid out pointer.
        let rv = unsafe { lib.C_GetFunctionList(&mut list) };
        assert_rv(rv, CKR_OK, "C_GetFunctionList");
        assert!(!list.is_null());
        (lib, list as usize)
    });
    // SAFETY: the function list is a static of the loaded (never unloaded) module.
    let f = unsafe { &*(list as *const CK_FUNCTION_LIST) };
    P11 { f, lib }
}

/// `cloudtoken_conf=PATH`, the module's pReserved form.
pub fn reserved_config(path: &std::path::Path) -> std::ffi::CString {
    std::ffi::CString::new(format!("cloudtoken_conf={}", path.display())).unwrap()
}

/// C_Initialize arguments with OS locking and `reserved` as pReserved.
pub fn init_args(reserved: *mut c_void) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: reserved,
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
        let s = reserved_config(path);
        self.initialize(Some(&mut init_args(s.as_ptr() as *mut c_void)))
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

    /// The labels of the tokens in the slots, in slot order.
    pub fn token_labels(&self) -> Result<Vec<String>, CK_RV> {
        self.slots()?
            .into_iter()
            .map(|s| {
                self.token_info(s)
                    .map(|i| String::from_utf8_lossy(&i.label).trim_end().to_owned())
            })
            .collect()
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

    pub fn token_flags(&self, label: &str) -> CK_FLAGS {
        ok(self.token_info(self.slot_of(label)), "C_GetTokenInfo").flags
    }

    /// C_OpenSession with these flags.
    pub fn open_session(
        &self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
    ) -> Result<CK_SESSION_HANDLE, CK_RV> {
        let mut h = 0;
        // SAFETY: valid out pointer.
        let rv =
            unsafe { (self.f.C_OpenSession.unwrap())(slot, flags, ptr::null_mut(), None, &mut h) };
        match rv {
            CKR_OK => Ok(h),
            rv => Err(rv),
        }
    }

    /// A read-only session, which must open.
    #[track_caller]
    pub fn open(&self, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
        ok(self.open_session(slot, CKF_SERIAL_SESSION), "C_OpenSession")
    }

    pub fn close(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        // SAFETY: plain call.
        unsafe { (self.f.C_CloseSession.unwrap())(h) }
    }

    pub fn close_all(&self, slot: CK_SLOT_ID) -> CK_RV {
        // SAFETY: plain call.
        unsafe { (self.f.C_CloseAllSessions.unwrap())(slot) }
    }

    pub fn session_info(&self, h: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO, CK_RV> {
        let mut info = CK_SESSION_INFO::default();
        // SAFETY: valid out pointer.
        match unsafe { (self.f.C_GetSessionInfo.unwrap())(h, &mut info) } {
            CKR_OK => Ok(info),
            rv => Err(rv),
        }
    }

    #[track_caller]
    pub fn session_state(&self, h: CK_SESSION_HANDLE) -> CK_STATE {
        ok(self.session_info(h), "C_GetSessionInfo").state
    }

    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> CK_RV {
        // SAFETY: pin bytes valid for the call.
        unsafe {
            (self.f.C_Login.unwrap())(h, user, pin.as_ptr() as *mut u8, pin.len() as CK_ULONG)
        }
    }

    /// C_Login with a NULL_PTR PIN (the protected authentication path).
    pub fn login_null(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE) -> CK_RV {
        // SAFETY: a NULL PIN with length 0 is the protected-path form.
        unsafe { (self.f.C_Login.unwrap())(h, user, ptr::null_mut(), 0) }
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

    pub fn sign_init(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &mech::Mech,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
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
        mech: &mech::Mech,
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
        mech: &mech::Mech,
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
