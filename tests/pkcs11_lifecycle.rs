//! The module's life in a process: C_Initialize arguments, configuration discovery and refusal,
//! C_Finalize, re-initialization, fork (the child must re-initialize and can then sign), and a PIN
//! lockout on a service of its own. The tests here initialize and finalize the module, so they run one
//! at a time (a process-wide lock) and each leaves it finalized.

use cryptoki_sys::*;
use std::ffi::c_void;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::ptr::null_mut;
use support::prelude::*;
use support::{openssl_verify, totp_code, Service};

unsafe extern "C" fn create_mutex(m: *mut *mut c_void) -> CK_RV {
    // SAFETY: the module passes a valid out pointer.
    unsafe { *m = Box::into_raw(Box::new(0u8)) as *mut c_void };
    CKR_OK
}
unsafe extern "C" fn destroy_mutex(m: *mut c_void) -> CK_RV {
    // SAFETY: created by create_mutex.
    drop(unsafe { Box::from_raw(m as *mut u8) });
    CKR_OK
}
unsafe extern "C" fn lock_mutex(_m: *mut c_void) -> CK_RV {
    CKR_OK
}
unsafe extern "C" fn unlock_mutex(_m: *mut c_void) -> CK_RV {
    CKR_OK
}

fn args(flags: CK_FLAGS, callbacks: bool, reserved: *mut c_void) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: callbacks
            .then_some(create_mutex as unsafe extern "C" fn(*mut *mut c_void) -> CK_RV),
        DestroyMutex: callbacks
            .then_some(destroy_mutex as unsafe extern "C" fn(*mut c_void) -> CK_RV),
        LockMutex: callbacks.then_some(lock_mutex as unsafe extern "C" fn(*mut c_void) -> CK_RV),
        UnlockMutex: callbacks
            .then_some(unlock_mutex as unsafe extern "C" fn(*mut c_void) -> CK_RV),
        flags,
        pReserved: reserved,
    }
}

fn reserved(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(format!("cloudtoken_conf={}", path.display())).unwrap()
}

#[test]
fn nothing_works_before_c_initialize() {
    isolated(|p| {
        assert!(matches!(p.slots(), Err(CKR_CRYPTOKI_NOT_INITIALIZED)));
        let mut info = CK_INFO::default();
        // SAFETY: valid out pointer.
        assert_rv(
            unsafe { (p.f.C_GetInfo.unwrap())(&mut info) },
            CKR_CRYPTOKI_NOT_INITIALIZED,
            "C_GetInfo",
        );
        assert_rv(p.finalize(), CKR_CRYPTOKI_NOT_INITIALIZED, "C_Finalize");
        assert_rv(p.close(1), CKR_CRYPTOKI_NOT_INITIALIZED, "C_CloseSession");
    });
}

/// C_Initialize with `a` fails with `want` and leaves the module uninitialized.
fn refused(p: P11, a: &mut CK_C_INITIALIZE_ARGS, want: CK_RV, what: &str) {
    assert_rv(p.initialize(Some(a)), want, what);
    assert!(
        matches!(p.slots(), Err(CKR_CRYPTOKI_NOT_INITIALIZED)),
        "a failed C_Initialize leaves nothing ({what})"
    );
}

#[test]
fn c_initialize_refuses_some_mutex_callbacks_but_not_all() {
    let svc = Service::shared();
    isolated(|p| {
        let conf = reserved(&svc.config_file());
        let mut a = args(CKF_OS_LOCKING_OK, true, conf.as_ptr() as *mut c_void);
        a.LockMutex = None;
        refused(p, &mut a, CKR_ARGUMENTS_BAD, "partial callbacks");
    });
}

#[test]
fn c_initialize_with_callbacks_but_no_os_locking_cannot_lock() {
    let svc = Service::shared();
    isolated(|p| {
        let conf = reserved(&svc.config_file());
        // The module cannot honour application mutexes without OS locking.
        let mut a = args(0, true, conf.as_ptr() as *mut c_void);
        refused(p, &mut a, CKR_CANT_LOCK, "callbacks only");
        // Callbacks with OS locking allowed: fine.
        assert_rv(
            p.initialize(Some(&mut args(
                CKF_OS_LOCKING_OK,
                true,
                conf.as_ptr() as *mut c_void,
            ))),
            CKR_OK,
            "callbacks and OS locking",
        );
        assert_eq!(ok(p.slots(), "slots").len(), svc.demo.tokens.len());
    });
}

