//! A CSC service nobody here wrote (issue 9): certomancer-csc-dummy 0.4.2 (PyPI, the CSC test server
//! of pyHanko's author: CSC v1 on plain HTTP, no sign-in, `authMode` implicit), installed by
//! tests/run.sh into `<target>/certomancer-venv`. This test writes a certomancer configuration (a test
//! root and RSA-2048, EC P-256 and EC P-384 signers, keys made by openssl), starts the server twice
//! (SCAL 1 and SCAL 2: SADs bound to the hashes), and has pkcs11-tool and OpenSSL's pkcs11-provider sign
//! through the module with a token of `service_auth = "none"`, `allow_loopback_http = true`,
//! `api = "v1"`, `mode = "login-free"`: no login anywhere. Every certificate is verified by openssl against the root
//! certomancer itself wrote out (`mass-summon`), every signature against the certificate's key.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::module_path;
use support::paths::target_dir;
use support::prelude::*;

use support::tools::{pkcs11_provider_conf, PKCS11_PROVIDER as PROVIDER};

fn venv_bin(name: &str) -> PathBuf {
    target_dir().join("certomancer-venv").join("bin").join(name)
}

#[track_caller]
fn ok_run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SIGNERS: [(&str, &str, &[&str]); 3] = [
    (
        "signer-rsa",
        "Signer RSA-2048",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    ),
    (
        "signer-p256",
        "Signer P-256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ),
    (
        "signer-p384",
        "Signer P-384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    ),
];

/// certomancer's configuration in `dir` (keys in `dir/keys`), and the root it writes out.
fn write_certomancer(dir: &Path) -> (PathBuf, PathBuf) {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let root_gen: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
    let mut entities = String::from("      root:\n        common-name: Test Root CA\n");
    let mut key_lines = String::from("      root:\n        path: root.key.pem\n");
    let validity =
        "        validity:\n          valid-from: \"2020-01-01T00:00:00+0000\"\n          \
                    valid-to: \"2045-01-01T00:00:00+0000\"\n";
    let mut certs = format!(
        "      root:\n        subject: root\n        issuer: root\n{validity}        extensions:\n          \
         - id: basic_constraints\n            critical: true\n            value:\n              ca: true\n          \
         - id: key_usage\n            critical: true\n            smart-value:\n              schema: key-usage\n              \
         params: [digital_signature, key_cert_sign, crl_sign]\n"
    );
    for (label, _, gen) in std::iter::once(("root", "", root_gen)).chain(SIGNERS) {
        ok_run(
            Command::new("openssl")
                .arg("genpkey")
                .args(gen)
                .arg("-out")
                .arg(keys.join(format!("{label}.key.pem"))),
        );
    }
    for (label, cn, _) in SIGNERS {
        entities.push_str(&format!("      {label}:\n        common-name: {cn}\n"));
        key_lines.push_str(&format!("      {label}:\n        path: {label}.key.pem\n"));
        certs.push_str(&format!(
            "      {label}:\n        subject: {label}\n        issuer: root\n{validity}        extensions:\n          \
             - id: key_usage\n            critical: true\n            smart-value:\n              schema: key-usage\n              \
             params: [digital_signature, non_repudiation]\n"
        ));
    }
    let yaml = format!(
        "external-url-prefix: \"http://127.0.0.1\"\nkeysets:\n  testca:\n    path-prefix: keys\n    keys:\n{key_lines}\
         pki-architectures:\n  testca:\n    keyset: testca\n    entity-defaults:\n      country-name: DE\n      \
         organization-name: cloudtoken certomancer test\n    entities:\n{entities}    certs:\n{certs}"
    );
    let config = dir.join("certomancer.yml");
    std::fs::write(&config, yaml).unwrap();
    let out = dir.join("summoned");
    ok_run(
        Command::new(venv_bin("certomancer"))
            .arg("--config")
            .arg(&config)
            .args(["mass-summon", "--flat", "--no-pfx", "testca"])
            .arg(&out),
    );
    (config, out.join("root.cert.pem"))
}

/// A running certomancer-csc-dummy; stopped when dropped.
struct Dummy {
    child: Child,
    url: String,
}

impl Drop for Dummy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_dummy(config: &Path, scal: u8, log: &Path) -> Dummy {
    let port = free_port();
    let mut cmd = Command::new(venv_bin("certomancer-csc"));
    cmd.arg(config)
        .arg(port.to_string())
        .arg(scal.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    support::service::die_with_parent(&mut cmd);
    let child = cmd.spawn().expect("start certomancer-csc");
    let dummy = Dummy {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(
                s,
                "GET /info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return dummy;
            }
        }
        assert!(
            Instant::now() < until,
            "certomancer-csc did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn pkcs11_tool(token: &str) -> Command {
    let mut c = Command::new("pkcs11-tool");
    c.arg("--module")
        .arg(module_path())
        .args(["--token-label", token]);
    c
}

/// The signer's certificate read through the module, checked against the root; returns its public key.
fn checked_public_key(dir: &Path, token: &str, label: &str, root: &Path) -> PathBuf {
    let file = |ext: &str| dir.join(format!("{token}-{label}.{ext}").replace(['/', ' '], "_"));
    let der = file("der");
    ok_run(
        pkcs11_tool(token)
            .args(["--read-object", "--type", "cert", "--label", label, "-o"])
            .arg(&der),
    );
    let pem = file("pem");
    ok_run(
        Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(&der)
            .arg("-out")
            .arg(&pem),
    );
    let verified = ok_run(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(root)
            .arg(&pem),
    );
    assert!(verified.contains(": OK"), "{verified}");
    let public = file("pub");
    ok_run(
        Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&public),
    );
    public
}

/// The CKA_ID of the private key labelled `label` in pkcs11-tool's listing (pkcs11-tool picks the key
/// to sign with by its ID, not its label).
fn key_id(listing: &str, label: &str) -> String {
    let mut lines = listing.lines().map(str::trim);
    while let Some(l) = lines.next() {
        if l.strip_prefix("label:").map(str::trim) == Some(label) {
            if let Some(id) = lines.next().and_then(|l| l.strip_prefix("ID:")) {
                return id.trim().to_owned();
            }
        }
    }
    panic!("no private key labelled {label}:\n{listing}")
}

/// Signs `input` with pkcs11-tool and `mechanism` (extra arguments `args`), returns the signature.
fn tool_sign(
    dir: &Path,
    token: &str,
    (label, id): (&str, &str),
    mechanism: &str,
    args: &[&str],
    input: &Path,
) -> PathBuf {
    let sig = dir.join(format!("{token}-{label}-{mechanism}.sig").replace(['/', ' '], "_"));
    ok_run(
        pkcs11_tool(token)
            .args(["--sign", "--id", id, "--mechanism", mechanism])
            .args(args)
            .arg("-i")
            .arg(input)
            .arg("-o")
            .arg(&sig),
    );
    sig
}

fn verify_dgst(public: &Path, digest: &str, sig: &Path, data: &Path) {
    let out = ok_run(
        Command::new("openssl")
            .args(["dgst", digest, "-verify"])
            .arg(public)
            .arg("-signature")
            .arg(sig)
            .arg(data),
    );
    assert!(out.contains("Verified OK"), "{out}");
}

fn verify_pkeyutl(public: &Path, sig: &Path, hash: &Path, opts: &[&str]) {
    let out = ok_run(
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(public)
            .arg("-sigfile")
            .arg(sig)
            .arg("-in")
            .arg(hash)
            .args(opts.iter().flat_map(|o| ["-pkeyopt", o])),
    );
    assert!(out.contains("Signature Verified Successfully"), "{out}");
}

fn sha(dir: &Path, name: &str, bits: u32, data: &Path) -> PathBuf {
    let out = dir.join(name);
    ok_run(
        Command::new("openssl")
            .args(["dgst", &format!("-sha{bits}"), "-binary", "-out"])
            .arg(&out)
            .arg(data),
    );
    out
}

/// The pkcs11: URI of the token's private key `label`, for pkcs11-provider.
fn key_uri(token: &str, label: &str) -> String {
    let enc = |s: &str| s.replace(' ', "%20").replace('/', "%2F");
    format!(
        "pkcs11:token={};object={};type=private",
        enc(token),
        enc(label)
    )
}

#[test]
fn certomancer_csc_dummy_signs_through_the_module_scal1_and_scal2() {
    if !venv_bin("certomancer-csc").exists() {
        skip(&format!(
            "{} is missing: tests/run.sh installs certomancer-csc-dummy into {}",
            venv_bin("certomancer-csc").display(),
            target_dir().join("certomancer-venv").display()
        ));
        return;
    }
    for tool in ["pkcs11-tool", "openssl"] {
        assert!(
            Command::new(tool).arg("--help").output().is_ok(),
            "{tool} is missing: tests/run.sh installs it (tests/interop/install-packages.sh)"
        );
    }
    assert!(
        Path::new(PROVIDER).exists(),
        "{PROVIDER} is missing: apt-get install pkcs11-provider"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (config, root) = write_certomancer(d);
    let scal1 = start_dummy(&config, 1, &d.join("scal1.log"));
    let scal2 = start_dummy(&config, 2, &d.join("scal2.log"));
    let token = |label: &str, url: &str| {
        format!(
            "[[token]]\nlabel = {label:?}\nurl = {url:?}\nallow_loopback_http = true\napi = \"v1\"\n\
             service_auth = \"none\"\nmode = \"login-free\"\n"
        )
    };
    let tokens = [
        token("Certomancer SCAL1", &scal1.url),
        token("Certomancer SCAL2", &scal2.url),
    ];
    let module_log = d.join("module.log");
    let cfg = write_config(d, "info", &module_log, &tokens);
    // pkcs11-tool and openssl load the module, which reads this configuration.
    std::env::set_var("CLOUDTOKEN_CONFIG", &cfg);
    let cnf = pkcs11_provider_conf(&d.join("openssl.cnf"), &module_path(), None);
    let data = d.join("document.txt");
    std::fs::write(&data, b"A document signed through certomancer-csc-dummy.\n").unwrap();
    let h256 = sha(d, "document.sha256", 256, &data);
    let h384 = sha(d, "document.sha384", 384, &data);

    let mut signed = 0;
    for t in ["Certomancer SCAL1", "Certomancer SCAL2"] {
        // No login: the certificates and keys are there, and the keys sign.
        let listing = ok_run(pkcs11_tool(t).args(["--list-objects", "--type", "privkey"]));
        for (label, _, _) in SIGNERS {
            // certomancer's credentials have no description: the module names keys by credential ID.
            let id = format!("testca/{label}");
            let cn = id.as_str();
            let key = (cn, key_id(&listing, cn));
            let key = (key.0, key.1.as_str());
            let public = checked_public_key(d, t, cn, &root);
            if label.contains("rsa") {
                let sig = tool_sign(d, t, key, "SHA256-RSA-PKCS", &[], &data);
                verify_dgst(&public, "-sha256", &sig, &data);
                let sig = tool_sign(
                    d,
                    t,
                    key,
                    "RSA-PKCS-PSS",
                    &["--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA256"],
                    &h256,
                );
                verify_pkeyutl(
                    &public,
                    &sig,
                    &h256,
                    &[
                        "digest:sha256",
                        "rsa_padding_mode:pss",
                        "rsa_pss_saltlen:auto",
                    ],
                );
                signed += 2;
            } else {
                let hash = if label.contains("384") { &h384 } else { &h256 };
                let sig = tool_sign(d, t, key, "ECDSA", &["--signature-format", "openssl"], hash);
                verify_pkeyutl(&public, &sig, hash, &[]);
                let sig = tool_sign(
                    d,
                    t,
                    key,
                    "ECDSA-SHA384",
                    &["--signature-format", "openssl"],
                    &data,
                );
                verify_dgst(&public, "-sha384", &sig, &data);
                signed += 2;
            }
            // OpenSSL through pkcs11-provider.
            let sig = d.join(format!("{t}-{cn}-provider.sig").replace(['/', ' '], "_"));
            ok_run(
                Command::new("openssl")
                    .env("OPENSSL_CONF", &cnf)
                    .args(["dgst", "-sha256", "-sign", &key_uri(t, cn), "-out"])
                    .arg(&sig)
                    .arg(&data),
            );
            verify_dgst(&public, "-sha256", &sig, &data);
            signed += 1;
        }
    }
    // The SCAL 2 server answers 400 to an authorization without the hashes, so its signatures above
    // show that the module bound each SAD to its hash.
    assert_eq!(signed, 2 * 3 * 3);
}
