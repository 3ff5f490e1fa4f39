//! The Debian packages as a person installs them (issue #12): `examples/build-packages.sh` builds them
//! from the workspace's release build, `dpkg -i` installs both, and then, with nothing registered by
//! hand: p11-kit lists the module and the token of an account enrolled with the installed `cloudtoken`
//! against the installed `csc-server`, pkcs11-tool loads the module from Debian's PKCS#11 folder and lists
//! the token, `man -w` finds the pages, the completions and shared files are in place, `cloudtoken
//! --version` runs and `cloudtoken register` defaults to the installed module. `dpkg -r` then leaves no
//! file of either package behind.
//!
//! Needs root (it installs packages into the system) and runs `tests/run.sh`'s package list (dpkg-dev,
//! man-db, p11-kit, opensc, softhsm2). It refuses to run when cloudtoken or csc-server is installed
//! already: it would remove them. Alone, after `cargo build --release --workspace`:
//! `cargo test --release -p cloudtoken-tests --test package` (about 1 minute with the build done).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use support::prelude::{is_root, skip};
use support::tools::{expect_ok, run, run_with_input, text};
use support::{repo_root, Service};

const PACKAGES: [&str; 2] = ["cloudtoken", "csc-server"];
const MODULE: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/libcloudtoken.so";

fn installed(pkg: &str) -> bool {
    let out = run(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Abbrev}", pkg]));
    out.status.success() && text(&out.stdout).starts_with("ii")
}

/// Removes the packages again however the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run(Command::new("dpkg").arg("-r").args(PACKAGES));
    }
}

