//! The files the module reads and writes (issue 11, items 7 and 9): the configuration and secret files
//! are opened once and checked on the open handle, so that what is checked is what is read; a path that
//! is not a regular file is refused without blocking; log files are created readable by their owner
//! only.
//!
//! What can be observed from outside without a second user: (1) a race — the configuration's path is
//! switched, many times a second, between a file the module must refuse (writable by others) and one it
//! accepts, while the module initializes again and again: a check of one file and a read of the other
//! shows up as the refused file's tokens; (2) the system calls (strace): the path is opened exactly once
//! and never examined by name (stat, lstat, access), whose answer could describe another file than the
//! one opened; (3) a FIFO or folder in place of a file, run in a child under a deadline.

use cryptoki_sys::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::child::{in_child, Ending};
use support::config::mode_of;
use support::prelude::*;

/// The shared service's configuration with every token label prefixed by `prefix`, at `path`, `mode`.
fn config_copy(svc: &Service, path: &Path, prefix: &str, mode: u32) {
    let text = std::fs::read_to_string(svc.config_file())
        .unwrap()
        .replace("label = \"", &format!("label = \"{prefix} "));
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn configuration_swapped_between_check_and_read_is_never_loaded() {
    const ATTEMPTS: usize = 10_000;
    let svc = Service::shared();
    isolated(|p| {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        let evil = dir.path().join("evil.toml");
        config_copy(svc, &good, "Good", 0o600);
        // Writable by others: the module must refuse it (whoever can write it decides where the PIN goes).
        config_copy(svc, &evil, "Evil", 0o666);
        let path = dir.path().join("cloudtoken.toml");
        std::fs::hard_link(&good, &path).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, dir) = (stop.clone(), dir.path().to_path_buf());
            let (good, evil, path) = (good.clone(), evil.clone(), path.clone());
            std::thread::spawn(move || {
                let next = dir.join("next.toml");
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let from = if i.is_multiple_of(2) { &evil } else { &good };
                    let _ = std::fs::remove_file(&next);
                    std::fs::hard_link(from, &next).unwrap();
                    // Atomic: the path always names one of the two files.
                    std::fs::rename(&next, &path).unwrap();
                    i += 1;
                }
            })
        };
        let (mut evil_loaded, mut good_loaded, mut refused) = (0, 0, 0);
        let quiet = dir.path().join("module.log");
        for _ in 0..ATTEMPTS {
            let rv = with_env(&[("CLOUDTOKEN_LOG_FILE", Some(&quiet))], || {
                p.initialize_with_config(&path)
            });
            match rv {
                CKR_OK => {
                    let labels = ok(p.token_labels(), "token labels");
                    if labels.iter().any(|l| l.starts_with("Evil")) {
                        evil_loaded += 1;
                    } else {
                        good_loaded += 1;
                    }
                    assert_rv(p.finalize(), CKR_OK, "C_Finalize");
                }
                CKR_GENERAL_ERROR => refused += 1,
                rv => panic!("C_Initialize: {}", rv_name(rv)),
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(
            good_loaded > 0 && refused > 0,
            "the race did not happen (good {good_loaded}, refused {refused}): nothing was tested"
        );
        assert_eq!(
            evil_loaded, 0,
            "of {ATTEMPTS} C_Initialize calls, {evil_loaded} loaded the configuration others can write \
             ({good_loaded} the accepted one, {refused} refused)"
        );
    });
}

/// The system calls of a process that initializes the module on `config` and opens a session on the
/// first token (which reads its refresh token file): `strace -f` of the ignored helper below.
fn strace_of_a_first_session(config: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=%file,%desc", "-o"])
        .arg(&trace)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "first_session_helper",
            "--ignored",
            "--test-threads=1",
        ])
        .env("CT_CONFIG_UNDER_TRACE", config)
        .output()
        .expect("run strace (Debian package strace; tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "the traced helper failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::read_to_string(trace).unwrap()
}

/// Run under strace by `files_are_opened_once_and_checked_on_the_open_handle`.
#[test]
#[ignore = "helper run under strace by files_are_opened_once_and_checked_on_the_open_handle"]
fn first_session_helper() {
    let config = std::env::var_os("CT_CONFIG_UNDER_TRACE")
        .expect("a helper of files_are_opened_once_and_checked_on_the_open_handle");
    let p = p11();
    assert_rv(
        p.initialize_with_config(Path::new(&config)),
        CKR_OK,
        "C_Initialize",
    );
    let slot = ok(p.slots(), "slots")[0];
    let h = p.open(slot);
    assert_rv(p.close(h), CKR_OK, "C_CloseSession");
    assert_rv(p.finalize(), CKR_OK, "C_Finalize");
}

/// The system call of one line of `strace -f -o` output: the line without the leading process ID and
/// the padding after it (one or two spaces, depending on the strace version and the PID's width).
fn call_of(line: &str) -> &str {
    line.split_once(' ')
        .map_or(line, |(_, call)| call)
        .trim_start()
}

