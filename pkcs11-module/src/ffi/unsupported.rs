//! The functions a remote signing token does not offer (encryption, decryption, verification, key
//! management, dual-function): CKR_FUNCTION_NOT_SUPPORTED once the module and session are known to be
//! valid. Applications verify signatures themselves with the certificate's public key.

use super::guard;
use crate::state;
use cryptoki_sys::*;

fn not_supported(name: &'static str, session: CK_SESSION_HANDLE) -> CK_RV {
    guard(name, || {
        state::module()?.session(session)?;
        Err(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

#[no_mangle]
pub extern "C" fn C_EncryptInit(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_EncryptInit", hSession)
}

#[no_mangle]
pub extern "C" fn C_Encrypt(
    hSession: CK_SESSION_HANDLE,
    _pData: *mut CK_BYTE,
    _ulDataLen: CK_ULONG,
    _pEncryptedData: *mut CK_BYTE,
    _pulEncryptedDataLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_Encrypt", hSession)
}

#[no_mangle]
pub extern "C" fn C_EncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    _pPart: *mut CK_BYTE,
    _ulPartLen: CK_ULONG,
    _pEncryptedPart: *mut CK_BYTE,
    _pulEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_EncryptUpdate", hSession)
}

#[no_mangle]
pub extern "C" fn C_EncryptFinal(
    hSession: CK_SESSION_HANDLE,
    _pLastEncryptedPart: *mut CK_BYTE,
    _pulLastEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_EncryptFinal", hSession)
}

#[no_mangle]
pub extern "C" fn C_DecryptInit(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_DecryptInit", hSession)
}

#[no_mangle]
pub extern "C" fn C_Decrypt(
    hSession: CK_SESSION_HANDLE,
    _pEncryptedData: *mut CK_BYTE,
    _ulEncryptedDataLen: CK_ULONG,
    _pData: *mut CK_BYTE,
    _pulDataLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_Decrypt", hSession)
}

#[no_mangle]
pub extern "C" fn C_DecryptUpdate(
    hSession: CK_SESSION_HANDLE,
    _pEncryptedPart: *mut CK_BYTE,
    _ulEncryptedPartLen: CK_ULONG,
    _pPart: *mut CK_BYTE,
    _pulPartLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_DecryptUpdate", hSession)
}

#[no_mangle]
pub extern "C" fn C_DecryptFinal(
    hSession: CK_SESSION_HANDLE,
    _pLastPart: *mut CK_BYTE,
    _pulLastPartLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_DecryptFinal", hSession)
}

#[no_mangle]
pub extern "C" fn C_SignRecoverInit(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_SignRecoverInit", hSession)
}

#[no_mangle]
pub extern "C" fn C_SignRecover(
    hSession: CK_SESSION_HANDLE,
    _pData: *mut CK_BYTE,
    _ulDataLen: CK_ULONG,
    _pSignature: *mut CK_BYTE,
    _pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_SignRecover", hSession)
}

#[no_mangle]
pub extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_VerifyInit", hSession)
}

#[no_mangle]
pub extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    _pData: *mut CK_BYTE,
    _ulDataLen: CK_ULONG,
    _pSignature: *mut CK_BYTE,
    _ulSignatureLen: CK_ULONG,
) -> CK_RV {
    not_supported("C_Verify", hSession)
}

#[no_mangle]
pub extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    _pPart: *mut CK_BYTE,
    _ulPartLen: CK_ULONG,
) -> CK_RV {
    not_supported("C_VerifyUpdate", hSession)
}

#[no_mangle]
pub extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    _pSignature: *mut CK_BYTE,
    _ulSignatureLen: CK_ULONG,
) -> CK_RV {
    not_supported("C_VerifyFinal", hSession)
}

#[no_mangle]
pub extern "C" fn C_VerifyRecoverInit(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_VerifyRecoverInit", hSession)
}

#[no_mangle]
pub extern "C" fn C_VerifyRecover(
    hSession: CK_SESSION_HANDLE,
    _pSignature: *mut CK_BYTE,
    _ulSignatureLen: CK_ULONG,
    _pData: *mut CK_BYTE,
    _pulDataLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_VerifyRecover", hSession)
}

#[no_mangle]
pub extern "C" fn C_DigestEncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    _pPart: *mut CK_BYTE,
    _ulPartLen: CK_ULONG,
    _pEncryptedPart: *mut CK_BYTE,
    _pulEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_DigestEncryptUpdate", hSession)
}

#[no_mangle]
pub extern "C" fn C_DecryptDigestUpdate(
    hSession: CK_SESSION_HANDLE,
    _pEncryptedPart: *mut CK_BYTE,
    _ulEncryptedPartLen: CK_ULONG,
    _pPart: *mut CK_BYTE,
    _pulPartLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_DecryptDigestUpdate", hSession)
}

#[no_mangle]
pub extern "C" fn C_SignEncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    _pPart: *mut CK_BYTE,
    _ulPartLen: CK_ULONG,
    _pEncryptedPart: *mut CK_BYTE,
    _pulEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_SignEncryptUpdate", hSession)
}

#[no_mangle]
pub extern "C" fn C_DecryptVerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    _pEncryptedPart: *mut CK_BYTE,
    _ulEncryptedPartLen: CK_ULONG,
    _pPart: *mut CK_BYTE,
    _pulPartLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_DecryptVerifyUpdate", hSession)
}

#[no_mangle]
pub extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _pTemplate: *mut CK_ATTRIBUTE,
    _ulCount: CK_ULONG,
    _phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_GenerateKey", hSession)
}

#[no_mangle]
pub extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _pPublicKeyTemplate: *mut CK_ATTRIBUTE,
    _ulPublicKeyAttributeCount: CK_ULONG,
    _pPrivateKeyTemplate: *mut CK_ATTRIBUTE,
    _ulPrivateKeyAttributeCount: CK_ULONG,
    _phPublicKey: *mut CK_OBJECT_HANDLE,
    _phPrivateKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_GenerateKeyPair", hSession)
}

#[no_mangle]
pub extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _hWrappingKey: CK_OBJECT_HANDLE,
    _hKey: CK_OBJECT_HANDLE,
    _pWrappedKey: *mut CK_BYTE,
    _pulWrappedKeyLen: *mut CK_ULONG,
) -> CK_RV {
    not_supported("C_WrapKey", hSession)
}

#[no_mangle]
pub extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _hUnwrappingKey: CK_OBJECT_HANDLE,
    _pWrappedKey: *mut CK_BYTE,
    _ulWrappedKeyLen: CK_ULONG,
    _pTemplate: *mut CK_ATTRIBUTE,
    _ulAttributeCount: CK_ULONG,
    _phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_UnwrapKey", hSession)
}

#[no_mangle]
pub extern "C" fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    _pMechanism: *mut CK_MECHANISM,
    _hBaseKey: CK_OBJECT_HANDLE,
    _pTemplate: *mut CK_ATTRIBUTE,
    _ulAttributeCount: CK_ULONG,
    _phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported("C_DeriveKey", hSession)
}
