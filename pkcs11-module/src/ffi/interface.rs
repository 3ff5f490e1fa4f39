//! The interfaces the module offers (PKCS#11 3.0 §5.4.4-5.4.6): "PKCS 11" version 3.0, the default,
//! and version 2.40 for applications that ask for it or call C_GetFunctionList. Both lists hold the same
//! functions; the 3.0 list adds C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel and the
//! message-based functions (v3.rs), and its C_GetInfo reports 3.0.

use super::{general, guard, v3, write};
use cryptoki_sys::*;

/// The version of the 2.40 list, and what its C_GetInfo reports.
pub(crate) const V2_40: CK_VERSION = CK_VERSION {
    major: 2,
    minor: 40,
};
/// The version of the 3.0 list, and what its C_GetInfo reports.
pub(crate) const V3_0: CK_VERSION = CK_VERSION { major: 3, minor: 0 };

/// The functions both lists share, around the fields that differ.
macro_rules! function_list {
    ($list:ident { version: $version:expr, C_GetInfo: $get_info:expr, $($extra:ident: $value:expr,)* }) => {
        $list {
            version: $version,
            C_GetInfo: Some($get_info),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_Initialize: Some(super::general::C_Initialize),
            C_Finalize: Some(super::general::C_Finalize),
            C_GetSlotList: Some(super::slot_token::C_GetSlotList),
            C_GetSlotInfo: Some(super::slot_token::C_GetSlotInfo),
            C_GetTokenInfo: Some(super::slot_token::C_GetTokenInfo),
            C_GetMechanismList: Some(super::slot_token::C_GetMechanismList),
            C_GetMechanismInfo: Some(super::slot_token::C_GetMechanismInfo),
            C_InitToken: Some(super::slot_token::C_InitToken),
            C_InitPIN: Some(super::slot_token::C_InitPIN),
            C_SetPIN: Some(super::slot_token::C_SetPIN),
            C_OpenSession: Some(super::session::C_OpenSession),
            C_CloseSession: Some(super::session::C_CloseSession),
            C_CloseAllSessions: Some(super::session::C_CloseAllSessions),
            C_GetSessionInfo: Some(super::session::C_GetSessionInfo),
            C_GetOperationState: Some(super::session::C_GetOperationState),
            C_SetOperationState: Some(super::session::C_SetOperationState),
            C_Login: Some(super::session::C_Login),
            C_Logout: Some(super::session::C_Logout),
            C_CreateObject: Some(super::object::C_CreateObject),
            C_CopyObject: Some(super::object::C_CopyObject),
            C_DestroyObject: Some(super::object::C_DestroyObject),
            C_GetObjectSize: Some(super::object::C_GetObjectSize),
            C_GetAttributeValue: Some(super::object::C_GetAttributeValue),
            C_SetAttributeValue: Some(super::object::C_SetAttributeValue),
            C_FindObjectsInit: Some(super::object::C_FindObjectsInit),
            C_FindObjects: Some(super::object::C_FindObjects),
            C_FindObjectsFinal: Some(super::object::C_FindObjectsFinal),
            C_EncryptInit: Some(super::unsupported::C_EncryptInit),
            C_Encrypt: Some(super::unsupported::C_Encrypt),
            C_EncryptUpdate: Some(super::unsupported::C_EncryptUpdate),
            C_EncryptFinal: Some(super::unsupported::C_EncryptFinal),
            C_DecryptInit: Some(super::unsupported::C_DecryptInit),
            C_Decrypt: Some(super::unsupported::C_Decrypt),
            C_DecryptUpdate: Some(super::unsupported::C_DecryptUpdate),
            C_DecryptFinal: Some(super::unsupported::C_DecryptFinal),
            C_DigestInit: Some(super::digest::C_DigestInit),
            C_Digest: Some(super::digest::C_Digest),
            C_DigestUpdate: Some(super::digest::C_DigestUpdate),
            C_DigestKey: Some(super::digest::C_DigestKey),
            C_DigestFinal: Some(super::digest::C_DigestFinal),
            C_SignInit: Some(super::sign::C_SignInit),
            C_Sign: Some(super::sign::C_Sign),
            C_SignUpdate: Some(super::sign::C_SignUpdate),
            C_SignFinal: Some(super::sign::C_SignFinal),
            C_SignRecoverInit: Some(super::unsupported::C_SignRecoverInit),
            C_SignRecover: Some(super::unsupported::C_SignRecover),
            C_VerifyInit: Some(super::unsupported::C_VerifyInit),
            C_Verify: Some(super::unsupported::C_Verify),
            C_VerifyUpdate: Some(super::unsupported::C_VerifyUpdate),
            C_VerifyFinal: Some(super::unsupported::C_VerifyFinal),
            C_VerifyRecoverInit: Some(super::unsupported::C_VerifyRecoverInit),
            C_VerifyRecover: Some(super::unsupported::C_VerifyRecover),
            C_DigestEncryptUpdate: Some(super::unsupported::C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(super::unsupported::C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(super::unsupported::C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(super::unsupported::C_DecryptVerifyUpdate),
            C_GenerateKey: Some(super::unsupported::C_GenerateKey),
            C_GenerateKeyPair: Some(super::unsupported::C_GenerateKeyPair),
            C_WrapKey: Some(super::unsupported::C_WrapKey),
            C_UnwrapKey: Some(super::unsupported::C_UnwrapKey),
            C_DeriveKey: Some(super::unsupported::C_DeriveKey),
            C_SeedRandom: Some(super::random::C_SeedRandom),
            C_GenerateRandom: Some(super::random::C_GenerateRandom),
            C_GetFunctionStatus: Some(super::general::C_GetFunctionStatus),
            C_CancelFunction: Some(super::general::C_CancelFunction),
            C_WaitForSlotEvent: Some(super::slot_token::C_WaitForSlotEvent),
            $($extra: $value,)*
        }
    };
}

static FUNCTION_LIST: CK_FUNCTION_LIST = function_list!(CK_FUNCTION_LIST {
    version: V2_40,
    C_GetInfo: general::C_GetInfo,
});

static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = function_list!(CK_FUNCTION_LIST_3_0 {
    version: V3_0,
    C_GetInfo: general::get_info_3_0,
    C_GetInterfaceList: Some(C_GetInterfaceList),
    C_GetInterface: Some(C_GetInterface),
    C_LoginUser: Some(v3::C_LoginUser),
    C_SessionCancel: Some(v3::C_SessionCancel),
    C_MessageEncryptInit: Some(v3::C_MessageEncryptInit),
    C_EncryptMessage: Some(v3::C_EncryptMessage),
    C_EncryptMessageBegin: Some(v3::C_EncryptMessageBegin),
    C_EncryptMessageNext: Some(v3::C_EncryptMessageNext),
    C_MessageEncryptFinal: Some(v3::C_MessageEncryptFinal),
    C_MessageDecryptInit: Some(v3::C_MessageDecryptInit),
    C_DecryptMessage: Some(v3::C_DecryptMessage),
    C_DecryptMessageBegin: Some(v3::C_DecryptMessageBegin),
    C_DecryptMessageNext: Some(v3::C_DecryptMessageNext),
    C_MessageDecryptFinal: Some(v3::C_MessageDecryptFinal),
    C_MessageSignInit: Some(v3::C_MessageSignInit),
    C_SignMessage: Some(v3::C_SignMessage),
    C_SignMessageBegin: Some(v3::C_SignMessageBegin),
    C_SignMessageNext: Some(v3::C_SignMessageNext),
    C_MessageSignFinal: Some(v3::C_MessageSignFinal),
    C_MessageVerifyInit: Some(v3::C_MessageVerifyInit),
    C_VerifyMessage: Some(v3::C_VerifyMessage),
    C_VerifyMessageBegin: Some(v3::C_VerifyMessageBegin),
    C_VerifyMessageNext: Some(v3::C_VerifyMessageNext),
    C_MessageVerifyFinal: Some(v3::C_MessageVerifyFinal),
});

fn function_list_ptr() -> *mut CK_FUNCTION_LIST {
    // The lists are never written through these pointers: PKCS#11 applications only read them.
    &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST
}

static INTERFACE_NAME: &[u8] = b"PKCS 11\0";

/// The number of interfaces offered.
const COUNT: usize = 2;

/// Each interface's version (what its function list starts with) and flags, the default first (what
/// C_GetInterface answers without a name and version). Matching reads this table, never the entries
/// handed out, which callers may have written to.
const OFFERED: [(CK_VERSION, CK_FLAGS); COUNT] = [(V3_0, 0), (V2_40, 0)];

/// The entry for `OFFERED[i]`.
const fn interface(i: usize) -> CK_INTERFACE {
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: if i == 0 {
            &FUNCTION_LIST_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut std::ffi::c_void
        } else {
            &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut std::ffi::c_void
        },
        flags: OFFERED[i].1,
    }
}

/// The entries C_GetInterface hands out, in writable memory: some callers write into the CK_INTERFACE
/// they get (OpenSC 0.23's pkcs11-spy puts its own function list there), which would fault on a
/// read-only static.
struct HandedOut(std::cell::UnsafeCell<[CK_INTERFACE; COUNT]>);
// SAFETY: the module never reads or writes these entries after start-up, it only hands out pointers to
// them; what a caller writes through such a pointer is that caller's own affair.
unsafe impl Sync for HandedOut {}

static HANDED_OUT: HandedOut = HandedOut(std::cell::UnsafeCell::new([interface(0), interface(1)]));

/// # Safety
/// `ppFunctionList` is NULL or points to writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    // SAFETY: forwarded caller contract.
    guard("C_GetFunctionList", || unsafe {
        write(ppFunctionList, function_list_ptr())
    })
}

/// # Safety
/// `pInterfacesList` is NULL or points to `*pulCount` writable CK_INTERFACE; `pulCount` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: *mut CK_INTERFACE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetInterfaceList", || {
        if pulCount.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: non-NULL, valid by the caller's contract.
        let capacity = unsafe { *pulCount };
        // SAFETY: as above.
        unsafe { *pulCount = COUNT as CK_ULONG };
        if pInterfacesList.is_null() {
            return Ok(());
        }
        if (capacity as u128) < COUNT as u128 {
            return Err(CKR_BUFFER_TOO_SMALL);
        }
        for i in 0..COUNT {
            // SAFETY: the caller provides at least COUNT writable entries (checked above).
            unsafe { pInterfacesList.add(i).write(interface(i)) };
        }
        Ok(())
    })
}

