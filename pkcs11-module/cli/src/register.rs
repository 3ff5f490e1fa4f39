//! `cloudtoken register`: makes applications load the module — a p11-kit module file (GnuTLS, libp11's
//! default, p11-kit-proxy users) or an entry in an NSS database (Firefox, Thunderbird, LibreOffice,
//! poppler's pdfsig).

use crate::words::{Failure, Outcome};
use cloudtoken::config::RESERVED_PREFIX;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Where root's p11-kit (and every user's) reads module files; root ignores per-user files.
const SYSTEM_MODULES: &str = "/etc/pkcs11/modules";

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["p11_kit", "nss"])))]
pub struct Args {
    /// Write a p11-kit module file.
    #[arg(long)]
    p11_kit: bool,
    /// p11-kit: for every user of this computer (/etc/pkcs11/modules). The default for root.
    #[arg(long, requires = "p11_kit", conflicts_with = "user")]
    system: bool,
    /// p11-kit: for you only (~/.config/pkcs11/modules). The default for other users.
    #[arg(long, requires = "p11_kit")]
    user: bool,
    /// p11-kit: load the module only in these programs (p11-kit's `enable-in`; repeat for more).
    #[arg(long = "only-for", value_name = "PROGRAM", requires = "p11_kit")]
    only_for: Vec<String>,
    /// p11-kit: write the module file into this folder instead (packaging, tests).
    #[arg(long, requires = "p11_kit", conflicts_with_all = ["system", "user"])]
    modules_dir: Option<PathBuf>,
    /// Add the module to this NSS database, e.g. sql:$HOME/.pki/nssdb.
    #[arg(long, value_name = "sql:DIR")]
    nss: Option<String>,
    /// The module file (default: the installed one, /usr/lib/<multiarch>/pkcs11/libcloudtoken.so, else
    /// libcloudtoken.so next to this program).
    #[arg(long)]
    module: Option<PathBuf>,
    /// The name applications show for the module.
    #[arg(long, default_value = "cloudtoken")]
    name: String,
    /// p11-kit: a configuration file the module loads when started through this registration
    /// (instead of its search order). Not for NSS: NSS starts the module without registration
    /// parameters.
    #[arg(long, requires = "p11_kit")]
    config: Option<PathBuf>,
}

pub fn run(args: Args) -> Outcome<ExitCode> {
    if args.name.is_empty()
        || !args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Failure::new(
            "The registration name may use letters, digits, '-', '_' and '.' only.",
        ));
    }
    let module = module_path(args.module.as_deref())?;
    check_module(&module)?;
    let config = match &args.config {
        Some(c) => Some(std::fs::canonicalize(c).map_err(|e| {
            Failure(format!(
                "The configuration {} cannot be used: {e}.",
                c.display()
            ))
        })?),
        None => None,
    };
    if args.p11_kit {
        p11_kit(&args, &module, config.as_deref())?;
    }
    if let Some(db) = &args.nss {
        nss(db, &args.name, &module)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the Debian package installs the module: Debian's PKCS#11 module folder.
fn installed_module() -> Option<PathBuf> {
    let multiarch = debian_multiarch()?;
    Some(PathBuf::from(format!(
        "/usr/lib/{multiarch}/pkcs11/libcloudtoken.so"
    )))
}

/// Debian's multiarch tuple for the architecture this program was built for (the module must match the
/// applications, which run on the same architecture as this program).
fn debian_multiarch() -> Option<&'static str> {
    let tuple = if cfg!(target_arch = "x86_64") {
        "x86_64-linux-gnu"
    } else if cfg!(target_arch = "aarch64") {
        "aarch64-linux-gnu"
    } else if cfg!(target_arch = "x86") {
        "i386-linux-gnu"
    } else if cfg!(all(target_arch = "arm", target_abi = "eabihf")) {
        "arm-linux-gnueabihf"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "powerpc64le-linux-gnu"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64-linux-gnu"
    } else if cfg!(target_arch = "s390x") {
        "s390x-linux-gnu"
    } else {
        return None;
    };
    Some(tuple)
}

/// `--module`, else the installed module, else libcloudtoken.so in this program's folder (a build tree).
fn module_path(given: Option<&Path>) -> Outcome<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => installed_module()
            .filter(|p| p.exists())
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(|d| d.join("libcloudtoken.so")))
                    .filter(|p| p.exists())
            })
            .ok_or_else(|| {
                Failure::new(
                    "The module libcloudtoken.so is neither installed (Debian's PKCS#11 module folder) nor \
                     next to this program; give its place with --module.",
                )
            })?,
    };
    std::fs::canonicalize(&path).map_err(|e| {
        Failure(format!(
            "The module {} cannot be used: {e}.",
            path.display()
        ))
    })
}

