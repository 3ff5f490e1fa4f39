//! Running the project's programs and the real clients as a person would: the `cloudtoken` tool
//! (enrolling a token with the password on standard input), commands with their output checked, an NSS
//! database with the module registered, a signed PDF checked with pdfsig and `openssl cms`, and what
//! `pkcs11-tool --list-objects` lists, and OpenSSL configured with pkcs11-provider over the module.
//!
//! Calls: paths.rs (the binaries), pdf.rs (the bytes a PDF signature covers).

use crate::paths::{cloudtoken_bin, csc_server_bin, module_path, test_prompt};
use crate::service::Service;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Debian's pkcs11-provider for OpenSSL 3 (package pkcs11-provider).
pub const PKCS11_PROVIDER: &str = "/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so";

/// Writes to `path` an OpenSSL configuration (for `OPENSSL_CONF`) that loads the default provider
/// and pkcs11-provider over the PKCS#11 module `module`, with the token's PIN from `pin_file` when
/// given; returns `path`.
pub fn pkcs11_provider_conf(path: &Path, module: &Path, pin_file: Option<&Path>) -> PathBuf {
    let pin_line = pin_file
        .map(|f| format!("pkcs11-module-token-pin = file:{}\n", f.display()))
        .unwrap_or_default();
    std::fs::write(
        path,
        format!(
            "openssl_conf = openssl_init\n\
             [openssl_init]\nproviders = provider_sect\n\
             [provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n\
             [default_sect]\nactivate = 1\n\
             [pkcs11_sect]\nmodule = {PKCS11_PROVIDER}\npkcs11-module-path = {}\n\
             {pin_line}activate = 1\n",
            module.display(),
        ),
    )
    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_path_buf()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a command with `stdin` as its standard input; returns its output.
pub fn run_with_input(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    // A program that fails before it reads its input closes the pipe: that is for the test to judge
    // from its output, not a failure to feed it.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write the input of {cmd:?}: {e}"
        );
    }
    child.wait_with_output().expect("wait")
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// `cloudtoken ARGS`, without any CLOUDTOKEN_* setting of the test process leaking in.
pub fn cloudtoken(args: &[&str]) -> Command {
    let mut c = Command::new(cloudtoken_bin());
    c.args(args)
        .env_remove("CLOUDTOKEN_CONFIG")
        .env_remove("CLOUDTOKEN_AGENT_SOCK");
    c
}

/// Panics with both streams unless the command succeeded.
pub fn expect_ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A token enrolled with `cloudtoken enroll` in a folder of its own.
pub struct Enrolled {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The test prompt's folder: `pin`, `state`, `csc-server`, and what it records in `questions`.
    pub prompt: PathBuf,
    pub label: String,
}