#[test]
fn c_initialize_that_forbids_library_threads_is_accepted() {
    let svc = Service::shared();
    isolated(|p| {
        let conf = reserved(&svc.config_file());
        // GnuTLS and NSS ask for no library threads: accepted, since the HTTP client's own I/O thread
        // never calls into the application (and ends at C_Finalize).
        let mut a = args(
            CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS,
            false,
            conf.as_ptr() as *mut c_void,
        );
        assert_rv(p.initialize(Some(&mut a)), CKR_OK, "no threads");
        assert_eq!(ok(p.slots(), "slots").len(), svc.demo.tokens.len());
        assert_rv(p.finalize(), CKR_OK, "C_Finalize");
    });
}

#[test]
fn c_initialize_refuses_a_foreign_preserved_string() {
    isolated(|p| {
        let junk = std::ffi::CString::new("something=else").unwrap();
        let mut a = args(CKF_OS_LOCKING_OK, false, junk.as_ptr() as *mut c_void);
        refused(p, &mut a, CKR_ARGUMENTS_BAD, "foreign pReserved");
    });
}

#[test]
fn c_initialize_twice_is_already_initialized_and_c_finalize_takes_null_only() {
    let svc = Service::shared();
    isolated(|p| {
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "C_Initialize",
        );
        assert_rv(
            p.initialize(None),
            CKR_CRYPTOKI_ALREADY_INITIALIZED,
            "twice",
        );
        let mut x = 0u8;
        // SAFETY: non-NULL reserved pointer is the misuse under test.
        assert_rv(
            unsafe { (p.f.C_Finalize.unwrap())(&mut x as *mut u8 as *mut c_void) },
            CKR_ARGUMENTS_BAD,
            "C_Finalize(junk)",
        );
        assert_rv(p.finalize(), CKR_OK, "C_Finalize(NULL)");
    });
}

#[test]
fn sessions_and_logins_do_not_survive_c_finalize() {
    let svc = Service::shared();
    isolated(|p| {
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "C_Initialize",
        );
        let alice = svc.demo.token_of("alice");
        let h = p.open(p.slot_of(&alice.label));
        assert_rv(p.login(h, CKU_USER, &alice.pin), CKR_OK, "C_Login");
        assert_rv(p.finalize(), CKR_OK, "C_Finalize");
        assert!(matches!(p.slots(), Err(CKR_CRYPTOKI_NOT_INITIALIZED)));
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "again",
        );
        assert_rv(p.close(h), CKR_SESSION_HANDLE_INVALID, "old session");
        let h = p.open(p.slot_of(&alice.label));
        assert_rv(
            p.logout(h),
            CKR_USER_NOT_LOGGED_IN,
            "the login was forgotten",
        );
    });
}

#[test]
fn finalize_initialize_cycles_leave_nothing_behind() {
    let svc = Service::shared();
    isolated(|p| {
        // Threads are joined at C_Finalize: many cycles leave none behind.
        for _ in 0..6 {
            assert_rv(
                p.initialize_with_config(&svc.config_file()),
                CKR_OK,
                "C_Initialize",
            );
            let h = p.open(p.slot_of(&svc.demo.token_of("alice").label));
            assert_rv(p.close(h), CKR_OK, "close");
            assert_rv(p.finalize(), CKR_OK, "C_Finalize");
        }
        assert!(
            !thread_names().iter().any(|n| n.starts_with("reqwest")),
            "no HTTP runtime thread outlives C_Finalize: {:?}",
            thread_names()
        );
    });
}