/// What the trace shows for `path`: the calls that name it, and whether its descriptor was examined.
fn calls_naming(trace: &str, path: &Path) -> (Vec<String>, bool) {
    let quoted = format!("\"{}\"", path.display());
    let naming: Vec<String> = trace
        .lines()
        .filter(|l| l.contains(&quoted))
        .map(|l| call_of(l).to_owned())
        .collect();
    // The descriptors the opens returned: "openat(AT_FDCWD, "PATH", ...) = 7".
    let fds: Vec<String> = naming
        .iter()
        .filter(|c| c.starts_with("open"))
        .filter_map(|c| c.rsplit_once("= ").map(|(_, fd)| fd.trim().to_owned()))
        .collect();
    let handle_checked = trace.lines().any(|l| {
        let call = call_of(l);
        fds.iter().any(|fd| {
            call.starts_with(&format!("fstat({fd},"))
                || call.starts_with(&format!("newfstatat({fd}, \"\""))
                || call.starts_with(&format!("statx({fd}, \"\""))
        })
    });
    (naming, handle_checked)
}

#[test]
fn files_are_opened_once_and_checked_on_the_open_handle() {
    let svc = Service::shared();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cloudtoken.toml");
    config_copy(svc, &config, "Traced", 0o600);
    let trace = strace_of_a_first_session(&config);
    let refresh = svc.refresh_token_file(&svc.demo.tokens[0].user);
    let mut problems = Vec::new();
    for (what, path) in [
        ("configuration", config.as_path()),
        ("refresh token file", &refresh),
    ] {
        let (naming, handle_checked) = calls_naming(&trace, path);
        let opens = naming.iter().filter(|c| c.starts_with("open")).count();
        let by_name: Vec<&String> = naming.iter().filter(|c| !c.starts_with("open")).collect();
        if opens != 1 || !by_name.is_empty() || !handle_checked {
            problems.push(format!(
                "{what} {}: opened {opens} times, examined by name in {by_name:?}, open handle \
                 checked: {handle_checked}",
                path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// C_Initialize on a configuration path that is `kind` (made by `make`), in a child under a deadline:
/// refused with CKR_GENERAL_ERROR, promptly.
fn non_regular_configuration_is_refused(kind: &str, make: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("cloudtoken.toml");
    make(&path);
    let conf = reserved_config(&path);
    isolated(|p| {
        let run = in_child(Duration::from_secs(10), |pipe| {
            let mut a = init_args(conf.as_ptr() as *mut std::ffi::c_void);
            pipe.say(&p.initialize(Some(&mut a)).to_string());
            0
        });
        assert_ne!(
            run.ending,
            Ending::TimedOut,
            "C_Initialize on a {kind} blocked for 10 s"
        );
        assert_eq!(run.ending, Ending::Exited(0), "C_Initialize on a {kind}");
        let rv: CK_RV = run.said.trim().parse().expect("the child's CK_RV");
        assert_rv(rv, CKR_GENERAL_ERROR, &format!("C_Initialize on a {kind}"));
    });
}

#[test]
fn configuration_that_is_a_fifo_is_refused_without_blocking() {
    non_regular_configuration_is_refused("FIFO", |path| {
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    });
}

#[test]
fn configuration_that_is_a_folder_is_refused() {
    non_regular_configuration_is_refused("folder", |path| {
        std::fs::create_dir(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    });
}

#[test]
fn log_file_is_created_readable_by_its_owner_only() {
    let svc = Service::shared();
    isolated(|p| {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("configured.log");
        // The service's configuration with its [log] section pointing at a file not there yet.
        let text = std::fs::read_to_string(svc.config_file()).unwrap();
        assert!(
            text.contains("[log]\n"),
            "the service's configuration has a [log] section"
        );
        let config = dir.path().join("cloudtoken.toml");
        write_private(
            &config,
            &text.replacen(
                "[log]\n",
                &format!("[log]\nfile = {:?}\n", log.display().to_string()),
                1,
            ),
        );
        let env_log = dir.path().join("from-environment.log");
        for (what, file, vars) in [
            ("[log] file", &log, vec![("CLOUDTOKEN_LOG_FILE", None)]),
            (
                "CLOUDTOKEN_LOG_FILE",
                &env_log,
                vec![("CLOUDTOKEN_LOG_FILE", Some(env_log.as_path()))],
            ),
        ] {
            with_env(&vars, || {
                assert_rv(p.initialize_with_config(&config), CKR_OK, "C_Initialize");
                let mut info = CK_SLOT_INFO::default();
                // SAFETY: valid out pointer; an unknown slot makes the module write a log line.
                unsafe { (p.f.C_GetSlotInfo.unwrap())(0x7fff_0000, &mut info) };
                assert_rv(p.finalize(), CKR_OK, "C_Finalize");
            });
            assert!(file.exists(), "{what}: the module wrote no log");
            assert_eq!(
                mode_of(file),
                0o600,
                "{what}: the log file's mode ({:o})",
                mode_of(file)
            );
        }
    });
}