impl Enrolled {
    /// The questions the test prompt was asked, one map of fields per question.
    pub fn questions(&self) -> Vec<std::collections::HashMap<String, String>> {
        std::fs::read_to_string(self.prompt.join("questions"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                l.split('\t')
                    .filter_map(|f| f.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .collect()
    }
}

fn enrol_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cloudtoken-enrol-")
        .tempdir()
        .unwrap()
}

/// Enrols `user`'s account as token `label` with the password on standard input; `extra` are more
/// `enroll` arguments. A test-prompt folder answering with the user's PIN is prepared either way.
pub fn enroll(svc: &Service, user: &str, label: &str, extra: &[&str]) -> Enrolled {
    enroll_in(svc, user, label, enrol_dir(), extra)
}

/// `enroll` of a login-free token whose PIN and codes come from the shipped test prompt.
pub fn enroll_login_free(svc: &Service, user: &str, label: &str, extra: &[&str]) -> Enrolled {
    let dir = enrol_dir();
    let program = test_prompt().display().to_string();
    let prompt_arg = dir.path().join("prompt").display().to_string();
    let mut args = vec![
        "--mode",
        "login-free",
        "--prompt-command",
        &program,
        "--prompt-arg",
        &prompt_arg,
    ];
    args.extend_from_slice(extra);
    enroll_in(svc, user, label, dir, &args)
}

/// `enroll` into a given folder: the configuration goes to `DIR/config/cloudtoken.toml`, the test
/// prompt's folder is `DIR/prompt`.
pub fn enroll_in(
    svc: &Service,
    user: &str,
    label: &str,
    dir: tempfile::TempDir,
    extra: &[&str],
) -> Enrolled {
    let config = dir.path().join("config").join("cloudtoken.toml");
    let prompt = dir.path().join("prompt");
    std::fs::create_dir_all(&prompt).unwrap();
    std::fs::set_permissions(&prompt, std::fs::Permissions::from_mode(0o700)).unwrap();
    let demo = svc.demo.token_of(user);
    std::fs::write(prompt.join("pin"), format!("{}\n", demo.pin)).unwrap();
    std::fs::write(prompt.join("state"), format!("{}\n", svc.state.display())).unwrap();
    std::fs::write(
        prompt.join("csc-server"),
        format!("{}\n", csc_server_bin().display()),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let ca = svc.ca_file().display().to_string();
    let mut args = vec![
        "enroll",
        "--url",
        &svc.url,
        "--account",
        user,
        "--label",
        label,
        "--ca-file",
        &ca,
        "--config",
        &config_arg,
        "--password-stdin",
    ];
    args.extend_from_slice(extra);
    let out = run_with_input(&mut cloudtoken(&args), &format!("{}\n", demo.password));
    expect_ok("cloudtoken enroll", &out);
    Enrolled {
        dir,
        config,
        prompt,
        label: label.to_owned(),
    }
}

/// A new NSS database in `dir/nssdb` that trusts the demo CA and has the module registered by
/// `cloudtoken register --nss`. Returns "sql:DIR".
pub fn nss_db(dir: &Path, ca: &Path) -> String {
    let db_dir = dir.join("nssdb");
    std::fs::create_dir_all(&db_dir).unwrap();
    let db = format!("sql:{}", db_dir.display());
    expect_ok(
        "certutil -N",
        &run(Command::new("certutil").args(["-N", "-d", &db, "--empty-password"])),
    );
    expect_ok(
        "certutil -A",
        &run(Command::new("certutil")
            .args([
                "-A",
                "-d",
                &db,
                "-n",
                "cloudtoken demo CA",
                "-t",
                "CT,C,C",
                "-a",
                "-i",
            ])
            .arg(ca)),
    );
    let module = module_path().display().to_string();
    expect_ok(
        "cloudtoken register --nss",
        &run(&mut cloudtoken(&[
            "register", "--nss", &db, "--module", &module,
        ])),
    );
    db
}

/// Checks a signed PDF as a recipient would: pdfsig (valid signature, trusted certificate) and,
/// independently, `openssl cms -verify` of the embedded CMS over the bytes /ByteRange names.
pub fn verify_pdf(nssdb: &str, pdf: &Path, ca: &Path) -> Result<(), String> {
    let out = run(Command::new("pdfsig").args(["-nssdir", nssdb]).arg(pdf));
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    if !report.contains("Signature is Valid") || !report.contains("Certificate is Trusted") {
        return Err(format!(
            "pdfsig does not find a valid, trusted signature:\n{report}"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new("pdfsig")
        .current_dir(dir.path())
        .arg("-dump")
        .arg(pdf));
    let name = pdf.file_name().unwrap().to_string_lossy();
    let sig = dir.path().join(format!("{name}.sig0"));
    if !out.status.success() || !sig.exists() {
        return Err(format!(
            "pdfsig -dump wrote no signature: {}",
            text(&out.stderr)
        ));
    }
    let signed = crate::pdf::signed_bytes(&std::fs::read(pdf).unwrap())?;
    let content = dir.path().join("signed-bytes");
    std::fs::write(&content, signed).unwrap();
    cms_verify(&sig, &content, ca).map(drop)
}

/// `openssl cms -verify` of a DER CMS/PKCS#7 signature `p7s` over `content` with the chain to the CAs in
/// `ca`; returns the signer's certificate (DER).
pub fn cms_verify(p7s: &Path, content: &Path, ca: &Path) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().unwrap();
    let signer = dir.path().join("signer.pem");
    let out = run(Command::new("openssl")
        .args([
            "cms", "-verify", "-inform", "DER", "-binary", "-purpose", "any",
        ])
        .arg("-in")
        .arg(p7s)
        .arg("-content")
        .arg(content)
        .arg("-CAfile")
        .arg(ca)
        .arg("-signer")
        .arg(&signer)
        .args(["-out", "/dev/null"]));
    if !out.status.success() {
        return Err(format!(
            "openssl cms -verify failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        ));
    }
    let der = dir.path().join("signer.der");
    let out = run(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&signer)
        .arg("-out")
        .arg(&der));
    if !out.status.success() {
        return Err(format!("openssl x509: {}", text(&out.stderr)));
    }
    Ok(std::fs::read(der).unwrap())
}

/// An object in `pkcs11-tool --list-objects` output.
pub struct Listed {
    pub kind: String,
    pub label: String,
    pub id: String,
    pub mechanisms: Vec<String>,
}

/// Parses `pkcs11-tool --list-objects`: an unindented "<Kind> Object; ..." line starts each object.
pub fn parse_objects(listing: &str) -> Vec<Listed> {
    let mut objects: Vec<Listed> = Vec::new();
    for line in listing.lines() {
        if !line.starts_with(' ') && !line.starts_with('\t') {
            if let Some((kind, _)) = line.split_once(" Object") {
                objects.push(Listed {
                    kind: kind.to_owned(),
                    label: String::new(),
                    id: String::new(),
                    mechanisms: Vec::new(),
                });
            }
            continue;
        }
        let Some(obj) = objects.last_mut() else {
            continue;
        };
        let line = line.trim();
        if let Some(v) = line.strip_prefix("label:") {
            obj.label = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("ID:") {
            obj.id = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Allowed mechanisms:") {
            obj.mechanisms = v.split(',').map(|m| m.trim().to_owned()).collect();
        }
    }
    objects
}
