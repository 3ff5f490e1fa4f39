//! The token-mode policy, in one place: what each `mode` means for CK_TOKEN_INFO's flags, for the
//! privacy of keys, and for a C_Login without a PIN. The ffi layer and the credential model both ask
//! here rather than matching on the mode themselves.

use super::TokenMode;
use cryptoki_sys::*;

impl TokenMode {
    /// The CK_TOKEN_INFO flags that tell applications how to log in.
    pub fn login_flags(self) -> CK_FLAGS {
        match self {
            TokenMode::Pin => CKF_LOGIN_REQUIRED,
            TokenMode::ProtectedPath => CKF_LOGIN_REQUIRED | CKF_PROTECTED_AUTHENTICATION_PATH,
            TokenMode::LoginFree => 0,
        }
    }

    /// Whether private keys are private objects (CKA_PRIVATE): on a login-free token they are not, so
    /// that applications that never log in (LibreOffice) find the key to offer it.
    pub fn keys_private(self) -> bool {
        self != TokenMode::LoginFree
    }

    /// Whether C_Login(NULL_PTR, 0) means "the module collects the PIN itself".
    pub fn protected_path(self) -> bool {
        self == TokenMode::ProtectedPath
    }

    /// Whether signing is possible without C_Login (the PIN is then collected at signing time).
    pub fn signs_without_login(self) -> bool {
        self == TokenMode::LoginFree
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenMode::Pin => "pin",
            TokenMode::ProtectedPath => "protected-path",
            TokenMode::LoginFree => "login-free",
        }
    }
}
