//! Real applications sign through a GlobalSign DSS token, each in processes of its own as a user runs
//! them, with the configuration the emulator's `init` wrote (login-free, identities shared between
//! the user's processes): every signature is verified by `openssl` against the emulator's demo CA.

use once_cell::sync::OnceCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::globalsign::{runtime_dir, Emulator};
use support::service::lasting;
use support::tools::{cms_verify, expect_ok, nss_db, run, text, verify_pdf};
use support::{module_path, openssl_verify, Scheme};

/// The emulator the client processes use, and the private folder through which they share an identity.
struct Clients {
    dss: Emulator,
    runtime: tempfile::TempDir,
}

fn clients() -> &'static Clients {
    static C: OnceCell<Clients> = OnceCell::new();
    C.get_or_init(|| {
        let c = lasting(|| Clients {
            dss: Emulator::start(&[], &[]),
            runtime: runtime_dir(),
        });
        // One process obtains the identity before the tests' processes start side by side: they share
        // it for its first five minutes (identity_renew_before_s of its ten).
        expect_ok("pkcs11-tool -O (the first identity)", &c.tool(&["-O"]));
        c
    })
}

impl Clients {
    /// Identities the emulator has issued so far.
    fn identities(&self) -> usize {
        self.dss
            .audit_events()
            .iter()
            .filter(|e| e["event"] == "identity" && e["outcome"] == "ok")
            .count()
    }
}

