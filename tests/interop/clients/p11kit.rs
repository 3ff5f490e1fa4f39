//! p11-kit: cloudtoken registered by a `.module` file (the configuration path passed as C_Initialize's
//! reserved argument, `x-init-reserved`), seen by `p11-kit list-modules`, and signing through
//! `p11-kit-proxy.so` with the process environment free of CLOUDTOKEN_CONFIG.

use super::{document, libp11, read};
use crate::case::{Case, Ctx, Login};
use crate::env::{Env, Key};
use crate::process::Cmd;
use crate::verify;
use std::path::{Path, PathBuf};
use support::Scheme;

const CLIENT: &str = "p11-kit";
pub const PROXY: &str = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";
const PREFIX: &str = "cloudtoken-interop-";

/// The `.module` file, removed when dropped. Root's p11-kit reads only the system folder, so as root the
/// file goes to /etc/pkcs11/modules (limited by `enable-in` to the two programs the suite runs there);
/// otherwise to a private `~/.config/pkcs11/modules` given to those programs as their HOME.
pub struct Registration {
    pub name: String,
    file: PathBuf,
    /// `HOME` for the p11-kit processes, when the registration is per user.
    home: Option<PathBuf>,
    created_system_dirs: Vec<PathBuf>,
    /// Root's registrations are seen by every p11-kit process of the computer: another run of this
    /// suite meanwhile would show its own service's "Alice Example" to our pkcs11-tool (and ours to
    /// its), whose PIN is not ours. Runs as root take turns while registered.
    _suite_lock: Option<std::fs::File>,
}

/// As root, an exclusive lock on a file shared by every run of this suite, held until dropped.
fn system_lock() -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/cloudtoken-interop-p11-kit.lock")
        .expect("open the p11-kit registration lock file");
    // SAFETY: flock on a descriptor this function owns; blocks until other runs release it.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "lock the p11-kit registration: {}",
        std::io::Error::last_os_error()
    );
    Some(file)
}

impl Registration {
    /// The registration of the demo configuration, for `pkcs11-tool` and `p11-kit`.
    pub fn new(env: &Env) -> Registration {
        let lock = system_lock();
        let mut reg = Registration::of(env, "", &env.svc.config_file(), "pkcs11-tool, p11-kit");
        reg._suite_lock = lock;
        reg
    }

    /// A registration named with `variant` that gives `config` to the module, enabled in the programs
    /// `enable_in` only: two registrations of the same tokens must not both reach one program (it would
    /// see every token twice).
    fn of(env: &Env, variant: &str, config: &Path, enable_in: &str) -> Registration {
        let name = format!("{PREFIX}{}{variant}", std::process::id());
        // SAFETY: geteuid cannot fail and touches no memory.
        let root = unsafe { libc::geteuid() } == 0;
        let (dir, home) = if root {
            (PathBuf::from("/etc/pkcs11/modules"), None)
        } else {
            let home = env.work.join(format!("p11-kit-home{variant}"));
            (home.join(".config/pkcs11/modules"), Some(home))
        };
        let mut created_system_dirs = Vec::new();
        if root {
            for d in ["/etc/pkcs11", "/etc/pkcs11/modules"] {
                if !Path::new(d).exists() {
                    created_system_dirs.push(PathBuf::from(d));
                }
            }
            remove_stale(&dir);
        }
        std::fs::create_dir_all(&dir).expect("create p11-kit module folder");
        let file = dir.join(format!("{name}.module"));
        std::fs::write(
            &file,
            format!(
                "# Written by cloudtoken's interop suite (pid {}); removed when it ends.\n\
                 module: {}\ncritical: no\nenable-in: {enable_in}\n\
                 x-init-reserved: cloudtoken_conf={}\n",
                std::process::id(),
                env.module.display(),
                config.display()
            ),
        )
        .expect("write .module file");
        Registration {
            name,
            file,
            home,
            created_system_dirs,
            _suite_lock: None,
        }
    }