fn copy_config(svc: &Service, dir: &Path, mode: u32) -> PathBuf {
    let text = std::fs::read_to_string(svc.config_file()).unwrap();
    let p = dir.join("cloudtoken.toml");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn configuration_from_cloudtoken_config_is_used() {
    let svc = Service::shared();
    isolated(|p| {
        let dir = tempfile::tempdir().unwrap();
        let conf = copy_config(svc, dir.path(), 0o600);
        with_env(&[("CLOUDTOKEN_CONFIG", Some(&conf))], || {
            assert_rv(
                p.initialize(None),
                CKR_OK,
                "C_Initialize from CLOUDTOKEN_CONFIG",
            );
            assert_eq!(ok(p.slots(), "slots").len(), svc.demo.tokens.len());
        });
    });
}

#[test]
fn configuration_others_can_write_is_refused_readable_is_fine() {
    let svc = Service::shared();
    isolated(|p| {
        let dir = tempfile::tempdir().unwrap();
        let conf = copy_config(svc, dir.path(), 0o666);
        with_env(&[("CLOUDTOKEN_CONFIG", Some(&conf))], || {
            // A configuration others can write decides where the PIN goes.
            assert_rv(
                p.initialize(None),
                CKR_GENERAL_ERROR,
                "world-writable configuration",
            );
            std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_rv(p.initialize(None), CKR_OK, "readable by others is fine");
        });
    });
}

#[test]
fn secret_file_others_can_read_is_refused() {
    let svc = Service::shared();
    isolated(|p| {
        let dir = tempfile::tempdir().unwrap();
        let conf = copy_config(svc, dir.path(), 0o600);
        let text = std::fs::read_to_string(&conf).unwrap();
        let secret = text
            .lines()
            .find_map(|l| {
                let l = l.trim();
                (l.starts_with("refresh_token_file") || l.starts_with("password_file"))
                    .then(|| l.split('"').nth(1).unwrap().to_owned())
            })
            .expect("a secret file in the configuration");
        let copy = dir.path().join("secret");
        std::fs::copy(&secret, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&conf, text.replacen(&secret, copy.to_str().unwrap(), 1)).unwrap();
        with_env(&[("CLOUDTOKEN_CONFIG", Some(&conf))], || {
            assert_rv(
                p.initialize(None),
                CKR_GENERAL_ERROR,
                "group/other-readable secret file",
            );
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_rv(p.initialize(None), CKR_OK, "0600 secret file");
        });
    });
}

#[test]
fn missing_explicit_configuration_is_an_error() {
    isolated(|p| {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        with_env(&[("CLOUDTOKEN_CONFIG", Some(&missing))], || {
            assert_rv(
                p.initialize(None),
                CKR_GENERAL_ERROR,
                "missing explicit configuration",
            );
        });
    });
}

#[test]
fn configuration_in_xdg_config_home_is_found() {
    let svc = Service::shared();
    isolated(|p| {
        let home = tempfile::tempdir().unwrap();
        let conf = home.path().join("cloudtoken/cloudtoken.toml");
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::copy(svc.config_file(), &conf).unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
        with_env(
            &[
                ("CLOUDTOKEN_CONFIG", None),
                ("XDG_CONFIG_HOME", Some(home.path())),
                ("HOME", Some(home.path())),
            ],
            || {
                assert_rv(p.initialize(None), CKR_OK, "XDG configuration");
                assert_eq!(ok(p.slots(), "slots").len(), svc.demo.tokens.len());
            },
        );
    });
}

#[test]
fn no_configuration_anywhere_gives_no_slots() {
    const SYSTEM: &str = "/etc/cloudtoken/cloudtoken.toml";
    if Path::new(SYSTEM).exists() {
        skip(&format!(
            "{SYSTEM} exists on this machine: the module would read it (the tests do not touch it)"
        ));
        return;
    }
    isolated(|p| {
        let empty = tempfile::tempdir().unwrap();
        with_env(
            &[
                ("CLOUDTOKEN_CONFIG", None),
                ("XDG_CONFIG_HOME", Some(empty.path())),
                ("HOME", Some(empty.path())),
            ],
            || {
                assert_rv(p.initialize(None), CKR_OK, "no configuration");
                assert!(
                    ok(p.slots(), "slots").is_empty(),
                    "no configuration, no slots"
                );
            },
        );
    });
}

#[test]
fn forked_child_must_reinitialize_and_can_then_sign() {
    let svc = Service::shared();
    isolated(|p| {
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "C_Initialize",
        );
        let (token, cred) = svc.demo.credential("alice-p256");
        let slot = p.slot_of(&token.label);
        // The parent is in the middle of things: a session, a login.
        let parent = p.open(slot);
        assert_rv(
            p.login(parent, CKU_USER, &token.pin),
            CKR_OK,
            "parent login",
        );
        let key = key_of(p, parent, &cred.label);

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sig");
        let out_c = std::ffi::CString::new(out.to_str().unwrap()).unwrap();
        let conf = reserved(&svc.config_file());
        let passcode = format!("{}{}", token.pin, totp_code(cred));
        let case = cases_for(CKM_ECDSA_SHA256, b"signed in a forked child").remove(0);
        let mech = case.mech.raw();
        let label = token.label.clone();

        // SAFETY: the child only calls the module and async-signal-tolerant libc functions, then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child(p, &label, &key, &passcode, mech, &case.input, &conf, &out_c)
            }))
            .unwrap_or(99);
            // SAFETY: leaves the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child crashed: status {status}");
        let code = libc::WEXITSTATUS(status);
        assert_eq!(code, 0, "child failed at step {code} (see `child`)");
        let sig = std::fs::read(&out).expect("the child's signature");
        assert!(
            openssl_verify(&key.cert_der, case.hash, &case.digest, &sig, case.scheme),
            "child's signature"
        );

        // The parent's module, sessions and login were not disturbed.
        let case = cases_for(CKM_ECDSA_SHA256, b"parent after fork").remove(0);
        assert_rv(
            p.sign_init(parent, &case.mech, key.private),
            CKR_OK,
            "parent C_SignInit",
        );
        assert_rv(
            p.login(parent, CKU_CONTEXT_SPECIFIC, &totp_code(cred)),
            CKR_OK,
            "parent context login",
        );
        let sig = ok(p.sign_only(parent, &case.input), "parent sign");
        case.assert_verified(&key, &sig);
    });
}