impl Clients {
    /// `program` with the module's configuration and the shared identity folder.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("CLOUDTOKEN_CONFIG", self.dss.config_file())
            .env("XDG_RUNTIME_DIR", self.runtime.path());
        c
    }

    fn tool(&self, args: &[&str]) -> Output {
        run(self
            .cmd("pkcs11-tool")
            .arg("--module")
            .arg(module_path())
            .args(["--token-label", &self.dss.demo.token_label])
            .args(args))
    }

    /// The identity's certificate as pkcs11-tool reads it (DER), checked against the demo root.
    fn certificate(&self, dir: &Path) -> Vec<u8> {
        let der = dir.join("cert.der");
        let pem = dir.join("cert.pem");
        expect_ok(
            "pkcs11-tool --read-object",
            &self.tool(&[
                "--read-object",
                "--type",
                "cert",
                "--label",
                self.label(),
                "--output-file",
                s(&der),
            ]),
        );
        expect_ok(
            "openssl x509",
            &run(Command::new("openssl").args([
                "x509",
                "-inform",
                "DER",
                "-in",
                s(&der),
                "-out",
                s(&pem),
            ])),
        );
        expect_ok(
            "openssl verify",
            &run(Command::new("openssl").args([
                "verify",
                "-CAfile",
                s(&self.dss.ca_file()),
                "-untrusted",
                s(&self.dss.file("issuing-ca.pem")),
                s(&pem),
            ])),
        );
        std::fs::read(&der).unwrap()
    }

    fn label(&self) -> &str {
        &self.dss.demo.common_name
    }

    /// `openssl cms -verify` of a DER CMS signature over `content`, chained to the demo root; returns
    /// the signer's certificate (DER).
    fn cms_signer(&self, p7s: &Path, content: &Path) -> Vec<u8> {
        cms_verify(p7s, content, &self.dss.ca_file()).unwrap()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// DER DigestInfo of a SHA-256 digest: what CKM_RSA_PKCS signs (RFC 8017 §9.2, note 1).
fn digest_info(digest: &[u8]) -> Vec<u8> {
    let prefix: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    [&prefix[..], digest].concat()
}

#[test]
fn pkcs11_tool_lists_the_identity_without_login_and_signs() {
    let c = clients();
    let identities = c.identities();
    let dir = tempfile::tempdir().unwrap();
    let listing = expect_ok("pkcs11-tool -O", &c.tool(&["-O"]));
    for object in [
        "Certificate Object",
        "Public Key Object; RSA 2048 bits",
        "Private Key Object; RSA",
        "Allowed mechanisms: RSA-PKCS,SHA256-RSA-PKCS",
    ] {
        assert!(
            listing.contains(object),
            "no {object} without a login:\n{listing}"
        );
    }
    for label in [
        c.label(),
        "cloudtoken demo DSS issuing CA",
        "cloudtoken demo DSS root CA",
    ] {
        assert!(
            listing.contains(&format!("label:      {label}")),
            "{label}:\n{listing}"
        );
    }
    let cert = c.certificate(dir.path());

    let message = b"Invoice 2026-0042: 1,250.00 EUR";
    let doc = write(dir.path(), "invoice.txt", message);
    let di = write(
        dir.path(),
        "digest-info.der",
        &digest_info(&sha256(message)),
    );
    for (mech, input) in [("SHA256-RSA-PKCS", &doc), ("RSA-PKCS", &di)] {
        let sig = dir.path().join(format!("{mech}.sig"));
        expect_ok(
            &format!("pkcs11-tool --sign -m {mech}"),
            &c.tool(&[
                "--sign",
                "-m",
                mech,
                "--label",
                c.label(),
                "--input-file",
                s(input),
                "--output-file",
                s(&sig),
            ]),
        );
        let signature = std::fs::read(&sig).unwrap();
        assert!(
            openssl_verify(
                &cert,
                "sha256",
                &sha256(message),
                &signature,
                Scheme::RsaPkcs1
            ),
            "openssl rejects the {mech} signature under the certificate pkcs11-tool read"
        );
    }
    // The API signs SHA-256 digests with PKCS#1 v1.5 only: PSS is not offered.
    let out = c.tool(&[
        "--sign",
        "-m",
        "SHA256-RSA-PKCS-PSS",
        "--label",
        c.label(),
        "--input-file",
        s(&doc),
        "--output-file",
        s(&dir.path().join("pss.sig")),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("CKR_MECHANISM_INVALID"),
        "{}",
        text(&out.stderr)
    );
    // Six processes, no identity of their own: they used the one the first process obtained.
    assert_eq!(
        c.identities(),
        identities,
        "a process made an identity of its own"
    );
    assert_eq!(identities, 1);
}

#[test]
fn pdfsig_signs_a_pdf_through_nss() {
    let c = clients();
    let dir = tempfile::tempdir().unwrap();
    let db = nss_db(dir.path(), &c.dss.ca_file());
    let input = write(
        dir.path(),
        "invoice.pdf",
        &support::pdf::one_page("Invoice 2026-0042, sealed through GlobalSign DSS"),
    );
    let signed = dir.path().join("invoice-signed.pdf");
    let nick = format!("{}:{}", c.dss.demo.token_label, c.label());
    expect_ok(
        "pdfsig -add-signature",
        &run(c
            .cmd("pdfsig")
            .args([
                "-nssdir",
                &db,
                "-add-signature",
                "-nick",
                &nick,
                "-digest",
                "SHA256",
            ])
            .arg(&input)
            .arg(&signed)),
    );
    // pdfsig's own validation (signature valid, certificate trusted through the token's chain), then
    // openssl over the bytes the PDF says are signed.
    verify_pdf(&db, &signed, &c.dss.ca_file()).unwrap();
}

#[test]
fn openssl_with_pkcs11_provider_makes_a_cms_signature() {
    let c = clients();
    let dir = tempfile::tempdir().unwrap();
    let cnf =
        support::tools::pkcs11_provider_conf(&dir.path().join("openssl.cnf"), &module_path(), None);
    let cert = c.certificate(dir.path());
    let pem = dir.path().join("cert.pem");
    let doc = write(
        dir.path(),
        "contract.txt",
        b"Contract 77: signed through the provider",
    );
    let p7s = dir.path().join("contract.p7s");
    let token = c.dss.demo.token_label.replace(' ', "%20");
    let key = format!(
        "pkcs11:token={token};object={};type=private",
        c.label().replace(' ', "%20")
    );
    expect_ok(
        "openssl cms -sign",
        &run(c.cmd("openssl").env("OPENSSL_CONF", &cnf).args([
            "cms",
            "-sign",
            "-binary",
            "-outform",
            "DER",
            "-md",
            "sha256",
            "-signer",
            s(&pem),
            "-inkey",
            &key,
            "-certfile",
            s(&c.dss.file("issuing-ca.pem")),
            "-in",
            s(&doc),
            "-out",
            s(&p7s),
        ])),
    );
    assert_eq!(
        c.cms_signer(&p7s, &doc),
        cert,
        "the CMS names another signer"
    );
}

#[test]
fn jarsigner_signs_a_jar_through_sunpkcs11() {
    let c = clients();
    let dir = tempfile::tempdir().unwrap();
    let class = write(
        dir.path(),
        "hello.txt",
        b"a resource of the signed application\n",
    );
    let jar = dir.path().join("app.jar");
    expect_ok(
        "jar cf",
        &run(Command::new("jar")
            .current_dir(dir.path())
            .args(["cf", s(&jar), "hello.txt"])),
    );
    assert!(class.exists());
    let cfg = write(
        dir.path(),
        "sunpkcs11.cfg",
        format!(
            "name = cloudtoken\nlibrary = {}\nslot = 0\n",
            module_path().display()
        )
        .as_bytes(),
    );
    // A login-free token: Java does not log in; the store password is not used.
    let signed = run(c.cmd("jarsigner").args([
        "-keystore",
        "NONE",
        "-storetype",
        "PKCS11",
        "-addprovider",
        "SunPKCS11",
        "-providerArg",
        s(&cfg),
        "-storepass",
        "unused",
        "-sigalg",
        "SHA256withRSA",
        "-digestalg",
        "SHA-256",
        s(&jar),
        c.label(),
    ]));
    expect_ok("jarsigner", &signed);
    let verified = expect_ok(
        "jarsigner -verify",
        &run(Command::new("jarsigner").args(["-verify", s(&jar)])),
    );
    assert!(verified.contains("jar verified"), "{verified}");
    // The signature block, checked by openssl over the signature file against the demo root.
    let out = dir.path().join("x");
    std::fs::create_dir(&out).unwrap();
    expect_ok(
        "jar xf",
        &run(Command::new("jar")
            .current_dir(&out)
            .args(["xf", s(&jar), "META-INF"])),
    );
    let meta = out.join("META-INF");
    let names: Vec<String> = std::fs::read_dir(&meta)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let block = names
        .iter()
        .find(|n| n.ends_with(".RSA"))
        .unwrap_or_else(|| panic!("no RSA signature block in {names:?}"));
    let sf = block.trim_end_matches(".RSA").to_owned() + ".SF";
    let signer = c.cms_signer(&meta.join(block), &meta.join(sf));
    let signer_der = write(dir.path(), "jar-signer.der", &signer);
    let subject = expect_ok(
        "openssl x509 -subject",
        &run(Command::new("openssl").args([
            "x509",
            "-inform",
            "DER",
            "-noout",
            "-subject",
            "-in",
            s(&signer_der),
        ])),
    );
    assert!(subject.contains(c.label()), "{subject}");
}

#[test]
fn cloudtoken_status_reports_the_dss_account() {
    let c = clients();
    let out = run(&mut support::tools::cloudtoken(&[
        "status",
        "--config",
        s(&c.dss.config_file()),
    ]));
    let report = expect_ok("cloudtoken status", &out);
    for expected in [
        "GlobalSign DSS API, reachable",
        "signed in with the secret in",
        "signatures left",
        "pkcs11:token=ACME%20Invoices;object=ACME%20Invoices;type=private",
    ] {
        assert!(report.contains(expected), "{expected:?} missing:\n{report}");
    }
}