    /// A command that sees the registration and not CLOUDTOKEN_CONFIG.
    fn cmd(&self, ctx: &Ctx, program: &str) -> Cmd {
        let mut c = Cmd::new(program)
            .current_dir(&ctx.dir)
            .env_remove("CLOUDTOKEN_CONFIG");
        if let Some(home) = &self.home {
            c = c
                .env("HOME", home)
                .env("XDG_CONFIG_HOME", home.join(".config"));
        }
        c
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        for d in self.created_system_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Files of earlier runs that were killed before they could clean up.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // cloudtoken-interop-PID.module, cloudtoken-interop-PID-VARIANT.module
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_suffix(".module"))
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if !pid.parse::<i32>().is_ok_and(process_exists) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn cases(env: &Env, reg: &std::sync::Arc<Registration>) -> Vec<Case> {
    let r = reg.clone();
    let mut cases = vec![Case::new(
        CLIENT,
        "list-modules (.module file)",
        None,
        Login::None,
        move |env, ctx| list(env, ctx, &r),
    )];
    for k in 0..env.keys.len() {
        let r = reg.clone();
        cases.push(Case::new(
            CLIENT,
            "sign via p11-kit-proxy.so",
            Some(k),
            Login::Passcode,
            move |env, ctx| sign(env, ctx, &env.keys[k], &r),
        ));
    }
    // Each of these rows registers its own configuration (its own prompt folder) for openssl; two at
    // once would both show "Alice Example" to each openssl, so they hold every credential's queue.
    let all: Vec<usize> = (0..env.keys.len()).collect();
    for k in 0..env.keys.len() {
        cases.push(
            Case::new(
                CLIENT,
                "openssl+libp11 via p11-kit-proxy.so",
                Some(k),
                Login::LoginFree,
                move |env, ctx| sign_login_free(env, ctx, &env.keys[k]),
            )
            .also_locking(all.clone()),
        );
    }
    cases
}

fn list(env: &Env, ctx: &Ctx, reg: &Registration) -> Result<String, String> {
    let out = ctx.run(reg.cmd(ctx, "p11-kit").arg("list-modules")).ok()?;
    let text = out.stdout.clone();
    let Some(section) = text.split(&format!("{}: ", reg.name)).nth(1) else {
        return Err(format!(
            "p11-kit does not list the module {}\n{}",
            reg.name,
            out.describe()
        ));
    };
    // The module's section ends where the next unindented module line starts.
    let section: String = section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with(' ') || l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    for token in &env.svc.demo.tokens {
        if !section.contains(&format!("token: {}", token.label)) {
            return Err(format!(
                "p11-kit shows no token {} for {}:\n{section}",
                token.label, reg.name
            ));
        }
    }
    Ok(format!(
        "{} registered, {} tokens listed",
        reg.name,
        env.svc.demo.tokens.len()
    ))
}

fn sign(env: &Env, ctx: &Ctx, key: &Key, reg: &Registration) -> Result<String, String> {
    let (message, doc) = document(ctx, "pkcs11-tool through p11-kit-proxy.so", key);
    let sig = ctx.path("sig.bin");
    let (mech, scheme) = if key.is_rsa {
        (
            format!("{}-RSA-PKCS-PSS", key.hash.upper()),
            Scheme::RsaPss {
                salt_len: key.hash.len(),
            },
        )
    } else {
        (format!("ECDSA-{}", key.hash.upper()), Scheme::EcdsaRaw)
    };
    let passcode = env.passcode(key)?;
    ctx.run(
        reg.cmd(ctx, "pkcs11-tool")
            .args([
                "--module",
                PROXY,
                "--token-label",
                &key.token,
                "--login",
                "--pin",
                &passcode,
            ])
            .args(["--sign", "--id", &key.id, "-m", &mech, "--input-file"])
            .arg(&doc)
            .arg("--output-file")
            .arg(&sig),
    )
    .ok()?;
    verify::signature(key, key.hash, &message, &read(&sig)?, scheme).map(|v| format!("{mech}: {v}"))
}

/// A login-free signature through the proxy: the row's configuration registered for `openssl` only, and
/// the libp11 engine loading `p11-kit-proxy.so` (its default module) with a URI without PIN.
fn sign_login_free(env: &Env, ctx: &Ctx, key: &Key) -> Result<String, String> {
    let name = format!(
        "-{}",
        ctx.dir.file_name().unwrap_or_default().to_string_lossy()
    );
    let name: String = name.chars().take(24).collect();
    let reg = Registration::of(env, &name, &ctx.config, "openssl");
    let (message, doc) = document(ctx, "openssl through p11-kit-proxy.so", key);
    let sig = ctx.path("sig.bin");
    let scheme = if key.is_rsa {
        Scheme::RsaPkcs1
    } else {
        Scheme::EcdsaDer
    };
    ctx.run(
        reg.cmd(ctx, "openssl")
            .env("OPENSSL_CONF", libp11::openssl_cnf(ctx, Path::new(PROXY)))
            .arg("dgst")
            .arg(format!("-{}", key.hash.openssl()))
            .args(["-engine", "pkcs11", "-keyform", "engine", "-sign"])
            .arg(key.uri(None))
            .arg("-out")
            .arg(&sig)
            .arg(&doc),
    )
    .ok()?;
    verify::signature(key, key.hash, &message, &read(&sig)?, scheme)
        .map(|v| format!("{} via {}: {v}", key.hash.openssl(), reg.name))
}