/// The forked child's steps; the exit code names the step that failed.
#[allow(clippy::too_many_arguments)]
fn child(
    p: P11,
    label: &str,
    key: &Key,
    passcode: &str,
    mut mech: CK_MECHANISM,
    input: &[u8],
    conf: &std::ffi::CStr,
    out: &std::ffi::CStr,
) -> i32 {
    // SAFETY: all pointers are valid locals.
    unsafe {
        let mut n: CK_ULONG = 0;
        if (p.f.C_GetSlotList.unwrap())(CK_TRUE, null_mut(), &mut n) != CKR_CRYPTOKI_NOT_INITIALIZED
        {
            return 10;
        }
        let mut h: CK_SESSION_HANDLE = 0;
        if (p.f.C_OpenSession.unwrap())(0, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
            != CKR_CRYPTOKI_NOT_INITIALIZED
        {
            return 11;
        }
        if (p.f.C_Finalize.unwrap())(null_mut()) != CKR_CRYPTOKI_NOT_INITIALIZED {
            return 12;
        }
        let mut a = args(CKF_OS_LOCKING_OK, false, conf.as_ptr() as *mut c_void);
        if (p.f.C_Initialize.unwrap())(&mut a as *mut CK_C_INITIALIZE_ARGS as *mut c_void) != CKR_OK
        {
            return 13;
        }
        let slot = p.slot_of(label);
        if (p.f.C_OpenSession.unwrap())(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
            != CKR_OK
        {
            return 14;
        }
        if p.login(h, CKU_USER, passcode) != CKR_OK {
            return 15;
        }
        // Handles are assigned afresh; find the key again by its CKA_ID.
        let keys = match p.find(
            h,
            &[
                (CKA_CLASS, ulong(CKO_PRIVATE_KEY)),
                (CKA_ID, key.id.clone()),
            ],
        ) {
            Ok(k) if k.len() == 1 => k,
            _ => return 16,
        };
        if (p.f.C_SignInit.unwrap())(h, &mut mech, keys[0]) != CKR_OK {
            return 17;
        }
        let sig = match p.sign_only(h, input) {
            Ok(s) => s,
            Err(_) => return 18,
        };
        let fd = libc::open(
            out.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            0o600,
        );
        if fd < 0 || libc::write(fd, sig.as_ptr() as *const c_void, sig.len()) != sig.len() as isize
        {
            return 19;
        }
        libc::close(fd);
        if (p.f.C_Finalize.unwrap())(null_mut()) != CKR_OK {
            return 20;
        }
    }
    0
}

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_owned())
        .collect()
}

