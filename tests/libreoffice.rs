//! LibreOffice headless signs a PDF through a login-free cloudtoken token: it cannot answer a PIN prompt,
//! so the token needs no login and the module asks for the PIN and the one-time code itself, through
//! the prompt channel (the shipped test prompt). The signature is verified with pdfsig and `openssl cms`.
//! Needs Debian's libreoffice-writer-nogui (tests/run.sh installs it).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::tools::*;
use support::Service;

/// LibreOffice's first start creates its profile; a slow machine needs a while.
const SOFFICE_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn libreoffice_signs_a_pdf_through_a_login_free_token() {
    assert!(
        Command::new("soffice").arg("--version").output().is_ok(),
        "soffice is missing: apt-get install libreoffice-writer-nogui (tests/run.sh installs it)"
    );
    let svc = Service::shared();
    // Carol's credentials all take a code (a TOTP app or SMS), so whichever of her certificates
    // LibreOffice picks by subject, the prompt can answer.
    let e = enroll_login_free(svc, "carol", "Carol Example", &[]);
    let nssdb = nss_db(e.dir.path(), &svc.ca_file());

    // The certificate subject as `cloudtoken status` shows it (RFC 4514, the order NSS prints).
    let status = expect_ok(
        "cloudtoken status",
        &run(&mut cloudtoken(&[
            "status",
            "--config",
            &e.config.display().to_string(),
        ])),
    );
    assert!(status.contains("mode login-free"), "{status}");
    let subject = status
        .lines()
        .find_map(|l| l.trim().strip_prefix("subject      "))
        .expect("status shows a subject")
        .to_owned();
    assert_eq!(subject, "CN=Carol Example,O=cloudtoken demo,C=DE");

    let work = e.dir.path();
    let doc = work.join("letter.txt");
    std::fs::write(
        &doc,
        "Dear Bob,\nthe contract is attached and signed.\nCarol\n",
    )
    .unwrap();
    let out_dir = work.join("out");
    let filter = format!(
        "pdf:writer_pdf_Export:{{\"SignPDF\":{{\"type\":\"boolean\",\"value\":\"true\"}},\
         \"SignCertificateSubjectName\":{{\"type\":\"string\",\"value\":\"{subject}\"}}}}"
    );
    let mut cmd = Command::new("soffice");
    cmd.arg(format!(
        "-env:UserInstallation=file://{}",
        work.join("lo-profile").display()
    ))
    .args([
        "--headless",
        "--norestore",
        "--convert-to",
        &filter,
        "--outdir",
    ])
    .arg(&out_dir)
    .arg(&doc)
    .env("MOZILLA_CERTIFICATE_FOLDER", &nssdb)
    .env("CLOUDTOKEN_CONFIG", &e.config)
    .env("HOME", work)
    .env_remove("CLOUDTOKEN_AGENT_SOCK")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // Its own process group, so that a timeout ends soffice.bin and its helpers together.
    // SAFETY: setpgid in the child before exec touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpgid(0, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start soffice");
    let deadline = Instant::now() + SOFFICE_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // SAFETY: the process group of our own child.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            panic!("soffice did not finish within {SOFFICE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let pdf = out_dir.join("letter.pdf");
    assert!(
        out.status.success() && pdf.exists(),
        "soffice made no PDF ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );

    verify_pdf(&nssdb, &pdf, &svc.ca_file()).unwrap_or_else(|err| panic!("{err}"));

    // The second factor came from the prompt channel, asked on LibreOffice's behalf.
    let questions = e.questions();
    let kinds: Vec<&str> = questions.iter().map(|q| q["kind"].as_str()).collect();
    assert_eq!(kinds, ["pin", "otp"], "{questions:?}");
    let q = &questions[1];
    assert_eq!(q["process"], "soffice.bin");
    assert_eq!(q["token"], "Carol Example");
    assert!(
        q["description"].ends_with(&format!("with '{}' for soffice.bin", q["key"])),
        "{q:?}"
    );
    let credential = q["credential"].clone();
    let authorized: Vec<_> = svc
        .audit("credentials/authorize")
        .into_iter()
        .filter(|a| a.credential.as_deref() == Some(credential.as_str()))
        .collect();
    assert_eq!(authorized.len(), 1, "{authorized:?}");
    assert_eq!(authorized[0].outcome, "ok");
    assert!(authorized[0]
        .detail
        .as_deref()
        .unwrap_or("")
        .contains(&q["description"]));
}