#[test]
fn the_packages_install_work_without_registration_and_remove_cleanly() {
    if !is_root() {
        skip("installing Debian packages needs root");
        return;
    }
    if cfg!(not(target_arch = "x86_64")) {
        skip("the test names the amd64 module folder");
        return;
    }
    for pkg in PACKAGES {
        assert!(
            !installed(pkg),
            "{pkg} is installed on this machine; this test installs and removes it, so remove it first \
             (dpkg -r cloudtoken csc-server)"
        );
    }

    let started = Instant::now();
    let out = run(Command::new("bash")
        .arg(repo_root().join("examples/build-packages.sh"))
        .current_dir(repo_root()));
    let debs: Vec<PathBuf> = expect_ok("examples/build-packages.sh", &out)
        .lines()
        .map(PathBuf::from)
        .collect();
    eprintln!(
        "build-packages.sh: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(debs.len(), 2, "two packages: {debs:?}");
    let version = env!("CARGO_PKG_VERSION");
    for (deb, pkg) in debs.iter().zip(PACKAGES) {
        assert_eq!(
            deb.file_name().unwrap().to_string_lossy(),
            format!("{pkg}_{version}_amd64.deb")
        );
        let fields = expect_ok(
            "dpkg-deb -f",
            &run(Command::new("dpkg-deb").arg("-f").arg(deb)),
        );
        assert!(fields.contains(&format!("Package: {pkg}\n")), "{fields}");
        assert!(!fields.contains("Multi-Arch:"), "{fields}");
    }

    let _installed = Installed;
    expect_ok("dpkg -i", &run(Command::new("dpkg").arg("-i").args(&debs)));
    let mut files = Vec::new();
    for pkg in PACKAGES {
        let listed = expect_ok("dpkg -L", &run(Command::new("dpkg").args(["-L", pkg])));
        files.extend(listed.lines().map(PathBuf::from));
    }
    for want in [
        MODULE,
        "/usr/share/p11-kit/modules/cloudtoken.module",
        "/usr/bin/cloudtoken",
        "/usr/bin/csc-server",
        "/usr/share/cloudtoken/cloudtoken.example.toml",
        "/usr/share/cloudtoken/prompt/desktop.sh",
        "/usr/share/cloudtoken/prompt/terminal.sh",
        "/usr/share/bash-completion/completions/cloudtoken",
        "/usr/share/zsh/vendor-completions/_cloudtoken",
        "/usr/share/fish/vendor_completions.d/cloudtoken.fish",
        "/usr/share/man/man5/cloudtoken.toml.5.gz",
        "/usr/share/man/man1/cloudtoken-enroll.1.gz",
    ] {
        assert!(
            files.iter().any(|f| f == Path::new(want)),
            "the package lacks {want}"
        );
        assert!(Path::new(want).exists(), "{want} is not on disk");
    }

    // The installed tool and service: enrol alice as a person would, with the password typed once.
    let version_line = expect_ok(
        "cloudtoken --version",
        &run(Command::new("cloudtoken").arg("--version")),
    );
    assert_eq!(version_line.trim(), format!("cloudtoken {version}"));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    expect_ok(
        "csc-server init",
        &run(Command::new("/usr/bin/csc-server")
            .args(["init", "--state"])
            .arg(&state)),
    );
    // The support crate's service, started from the installed program (it reads CSC_SERVER_BIN).
    std::env::set_var("CSC_SERVER_BIN", "/usr/bin/csc-server");
    let svc = Service::serve(&state);
    let alice = svc.demo.token_of("alice");
    let config = dir.path().join("config/cloudtoken.toml");
    let enrolled = run_with_input(
        Command::new("/usr/bin/cloudtoken")
            .args([
                "enroll",
                "--url",
                &svc.url,
                "--account",
                "alice",
                "--label",
                "Alice Packaged",
            ])
            .arg("--ca-file")
            .arg(state.join("ca.pem"))
            .arg("--config")
            .arg(&config)
            .arg("--password-stdin")
            .env_remove("CLOUDTOKEN_CONFIG"),
        &format!("{}\n", alice.password),
    );
    expect_ok("cloudtoken enroll", &enrolled);

    // p11-kit finds the module through the package's module file: nothing was registered by hand.
    let modules = expect_ok(
        "p11-kit list-modules",
        &run(Command::new("p11-kit")
            .arg("list-modules")
            .env("CLOUDTOKEN_CONFIG", &config)),
    );
    // "cloudtoken: libcloudtoken.so" and its indented lines (library, tokens).
    let ours: String = modules
        .lines()
        .skip_while(|l| !l.starts_with("cloudtoken: "))
        .take_while(|l| l.starts_with("cloudtoken: ") || l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !ours.is_empty(),
        "p11-kit does not list cloudtoken:\n{modules}"
    );
    assert!(
        ours.contains("token: Alice Packaged"),
        "no token in p11-kit's listing:\n{ours}"
    );
    assert!(ours.contains("manufacturer: cloudtoken"), "{ours}");

    let slots = expect_ok(
        "pkcs11-tool -L",
        &run(Command::new("pkcs11-tool")
            .args(["--module", MODULE, "-L"])
            .env("CLOUDTOKEN_CONFIG", &config)),
    );
    assert!(
        slots.contains("token label        : Alice Packaged"),
        "{slots}"
    );
    let objects = expect_ok(
        "pkcs11-tool --list-objects",
        &run(Command::new("pkcs11-tool")
            .args(["--module", MODULE, "--list-objects", "--type", "cert"])
            .env("CLOUDTOKEN_CONFIG", &config)),
    );
    assert!(objects.contains("Alice Example (P-256)"), "{objects}");
    svc.stop();

    for page in ["cloudtoken", "cloudtoken-register", "cloudtoken.toml"] {
        let found = expect_ok("man -w", &run(Command::new("man").args(["-w", page])));
        assert!(
            found.trim().starts_with("/usr/share/man/"),
            "man -w {page}: {found}"
        );
    }
    let rendered = expect_ok(
        "man cloudtoken.toml",
        &run(Command::new("man")
            .args(["-P", "cat", "5", "cloudtoken.toml"])
            .env("MANWIDTH", "100")),
    );
    assert!(rendered.contains("refresh_token_file"), "{rendered}");

    // Without --module, register names the installed module.
    let reg = dir.path().join("modules");
    expect_ok(
        "cloudtoken register",
        &run(Command::new("/usr/bin/cloudtoken")
            .args(["register", "--p11-kit", "--modules-dir"])
            .arg(&reg)),
    );
    let file = std::fs::read_to_string(reg.join("cloudtoken.module")).unwrap();
    assert!(file.contains(&format!("\nmodule: {MODULE}\n")), "{file}");

    expect_ok(
        "dpkg -r",
        &run(Command::new("dpkg").arg("-r").args(PACKAGES)),
    );
    for pkg in PACKAGES {
        assert!(!installed(pkg), "{pkg} is still installed");
    }
    let left: Vec<&PathBuf> = files.iter().filter(|f| f.exists() && !f.is_dir()).collect();
    assert!(left.is_empty(), "files left after dpkg -r: {left:?}");
    // Folders stay only when another installed package owns them too.
    for d in files.iter().filter(|f| f.is_dir()) {
        let owners = run(Command::new("dpkg").arg("-S").arg(d));
        assert!(
            owners.status.success() || std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()),
            "{} is left behind, empty and owned by no package",
            d.display()
        );
    }
}