#[test]
fn trace_logs_hold_no_secrets_and_finalize_stops_the_http_runtime() {
    let svc = Service::shared();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cloudtoken.log");
    isolated(|p| {
        let (token, cred) = svc.demo.credential("alice-rsa2048");
        let (_, sms) = svc.demo.credential("alice-p384");
        let otp = totp_code(cred);
        let mut sms_code = String::new();
        with_env(
            &[
                ("CLOUDTOKEN_LOG", Some(Path::new("trace"))),
                ("CLOUDTOKEN_LOG_FILE", Some(&log)),
            ],
            || {
                assert_rv(
                    p.initialize_with_config(&svc.config_file()),
                    CKR_OK,
                    "C_Initialize",
                );
                let h = p.open(p.slot_of(&token.label));
                assert_rv(
                    p.login(h, CKU_USER, &format!("{}{otp}", token.pin)),
                    CKR_OK,
                    "C_Login",
                );
                let key = key_of(p, h, &cred.label);
                let case = cases_for(CKM_SHA256_RSA_PKCS, b"logged").remove(0);
                ok(p.sign(h, &case.mech, key.private, &case.input), "sign");
                let key = key_of(p, h, &sms.label);
                let before = svc.sms_messages(&sms.id).len();
                let case = cases_for(CKM_ECDSA_SHA384, b"logged").remove(0);
                assert_rv(
                    p.sign_init(h, &case.mech, key.private),
                    CKR_OK,
                    "C_SignInit",
                );
                sms_code = svc.wait_sms_code(&sms.id, before);
                assert_rv(
                    p.login(h, CKU_CONTEXT_SPECIFIC, &sms_code),
                    CKR_OK,
                    "context login",
                );
                ok(p.sign_only(h, &case.input), "sign");
                assert!(
                    thread_names().iter().any(|n| n.starts_with("reqwest")),
                    "the HTTP client runs its runtime thread: {:?}",
                    thread_names()
                );
                assert_rv(p.finalize(), CKR_OK, "C_Finalize");
            },
        );
        assert!(
            !thread_names().iter().any(|n| n.starts_with("reqwest")),
            "C_Finalize joins the HTTP runtime thread: {:?}",
            thread_names()
        );
        let text = std::fs::read_to_string(&log).expect("the log file");
        assert!(
            text.contains("credentials/authorize"),
            "trace logging shows the requests:\n{text}"
        );
        let secrets = [
            ("passcode", format!("{}{otp}", token.pin)),
            ("OTP", otp.clone()),
            ("SMS code", sms_code.clone()),
            ("account password", token.password.clone()),
            ("refresh token", svc.refresh_token(&token.user)),
        ];
        for (what, s) in secrets {
            assert!(!text.contains(&s), "the {what} appears in the log");
        }
        // Re-initializing without the variables goes back to errors only.
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "C_Initialize",
        );
    });
}

