//! General-purpose functions (PKCS#11 §5.4) and the legacy parallel-function stubs (§5.16).

use super::interface::{V2_40, V3_0};
use super::{guard, padded, write};
use crate::config::{self, RESERVED_PREFIX};
use crate::error::{self, CkResult};
use crate::state::{self, Module};
use cryptoki_sys::*;
use std::ffi::{c_char, c_void};
use std::path::PathBuf;

/// Longest pReserved string read (`cloudtoken_conf=` plus a path).
const RESERVED_MAX: usize = 4096 + RESERVED_PREFIX.len();

/// # Safety
/// `pInitArgs` is NULL or points to a readable CK_C_INITIALIZE_ARGS whose pReserved is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(pInitArgs: *mut c_void) -> CK_RV {
    // SAFETY: forwarded caller contract.
    guard("C_Initialize", || unsafe { initialize(pInitArgs) })
}

/// The parts of CK_C_INITIALIZE_ARGS the module acts on.
struct InitArgs {
    config_path: Option<PathBuf>,
    cant_create_threads: bool,
}

/// # Safety
/// As for C_Initialize.
unsafe fn parse_args(p: *mut c_void) -> CkResult<InitArgs> {
    if p.is_null() {
        return Ok(InitArgs {
            config_path: None,
            cant_create_threads: false,
        });
    }
    // SAFETY: non-NULL and readable by the caller's contract; read unaligned in case the caller's
    // struct is not aligned.
    let args = unsafe { (p as *const CK_C_INITIALIZE_ARGS).read_unaligned() };
    let callbacks = [
        args.CreateMutex.is_some(),
        args.DestroyMutex.is_some(),
        args.LockMutex.is_some(),
        args.UnlockMutex.is_some(),
    ];
    let given = callbacks.iter().filter(|c| **c).count();
    if given != 0 && given != 4 {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // The module locks with the OS primitives; it can honour application callbacks only when it may use
    // those instead.
    if given == 4 && args.flags & CKF_OS_LOCKING_OK == 0 {
        return Err(CKR_CANT_LOCK);
    }
    let config_path = if args.pReserved.is_null() {
        None
    } else {
        let bytes =
            read_c_string(args.pReserved as *const u8, RESERVED_MAX).ok_or(CKR_ARGUMENTS_BAD)?;
        let path = bytes
            .strip_prefix(RESERVED_PREFIX.as_bytes())
            .filter(|rest| !rest.is_empty())
            .ok_or(CKR_ARGUMENTS_BAD)?;
        use std::os::unix::ffi::OsStrExt;
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(path)))
    };
    Ok(InitArgs {
        config_path,
        cant_create_threads: args.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS != 0,
    })
}

/// A NUL-terminated string of at most `max` bytes at `p`, read without trusting the pointer: the kernel
/// copies it (process_vm_readv on this process), so a pointer that is not readable memory — pReserved
/// is `void *`, and applications pass what they like — gives `None` instead of a crash.
fn read_c_string(p: *const u8, max: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; max + 1];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: p as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes our own buffer of `buf.len()` writable bytes; `remote` is only read by
    // the kernel, which reports unreadable memory as an error or a short read instead of faulting.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EFAULT) {
            // The call itself is not allowed here (a seccomp filter): trust the caller, as C would.
            log::debug!("process_vm_readv unavailable ({e}); reading pReserved directly");
            // SAFETY: the C_Initialize contract: pReserved is NULL or a NUL-terminated string;
            // strnlen bounds the read.
            let len = unsafe { libc::strnlen(p as *const c_char, max + 1) };
            if len > max {
                return None;
            }
            // SAFETY: `len` readable bytes were just measured.
            return Some(unsafe { std::slice::from_raw_parts(p, len) }.to_vec());
        }
    }
    if n <= 0 {
        return None;
    }
    let read = &buf[..n as usize];
    let end = read.iter().position(|b| *b == 0)?;
    Some(read[..end].to_vec())
}

