//! The steps most tests repeat: the shared service with the module initialized on its configuration,
//! a key reached as applications reach it (open a session → log in → find key and certificate), a
//! signature checked by openssl, and the locks that keep tests of one token from interleaving.

use super::mech::Case;
use super::objects::{key_of, Key};
use super::rv::{assert_rv, rv_name};
use super::{p11, P11};
use crate::service::Service;
use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;

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

/// The tests of one binary that share a service, the module and prompt folders: one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
}

/// A signing key reached the way applications reach it: a session on its token, the user's login (when
/// given), the private key and its certificate paired by CKA_ID.
pub struct KeySession {
    pub p: P11,
    pub h: CK_SESSION_HANDLE,
    pub key: Key,
}

impl KeySession {
    /// Opens a session on the token labelled `token`, logs in with `login` (C_Login(CKU_USER); `None`:
    /// no login, for login-free tokens) and finds the key labelled `key`.
    #[track_caller]
    pub fn open(p: P11, token: &str, login: Option<&str>, key: &str) -> KeySession {
        let h = p.open(p.slot_of(token));
        if let Some(pin) = login {
            assert_rv(p.login(h, CKU_USER, pin), CKR_OK, "C_Login");
        }
        KeySession {
            p,
            h,
            key: key_of(p, h, key),
        }
    }

    /// C_SignInit with `mech` for `message`, which must succeed; the case says what to feed C_Sign.
    #[track_caller]
    pub fn init(&self, mech: CK_MECHANISM_TYPE, message: &[u8]) -> Case {
        let case = Case::of(mech, message);
        assert_rv(
            self.p.sign_init(self.h, &case.mech, self.key.private),
            CKR_OK,
            "C_SignInit",
        );
        case
    }

    /// Signs `message` with `mech` and has openssl verify the result; the module's error otherwise.
    pub fn sign_with(&self, mech: CK_MECHANISM_TYPE, message: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let case = Case::of(mech, message);
        let sig = self
            .p
            .sign(self.h, &case.mech, self.key.private, &case.input)?;
        case.assert_verified(&self.key, &sig);
        Ok(sig)
    }

    /// Signs `message` with the key's SHA-256 mechanism, verified by openssl.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CK_RV> {
        self.sign_with(self.key.sha256_mechanism(), message)
    }

    /// `sign`, which must succeed.
    #[track_caller]
    pub fn signed(&self, message: &[u8]) -> Vec<u8> {
        self.sign(message).unwrap_or_else(|rv| {
            panic!(
                "signing {:?}: {}",
                String::from_utf8_lossy(message),
                rv_name(rv)
            )
        })
    }

    pub fn close(self) -> CK_RV {
        self.p.close(self.h)
    }
}

/// Signs `message` with the key's SHA-256 mechanism in session `h` and has openssl verify the result.
pub fn sign_verified(p: P11, h: CK_SESSION_HANDLE, key: &Key, message: &[u8]) -> Result<(), CK_RV> {
    let case = Case::of(key.sha256_mechanism(), message);
    let sig = p.sign(h, &case.mech, key.private, &case.input)?;
    case.assert_verified(key, &sig);
    Ok(())
}

/// The module initialized on a configuration of its own.
pub struct Configured {
    pub p: P11,
    pub config: std::path::PathBuf,
    /// The module's log (debug level).
    pub log: std::path::PathBuf,
}

/// Writes a configuration of `tokens` to `dir` (logging at debug level to `dir/module.log`) and
/// initializes the module on it.
pub fn initialize_on(dir: &std::path::Path, tokens: &[String]) -> Configured {
    let log = dir.join("module.log");
    let config = crate::config::write_config(dir, "debug", &log, tokens);
    let p = p11();
    assert_rv(p.initialize_with_config(&config), CKR_OK, "C_Initialize");
    Configured { p, config, log }
}

/// Runs `f` with the module finalized before and after, one such test at a time: for tests that
/// initialize and finalize the module themselves (and may set environment variables, see `with_env`).
pub fn isolated<R>(f: impl FnOnce(P11) -> R) -> R {
    static LIFE: Mutex<()> = Mutex::new(());
    let _g = LIFE.lock();
    let p = p11();
    let _ = p.finalize();
    let r = f(p);
    let _ = p.finalize();
    r
}

/// Runs `f` with the environment variables set (`Some`) or removed (`None`), then restores them. Only
/// inside `isolated`: the module reads the environment in C_Initialize, and no other test of the binary
/// runs meanwhile.
pub fn with_env<R>(vars: &[(&str, Option<&std::path::Path>)], f: impl FnOnce() -> R) -> R {
    let old: Vec<_> = vars
        .iter()
        .map(|(k, _)| (*k, std::env::var_os(k)))
        .collect();
    for (k, v) in vars {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
    let r = f();
    for (k, v) in old {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
    r
}