#[test]
fn expired_access_token_is_renewed_and_expired_batches_are_not_used() {
    let svc = Service::start_fresh_with(&["--access-token-lifetime", "2", "--sad-lifetime", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cloudtoken.log");
    isolated(|p| {
        with_env(
            &[
                ("CLOUDTOKEN_LOG", Some(Path::new("info"))),
                ("CLOUDTOKEN_LOG_FILE", Some(&log)),
            ],
            || {
                assert_rv(
                    p.initialize_with_config(&svc.config_file()),
                    CKR_OK,
                    "C_Initialize",
                );
            },
        );
        let (token, cred) = svc.demo.credential("alice-p384");
        let h = p.open(p.slot_of(&token.label));
        assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
        let key = key_of(p, h, &cred.label);
        let mut sent = svc.sms_messages(&cred.id).len();
        for round in 0..2 {
            let case = cases_for(CKM_ECDSA_SHA384, format!("round {round}").as_bytes()).remove(0);
            assert_rv(
                p.sign_init(h, &case.mech, key.private),
                CKR_OK,
                "C_SignInit",
            );
            let code = svc.wait_sms_code(&cred.id, sent);
            sent += 1;
            assert_rv(
                p.login(h, CKU_CONTEXT_SPECIFIC, &code),
                CKR_OK,
                "context login",
            );
            let sig = ok(p.sign_only(h, &case.input), "sign");
            case.assert_verified(&key, &sig);
            // The batch lasts for several signatures...
            let case = cases_for(CKM_ECDSA_SHA384, b"same batch").remove(0);
            ok(
                p.sign(h, &case.mech, key.private, &case.input),
                "sign from the batch",
            );
            assert_eq!(
                svc.sms_messages(&cred.id).len(),
                sent,
                "no new SMS within the batch"
            );
            // ... until both the SAD and the access token expire.
            std::thread::sleep(std::time::Duration::from_millis(3500));
        }
        // After expiry the module does not use the stale SAD: C_SignInit asks for a new SMS.
        let case = cases_for(CKM_ECDSA_SHA384, b"stale").remove(0);
        assert_rv(
            p.sign_init(h, &case.mech, key.private),
            CKR_OK,
            "C_SignInit",
        );
        svc.wait_sms_code(&cred.id, sent);
        assert_eq!(p.sign_only(h, &case.input), Err(CKR_USER_NOT_LOGGED_IN));
        assert_rv(p.finalize(), CKR_OK, "C_Finalize");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("access token expired; logging in again"),
            "the access token was renewed:\n{text}"
        );
    });
}

#[test]
fn signs_over_csc_api_v1_too() {
    let svc = Service::shared();
    isolated(|p| {
        let dir = tempfile::tempdir().unwrap();
        let conf = copy_config(svc, dir.path(), 0o600);
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(
            text.contains("api = \"v2\""),
            "the service's configuration names the API version"
        );
        std::fs::write(&conf, text.replace("api = \"v2\"", "api = \"v1\"")).unwrap();
        assert_rv(p.initialize_with_config(&conf), CKR_OK, "C_Initialize (v1)");
        // SCAL 1 with an SMS (v1 credentials/sendOTP) and SCAL 2 (v1 authorize with the hash).
        for (id, mech) in [
            ("alice-p384", CKM_ECDSA_SHA384),
            ("bob-rsa2048-scal2", CKM_SHA256_RSA_PKCS_PSS),
        ] {
            let (token, cred) = svc.demo.credential(id);
            let h = p.open(p.slot_of(&token.label));
            assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
            let key = key_of(p, h, &cred.label);
            let case = cases_for(mech, format!("v1 {id}").as_bytes()).remove(0);
            let before = svc.sms_messages(id).len();
            assert_rv(
                p.sign_init(h, &case.mech, key.private),
                CKR_OK,
                "C_SignInit",
            );
            let code = svc.wait_sms_code(id, before);
            assert_rv(
                p.login(h, CKU_CONTEXT_SPECIFIC, &code),
                CKR_OK,
                "context login",
            );
            let sig = ok(
                p.sign_only(h, &case.input),
                &format!("v1 signature with {id}"),
            );
            assert!(
                openssl_verify(&key.cert_der, case.hash, &case.digest, &sig, case.scheme),
                "{id}"
            );
            assert_rv(p.close(h), CKR_OK, "close");
        }
    });
}

#[test]
fn repeated_wrong_pins_lock_the_credential() {
    // A service of its own: the lockout must not disturb the other tests.
    let svc = Service::start_fresh();
    isolated(|p| {
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "C_Initialize",
        );
        let (token, cred) = svc.demo.credential("carol-p256-sms");
        let h = p.open(p.slot_of(&token.label));
        let mut wrong_pin = token.pin.clone().into_bytes();
        let last = wrong_pin.len() - 1;
        wrong_pin[last] = if wrong_pin[last] == b'9' {
            b'0'
        } else {
            wrong_pin[last] + 1
        };
        let wrong_pin = String::from_utf8(wrong_pin).unwrap();
        let mut key = None;
        let mut outcomes = Vec::new();
        for attempt in 0..12 {
            assert_rv(
                p.login(h, CKU_USER, &wrong_pin),
                CKR_OK,
                "C_Login does not check the PIN",
            );
            let k = key.get_or_insert_with(|| key_of(p, h, &cred.label)).private;
            let before = svc.sms_messages(&cred.id).len();
            let case = cases_for(CKM_ECDSA_SHA256, b"lockout").remove(0);
            let rv = p.sign_init(h, &case.mech, k);
            if rv != CKR_OK {
                outcomes.push(rv);
                break;
            }
            let code = svc.wait_sms_code(&cred.id, before);
            let rv = p.login(h, CKU_CONTEXT_SPECIFIC, &code);
            outcomes.push(rv);
            if rv == CKR_PIN_LOCKED {
                break;
            }
            assert_rv(
                rv,
                CKR_PIN_INCORRECT,
                &format!("wrong PIN, attempt {attempt}"),
            );
            // A wrong PIN logs the user out, so the module never sends it again by itself.
            assert_rv(p.logout(h), CKR_USER_NOT_LOGGED_IN, "logged out");
        }
        assert_eq!(
            outcomes.last(),
            Some(&CKR_PIN_LOCKED),
            "outcomes: {:?}",
            outcomes.iter().map(|r| rv_name(*r)).collect::<Vec<_>>()
        );
        assert!(
            outcomes.len() >= 2,
            "at least one CKR_PIN_INCORRECT before the lock"
        );
        // Locked: the right PIN does not help.
        let _ = p.logout(h);
        assert_rv(p.login(h, CKU_USER, &token.pin), CKR_OK, "C_Login");
        let k = key.as_ref().expect("found the key").private;
        let case = cases_for(CKM_ECDSA_SHA256, b"locked").remove(0);
        let before = svc.sms_messages(&cred.id).len();
        let rv = p.sign_init(h, &case.mech, k);
        if rv == CKR_OK {
            let code = svc.wait_sms_code(&cred.id, before);
            assert_rv(
                p.login(h, CKU_CONTEXT_SPECIFIC, &code),
                CKR_PIN_LOCKED,
                "right PIN, locked credential",
            );
        } else {
            assert_rv(rv, CKR_PIN_LOCKED, "locked credential");
        }
    });
}