/// # Safety
/// `pInterfaceName` is NULL or a NUL-terminated string; `pVersion` is NULL or readable;
/// `ppInterface` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: *mut CK_UTF8CHAR,
    pVersion: *mut CK_VERSION,
    ppInterface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_GetInterface", || {
        if ppInterface.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        if !pInterfaceName.is_null() {
            // SAFETY: a NUL-terminated string by the caller's contract.
            let name =
                unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) };
            if name.to_bytes() != b"PKCS 11" {
                return Err(CKR_ARGUMENTS_BAD);
            }
        }
        let wanted = if pVersion.is_null() {
            None
        } else {
            // SAFETY: readable by the caller's contract.
            Some(unsafe { *pVersion })
        };
        // The first interface that matches: the default when no version is asked for.
        let found = OFFERED
            .iter()
            .position(|(v, offered_flags)| {
                wanted.is_none_or(|w| w.major == v.major && w.minor == v.minor)
                    && flags & !offered_flags == 0
            })
            .ok_or(CKR_ARGUMENTS_BAD)?;
        // SAFETY: `found` < COUNT, so the pointer stays inside HANDED_OUT; the write target is non-NULL
        // and writable by the caller's contract.
        unsafe {
            write(
                ppInterface,
                HANDED_OUT.0.get().cast::<CK_INTERFACE>().add(found),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version at the start of an interface's function list.
    fn version_of(i: &CK_INTERFACE) -> CK_VERSION {
        // SAFETY: every list the module hands out starts with its CK_VERSION.
        unsafe { *(i.pFunctionList as *const CK_VERSION) }
    }

    fn get(
        name: Option<&[u8]>,
        version: Option<(u8, u8)>,
        flags: CK_FLAGS,
    ) -> Result<(u8, u8), CK_RV> {
        let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
        let mut name_buf = name.map(|n| [n, b"\0"].concat());
        let mut v = version.map(|(major, minor)| CK_VERSION { major, minor });
        // SAFETY: valid pointers to locals (or NULL).
        let rv = unsafe {
            C_GetInterface(
                name_buf
                    .as_mut()
                    .map_or(std::ptr::null_mut(), |n| n.as_mut_ptr()),
                v.as_mut()
                    .map_or(std::ptr::null_mut(), |v| v as *mut CK_VERSION),
                &mut iface,
                flags,
            )
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        // SAFETY: C_GetInterface returned one of the static interfaces.
        let v = version_of(unsafe { &*iface });
        Ok((v.major, v.minor))
    }

    #[test]
    fn the_default_interface_is_3_0_and_2_40_is_there_on_request() {
        assert_eq!(get(None, None, 0), Ok((3, 0)));
        assert_eq!(get(Some(b"PKCS 11"), Some((3, 0)), 0), Ok((3, 0)));
        assert_eq!(get(Some(b"PKCS 11"), Some((2, 40)), 0), Ok((2, 40)));
    }

    #[test]
    fn unknown_names_versions_and_flags_are_refused() {
        assert_eq!(get(Some(b"PKCS 11 other"), None, 0), Err(CKR_ARGUMENTS_BAD));
        assert_eq!(
            get(Some(b"PKCS 11"), Some((4, 50)), 0),
            Err(CKR_ARGUMENTS_BAD)
        );
        assert_eq!(get(Some(b"PKCS 11"), None, 2), Err(CKR_ARGUMENTS_BAD));
        assert_eq!(
            get(Some(b"PKCS 11"), None, CKF_INTERFACE_FORK_SAFE),
            Err(CKR_ARGUMENTS_BAD)
        );
        // SAFETY: NULL output pointer is refused without a write.
        let rv = unsafe {
            C_GetInterface(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
    }

    #[test]
    fn the_list_holds_3_0_then_2_40_and_follows_the_size_convention() {
        let mut count: CK_ULONG = 0;
        // SAFETY: valid pointers to locals.
        unsafe {
            assert_eq!(
                C_GetInterfaceList(std::ptr::null_mut(), std::ptr::null_mut()),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(C_GetInterfaceList(std::ptr::null_mut(), &mut count), CKR_OK);
            assert_eq!(count, 2);
            let mut list = [CK_INTERFACE::default(); 2];
            count = 1;
            assert_eq!(
                C_GetInterfaceList(list.as_mut_ptr(), &mut count),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(count, 2);
            assert_eq!(C_GetInterfaceList(list.as_mut_ptr(), &mut count), CKR_OK);
            let versions: Vec<(u8, u8)> = list
                .iter()
                .map(|i| {
                    let v = version_of(i);
                    (v.major, v.minor)
                })
                .collect();
            assert_eq!(versions, [(3, 0), (2, 40)]);
            assert_eq!(
                list[1].pFunctionList as *mut CK_FUNCTION_LIST,
                function_list_ptr()
            );
        }
    }

    #[test]
    fn a_caller_may_write_into_the_interface_it_was_handed() {
        // What OpenSC's pkcs11-spy does (it puts its own function list there). Writing the same value
        // back keeps the other tests' view unchanged; on read-only memory the write itself faults.
        let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
        // SAFETY: valid pointers to locals; the entry handed out is writable (that is the point).
        unsafe {
            assert_eq!(
                C_GetInterface(std::ptr::null_mut(), std::ptr::null_mut(), &mut iface, 0),
                CKR_OK
            );
            let original = (*iface).pFunctionList;
            std::ptr::write_volatile(&mut (*iface).pFunctionList, original);
            assert_eq!(version_of(&*iface).major, 3);
        }
    }
}