/// # Safety
/// As for C_Initialize.
unsafe fn initialize(p: *mut c_void) -> CkResult<()> {
    // SAFETY: forwarded caller contract.
    let args = unsafe { parse_args(p) }?;
    state::initialize(|| {
        crate::log::configure(None, None);
        let config = config::load(args.config_path)
            .map_err(|e| error::logged(CKR_GENERAL_ERROR, format!("C_Initialize: {e}")))?;
        crate::log::configure(
            config
                .log
                .level
                .as_deref()
                .and_then(crate::log::parse_level),
            config.log.file.as_deref(),
        );
        match &config.source {
            Some(p) => log::info!(
                "C_Initialize: {} token(s) from {}",
                config.tokens.len(),
                p.display()
            ),
            None => log::warn!(
                "C_Initialize: no configuration found (pReserved, ${}, ~/.config/cloudtoken/cloudtoken.toml, \
                 /etc/cloudtoken/cloudtoken.toml): no slots",
                config::CONFIG_ENV
            ),
        }
        // CKF_LIBRARY_CANT_CREATE_OS_THREADS (GnuTLS, NSS) asks the module not to create threads. Each
        // service client runs its HTTP I/O on a thread of its own; that thread never calls into the
        // application (no callback, no application lock, no signal), it only waits for the network, and
        // C_Finalize joins it. So the module honours the flag's purpose — nothing of the application runs
        // on a thread it did not create — and says so, rather than refusing the application.
        if args.cant_create_threads && !config.tokens.is_empty() {
            log::info!(
                "C_Initialize: the application asks for no library threads; the HTTP client's own I/O \
                 thread never calls into the application and ends at C_Finalize"
            );
        }
        Ok(Module::new(&config))
    })
}

/// # Safety
/// `pReserved` must be NULL.
#[no_mangle]
pub unsafe extern "C" fn C_Finalize(pReserved: *mut c_void) -> CK_RV {
    guard("C_Finalize", || {
        if !pReserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        state::finalize()
    })
}

/// CK_INFO with the interface version of the list it was called through.
///
/// # Safety
/// `pInfo` is NULL or points to a writable CK_INFO.
unsafe fn get_info(name: &'static str, version: CK_VERSION, pInfo: *mut CK_INFO) -> CK_RV {
    guard(name, || {
        state::module()?;
        let info = CK_INFO {
            cryptokiVersion: version,
            manufacturerID: padded("cloudtoken"),
            flags: 0,
            libraryDescription: padded("CSC remote signing token"),
            libraryVersion: super::library_version(),
        };
        // SAFETY: forwarded caller contract.
        unsafe { write(pInfo, info) }
    })
}

/// C_GetInfo of the 2.40 list (and the exported symbol).
///
/// # Safety
/// `pInfo` is NULL or points to a writable CK_INFO.
#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(pInfo: *mut CK_INFO) -> CK_RV {
    // SAFETY: forwarded caller contract.
    unsafe { get_info("C_GetInfo", V2_40, pInfo) }
}

/// C_GetInfo of the 3.0 list.
///
/// # Safety
/// `pInfo` is NULL or points to a writable CK_INFO.
pub unsafe extern "C" fn get_info_3_0(pInfo: *mut CK_INFO) -> CK_RV {
    // SAFETY: forwarded caller contract.
    unsafe { get_info("C_GetInfo", V3_0, pInfo) }
}

#[no_mangle]
pub extern "C" fn C_GetFunctionStatus(_hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_GetFunctionStatus", || {
        state::module()?;
        Err(CKR_FUNCTION_NOT_PARALLEL)
    })
}

#[no_mangle]
pub extern "C" fn C_CancelFunction(_hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CancelFunction", || {
        state::module()?;
        Err(CKR_FUNCTION_NOT_PARALLEL)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preserved_that_is_no_readable_string_is_refused_not_read() {
        let s = b"cloudtoken_conf=/etc/x.toml\0";
        assert_eq!(read_c_string(s.as_ptr(), 100).unwrap(), &s[..s.len() - 1]);
        assert_eq!(
            read_c_string(std::ptr::dangling::<u8>(), 100),
            None,
            "(void *)1"
        );
        assert_eq!(read_c_string(std::ptr::null(), 100), None);
        assert_eq!(
            read_c_string(b"no end".as_ptr(), 3),
            None,
            "longer than allowed"
        );
    }
}