/// Loads the file the way applications will and looks for the PKCS#11 entry point, so that a wrong
/// file is reported here rather than by every application later.
fn check_module(path: &Path) -> Outcome<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Failure::new("The module path contains a NUL byte."))?;
    // SAFETY: dlopen gets a NUL-terminated path; the handle is only used for dlsym and closed here.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(Failure(format!(
            "{} cannot be loaded as a shared library; is it libcloudtoken.so?",
            path.display()
        )));
    }
    // SAFETY: a valid handle from dlopen and a NUL-terminated symbol name.
    let symbol = unsafe { libc::dlsym(handle, c"C_GetFunctionList".as_ptr()) };
    // SAFETY: the handle came from dlopen and nothing from the library is used after this.
    unsafe { libc::dlclose(handle) };
    if symbol.is_null() {
        return Err(Failure(format!(
            "{} is not a PKCS#11 module (no C_GetFunctionList).",
            path.display()
        )));
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn user_modules_dir() -> Outcome<PathBuf> {
    cloudtoken::config::user_config_dir()
        .map(|d| d.join("pkcs11").join("modules"))
        .ok_or_else(|| {
            Failure::new("There is no home folder for a per-user registration; use --system.")
        })
}

/// The `.module` file p11-kit reads.
fn module_file_text(module: &Path, config: Option<&Path>, only_for: &[String]) -> String {
    let mut text = format!(
        "# Registered by `cloudtoken register --p11-kit`.\nmodule: {}\n\
         # Applications keep working when the signing service cannot be reached.\ncritical: no\n",
        module.display()
    );
    if !only_for.is_empty() {
        text.push_str(&format!("enable-in: {}\n", only_for.join(", ")));
    }
    if let Some(c) = config {
        text.push_str(&format!(
            "# The module's configuration, passed to C_Initialize.\nx-init-reserved: {RESERVED_PREFIX}{}\n",
            c.display()
        ));
    }
    text
}

fn p11_kit(args: &Args, module: &Path, config: Option<&Path>) -> Outcome<()> {
    let root = is_root();
    let (dir, scope) = if let Some(d) = &args.modules_dir {
        (d.clone(), "in the folder given")
    } else if args.user {
        if root {
            return Err(Failure::new(
                "p11-kit does not read per-user module files for root; register for the system with \
                 --system (or run this as the user who signs).",
            ));
        }
        (user_modules_dir()?, "for you")
    } else if args.system || root {
        (
            PathBuf::from(SYSTEM_MODULES),
            "for every user of this computer",
        )
    } else {
        (user_modules_dir()?, "for you")
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dir)
        .map_err(|e| {
            Failure(format!(
                "The folder {} cannot be created: {e}.",
                dir.display()
            ))
        })?;
    let file = dir.join(format!("{}.module", args.name));
    let tmp = dir.join(format!(".{}.module.{}", args.name, std::process::id()));
    if let Some(bad) = args
        .only_for
        .iter()
        .find(|p| p.is_empty() || p.contains([',', '\n', '/']))
    {
        return Err(Failure(format!(
            "--only-for takes a program name such as firefox, not {bad:?}."
        )));
    }
    let text = module_file_text(module, config, &args.only_for);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &file)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " Registering for every user needs root (sudo); --user registers for you only."
        } else {
            ""
        };
        return Err(Failure(format!(
            "The p11-kit module file {} cannot be written: {e}.{hint}",
            file.display()
        )));
    }
    println!(
        "Registered with p11-kit {scope}: {} (module {}).",
        file.display(),
        module.display()
    );
    if args.modules_dir.is_none() {
        println!("Check with: p11-kit list-modules");
    }
    Ok(())
}

fn nss(db: &str, name: &str, module: &Path) -> Outcome<()> {
    let dir = db.strip_prefix("sql:").unwrap_or(db);
    if !Path::new(dir).join("cert9.db").exists() {
        return Err(Failure(format!(
            "There is no NSS database in {dir}. Create one with: certutil -N -d sql:{dir} --empty-password"
        )));
    }
    let db = format!("sql:{dir}");
    let modutil = |extra: &[&str]| -> Outcome<std::process::Output> {
        Command::new("modutil")
            .args(["-dbdir", &db])
            .args(extra)
            .output()
            .map_err(|e| {
                Failure(format!(
                    "NSS's modutil could not be run ({e}); install it (Debian: apt-get install libnss3-tools)."
                ))
            })
    };
    // A module of that name may be there from an earlier registration: replace it.
    let listed = modutil(&["-list", name])?;
    if listed.status.success() {
        let out = modutil(&["-delete", name, "-force"])?;
        if !out.status.success() {
            return Err(Failure(format!(
                "The earlier registration \"{name}\" in {db} could not be removed: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            )));
        }
    }
    let libfile = module.display().to_string();
    let out = modutil(&["-add", name, "-libfile", &libfile, "-force"])?;
    if !out.status.success() {
        return Err(Failure(format!(
            "NSS did not accept the module: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    println!(
        "Registered in the NSS database {db} as \"{name}\" (module {}).",
        module.display()
    );
    println!("Check with: modutil -dbdir {db} -list");
    println!(
        "Applications using this database find the module's configuration through CLOUDTOKEN_CONFIG or \
         ~/.config/cloudtoken/cloudtoken.toml."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_file_names_the_module_and_optionally_the_config() {
        let t = module_file_text(Path::new("/opt/ct/libcloudtoken.so"), None, &[]);
        assert!(t.contains("\nmodule: /opt/ct/libcloudtoken.so\n"));
        assert!(t.contains("\ncritical: no\n"));
        assert!(!t.contains("x-init-reserved") && !t.contains("enable-in"));
        let t = module_file_text(
            Path::new("/opt/ct/libcloudtoken.so"),
            Some(Path::new("/etc/ct.toml")),
            &["p11-kit".into(), "firefox".into()],
        );
        assert!(t.contains("\nx-init-reserved: cloudtoken_conf=/etc/ct.toml\n"));
        assert!(t.contains("\nenable-in: p11-kit, firefox\n"));
    }

    #[test]
    fn a_file_that_is_not_a_module_is_refused() {
        let e = check_module(Path::new("/etc/hostname")).unwrap_err();
        assert!(e.0.contains("cannot be loaded"), "{e}");
        let libc_so = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
        if let Some(p) = libc_so {
            let e = check_module(p).unwrap_err();
            assert!(e.0.contains("not a PKCS#11 module"), "{e}");
        }
    }
}