#[test]
fn c_initialize_with_a_preserved_that_is_not_a_string_does_not_crash() {
    isolated(|p| {
        // In a child: a crash there is a failed test, not a lost test runner. The child's module state is
        // its own (the fork rule), so C_Initialize reads pReserved.
        let run = support::child::in_child(std::time::Duration::from_secs(10), |pipe| {
            // dangling_mut::<c_void>() is (void*)1: a pointer that is not NULL and points to nothing.
            let mut a = args(CKF_OS_LOCKING_OK, false, std::ptr::dangling_mut::<c_void>());
            let rv = p.initialize(Some(&mut a));
            pipe.say(&rv.to_string());
            0
        });
        assert_eq!(
            run.ending,
            support::child::Ending::Exited(0),
            "C_Initialize with pReserved = (void*)1 must return, not crash or hang"
        );
        let rv: CK_RV = run.said.trim().parse().expect("the child's CK_RV");
        assert!(
            support::spec::allowed("C_Initialize", rv) && rv != CKR_OK,
            "C_Initialize with an unreadable pReserved: {}",
            rv_name(rv)
        );
    });
}

#[test]
fn session_and_object_handles_are_not_reused_after_c_finalize_and_c_initialize() {
    let svc = Service::shared();
    isolated(|p| {
        let (token, cred) = svc.demo.credential("alice-p256");
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "C_Initialize",
        );
        let old = p.open(p.slot_of(&token.label));
        let old_cert = find_labelled(p, old, CKO_CERTIFICATE, &cred.label)[0];
        assert_rv(p.finalize(), CKR_OK, "C_Finalize");
        assert_rv(
            p.initialize_with_config(&svc.config_file()),
            CKR_OK,
            "C_Initialize again",
        );
        let new = p.open(p.slot_of(&token.label));
        let new_cert = find_labelled(p, new, CKO_CERTIFICATE, &cred.label)[0];
        // A stale handle must not silently reach the new session or object.
        assert_ne!(
            new, old,
            "a new session got the handle of a session of the earlier C_Initialize"
        );
        assert!(
            matches!(p.session_info(old), Err(CKR_SESSION_HANDLE_INVALID)),
            "the stale session handle {old} reaches a session"
        );
        assert_ne!(
            new_cert, old_cert,
            "an object got the handle of an object of the earlier C_Initialize"
        );
        assert!(
            matches!(
                p.attr(new, old_cert, CKA_LABEL),
                Err(CKR_OBJECT_HANDLE_INVALID)
            ),
            "the stale object handle {old_cert} reaches an object"
        );
    });
}
