//! Batches across processes: examples/batch-sign.sh end to end (30 PDFs, one process each, one code),
//! the agent's protocol and lifetime as a client sees them, the module's use of it (a SCAL 1 batch
//! shared by processes; SCAL 2 never), and signing that goes on when the agent is gone.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::paths::repo_root;
use support::tools::*;
use support::{audit_entries, module_path, openssl_verify, target_profile_dir, Scheme, Service};

#[test]
fn batch_sign_script_signs_30_pdfs_with_one_code() {
    let work = tempfile::Builder::new()
        .prefix("batch-sign-")
        .tempdir()
        .unwrap();
    let out = run(Command::new("bash")
        .arg(repo_root().join("examples/batch-sign.sh"))
        .arg("30")
        .env("CLOUDTOKEN_BIN_DIR", target_profile_dir())
        .env("BATCH_SIGN_WORK", work.path())
        .env_remove("CLOUDTOKEN_CONFIG")
        .env_remove("CLOUDTOKEN_AGENT_SOCK"));
    let said = expect_ok("examples/batch-sign.sh 30", &out);
    assert_eq!(
        said.lines().last(),
        Some("signed 30/30, verified 30/30, one-time codes delivered: 1"),
        "{said}\n{}",
        text(&out.stderr)
    );

    // The counts, checked here again from the service's own records.
    let state = work.path().join("state");
    let cred = "alice-rsa3072";
    let sms = std::fs::read_to_string(state.join("sms-outbox.jsonl")).unwrap();
    let texts: Vec<serde_json::Value> = sms
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["credential"] == cred)
        .collect();
    assert_eq!(texts.len(), 1, "{sms}");
    let description = "Sign 60 documents (30 invoices) with 'Alice Example (RSA-3072)' for pdfsig";
    assert_eq!(texts[0]["description"].as_str(), Some(description));
    let authorizations = audit_entries(&state, "credentials/authorize");
    assert_eq!(authorizations.len(), 1, "{authorizations:?}");
    let a = &authorizations[0];
    assert_eq!(a.credential.as_deref(), Some(cred));
    assert_eq!(a.outcome, "ok");
    assert_eq!(
        a.detail.as_deref(),
        Some(format!("numSignatures=60; description: {description}").as_str())
    );
    let signatures = audit_entries(&state, "signatures/signHash");
    assert_eq!(signatures.iter().filter(|s| s.outcome == "ok").count(), 60);
    assert!(signatures
        .iter()
        .all(|s| s.credential.as_deref() == Some(cred)));

    // The user was asked once: the PIN and the code, for the whole package.
    let questions = std::fs::read_to_string(work.path().join("prompt/questions")).unwrap();
    let kinds: Vec<&str> = questions
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(kinds, ["kind=pin", "kind=otp"], "{questions}");
    assert!(questions.lines().all(|l| l.contains("\tsignatures=60\t")));

    // Every signed PDF, verified here independently of the script.
    let nssdb = format!("sql:{}", work.path().join("nssdb").display());
    for i in 1..=30 {
        let pdf = work.path().join(format!("signed/invoice-{i}.pdf"));
        verify_pdf(&nssdb, &pdf, &state.join("ca.pem"))
            .unwrap_or_else(|e| panic!("invoice-{i}.pdf: {e}"));
    }
}

// ----- the agent as a client sees it -----

/// A `cloudtoken agent --foreground` of the test, ended with SIGTERM when dropped.
struct AgentProcess {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl AgentProcess {
    fn start(extra: &[&str]) -> AgentProcess {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let mut child = cloudtoken(&["agent", "--foreground", "--socket"])
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cloudtoken agent");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert_eq!(
            first,
            format!(
                "CLOUDTOKEN_AGENT_SOCK='{}'; export CLOUDTOKEN_AGENT_SOCK;\n",
                socket.display()
            )
        );
        AgentProcess {
            child,
            socket,
            _dir: dir,
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill with our own child's PID.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// One request line to the agent, its answer parsed.
fn ask(socket: &Path, request: serde_json::Value) -> serde_json::Value {
    let mut s = UnixStream::connect(socket).expect("connect to the agent");
    s.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    serde_json::from_str(answer.trim()).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

fn key(credential: &str) -> serde_json::Value {
    serde_json::json!({"service": "https://csc.example", "account": "alice", "credential": credential})
}

#[test]
fn agent_keeps_counts_per_credential_until_used_or_expired() {
    let agent = AgentProcess::start(&[]);
    let meta = std::fs::metadata(&agent.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let put = |cred: &str, n: u32, ms: u64| {
        ask(
            &agent.socket,
            serde_json::json!({"op": "put", "key": key(cred), "sad": format!("SAD-{cred}"),
                               "signatures": n, "expires_in_ms": ms}),
        )
    };
    let take = |cred: &str, n: u32| {
        ask(
            &agent.socket,
            serde_json::json!({"op": "take", "key": key(cred), "signatures": n}),
        )
    };
    assert_eq!(put("c1", 3, 60_000)["status"], "stored");
    assert_eq!(put("c2", 1, 300)["status"], "stored");

    let t = take("c1", 2);
    assert_eq!(t["status"], "granted", "{t}");
    assert_eq!(t["sad"], "SAD-c1");
    assert_eq!(t["remaining"], 1);
    assert!(t["expires_in_ms"].as_u64().unwrap() <= 60_000);
    // Two more do not fit: nothing is taken.
    assert_eq!(take("c1", 2)["status"], "missing");
    assert_eq!(
        ask(
            &agent.socket,
            serde_json::json!({"op": "peek", "key": key("c1")})
        )["signatures"],
        1
    );
    assert_eq!(take("c1", 1)["remaining"], 0);
    assert_eq!(take("c1", 1)["status"], "missing");
    // Another account's key is another authorization.
    let mut bob = key("c2");
    bob["account"] = "bob".into();
    assert_eq!(
        ask(
            &agent.socket,
            serde_json::json!({"op": "take", "key": bob, "signatures": 1})
        )["status"],
        "missing"
    );
    // Expiry.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(take("c2", 1)["status"], "missing");
    // Forget.
    put("c3", 5, 60_000);
    assert_eq!(
        ask(
            &agent.socket,
            serde_json::json!({"op": "forget", "key": key("c3")})
        )["status"],
        "forgotten"
    );
    assert_eq!(take("c3", 1)["status"], "missing");
    // Garbage and oversized lines are refused; the agent keeps serving.
    let bad = ask(&agent.socket, serde_json::json!({"op": "steal"}));
    assert_eq!(bad["status"], "refused");
    let mut s = UnixStream::connect(&agent.socket).unwrap();
    let _ = s.write_all(&vec![b'x'; 64 * 1024]);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.contains("refused") || answer.is_empty(), "{answer}");
    assert_eq!(put("c4", 1, 60_000)["status"], "stored");
}

/// The agent process's thread count (/proc).
fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: in /proc/PID/status")
}

#[test]
fn agent_does_not_spend_a_thread_per_idle_connection() {
    const IDLE: usize = 300;
    let agent = AgentProcess::start(&[]);
    let pid = agent.child.id();
    let before = threads_of(pid);
    // Connections that never send a request (a client that hangs, or many processes at once).
    let idle: Vec<UnixStream> = (0..IDLE)
        .map(|_| UnixStream::connect(&agent.socket).expect("connect to the agent"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = threads_of(pid);
    // The agent still answers while they stay open.
    let answer = ask(
        &agent.socket,
        serde_json::json!({"op": "take", "key": key("c1"), "signatures": 1}),
    );
    drop(idle);
    assert!(
        during <= before + 8,
        "{IDLE} idle connections: the agent went from {before} to {during} threads"
    );
    assert!(
        answer.is_object(),
        "the agent answers with idle connections open: {answer}"
    );
}

#[test]
fn agent_ends_on_sigterm_and_removes_its_socket() {
    let mut agent = AgentProcess::start(&[]);
    assert!(agent.socket.exists());
    let status = agent.terminate();
    assert!(status.success(), "{status}");
    assert!(!agent.socket.exists());
}

#[test]
fn agent_ends_after_the_idle_timeout() {
    let mut agent = AgentProcess::start(&["--idle-timeout", "1"]);
    let started = Instant::now();
    let status = agent.child.wait().unwrap();
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!agent.socket.exists());
}

#[test]
fn agent_runs_a_command_with_the_batch_settings_and_returns_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let script = format!(
        "test -S \"$CLOUDTOKEN_AGENT_SOCK\" && printf '%s|%s|%s' \"$CLOUDTOKEN_AGENT_SOCK\" \
         \"$CLOUDTOKEN_BATCH_SIGNATURES\" \"$CLOUDTOKEN_BATCH_DESCRIPTION\" >'{}'; exit 7",
        seen.display()
    );
    let out = run(&mut cloudtoken(&[
        "agent",
        "--batch-signatures",
        "60",
        "--batch-description",
        "30 invoices",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let seen = std::fs::read_to_string(&seen).expect("the command ran with a socket");
    let parts: Vec<&str> = seen.split('|').collect();
    assert_eq!(&parts[1..], ["60", "30 invoices"]);
    let socket = Path::new(parts[0]);
    assert!(!socket.exists(), "the socket outlived the agent");
    // A private folder of its own, gone too (no XDG_RUNTIME_DIR in tests, or one of ours).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        assert!(!socket.parent().unwrap().exists());
    }
}

/// Run as another user by `agent_refuses_other_users`: connects to the socket in CT_PEER_SOCKET and
/// prints what happened.
#[test]
#[ignore = "helper run by agent_refuses_other_users"]
fn peer_client_helper() {
    let socket = std::env::var_os("CT_PEER_SOCKET")
        .expect("a helper of agent_refuses_other_users, which sets CT_PEER_SOCKET");
    match UnixStream::connect(&socket) {
        Err(e) => println!("PEER: connect failed: {e}"),
        Ok(mut s) => {
            let req = serde_json::json!({"op": "take", "key": key("c1"), "signatures": 1});
            let _ = s.write_all(format!("{req}\n").as_bytes());
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            println!("PEER: {}", answer.trim());
        }
    }
}

#[test]
fn agent_refuses_other_users() {
    if !support::skip::is_root() {
        support::skip::skip("needs root to connect as another user (nobody)");
        return;
    }
    let agent = AgentProcess::start(&[]);
    ask(
        &agent.socket,
        serde_json::json!({"op": "put", "key": key("c1"), "sad": "SAD-c1",
                           "signatures": 5, "expires_in_ms": 60_000}),
    );
    let as_nobody = |socket: &Path| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "peer_client_helper", "--ignored", "--nocapture"])
            .env("CT_PEER_SOCKET", socket);
        // SAFETY: setgroups/setgid/setuid in the child before exec; no memory of the parent is used.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = run(&mut cmd);
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("PEER: ").map(str::to_owned))
            .unwrap_or_else(|| panic!("helper said nothing: {}", text(&out.stderr)))
    };
    // The folder and the socket keep other users out ...
    let dir = agent.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let said = as_nobody(&agent.socket);
    assert!(said.contains("connect failed"), "{said}");
    // ... and were they opened, the agent still checks who is calling.
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let said = as_nobody(&agent.socket);
    assert!(
        said.contains("refused") && !said.contains("SAD-c1"),
        "{said}"
    );
    // The owner still gets all five.
    let t = ask(
        &agent.socket,
        serde_json::json!({"op": "take", "key": key("c1"), "signatures": 5}),
    );
    assert_eq!(t["status"], "granted");
}

// ----- the module and the agent -----

/// Signs `data` with the credential's key through pkcs11-tool, in a process of its own, without a
/// login (the token is login-free); returns the signature.
fn sign_in_new_process(
    e: &Enrolled,
    credential: &str,
    mechanism: &str,
    data: &Path,
    env: &[(&str, &Path)],
) -> Vec<u8> {
    let id: String = Sha256::digest(credential.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sig = e.dir.path().join(format!("sig-{}", rand_suffix()));
    let mut cmd = Command::new("pkcs11-tool");
    cmd.arg("--module")
        .arg(module_path())
        .args([
            "--token-label",
            &e.label,
            "--sign",
            "--id",
            &id,
            "-m",
            mechanism,
        ])
        .arg("--input-file")
        .arg(data)
        .arg("--output-file")
        .arg(&sig)
        .env("CLOUDTOKEN_CONFIG", &e.config)
        .env_remove("CLOUDTOKEN_AGENT_SOCK");
    for (k, v) in env {
        cmd.env(k, v);
    }
    expect_ok("pkcs11-tool --sign", &run(&mut cmd));
    std::fs::read(&sig).unwrap()
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn certificate(e: &Enrolled, credential: &str) -> Vec<u8> {
    let id: String = Sha256::digest(credential.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = e.dir.path().join(format!("cert-{credential}.der"));
    let r = run(Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module_path())
        .args([
            "--token-label",
            &e.label,
            "--read-object",
            "--type",
            "cert",
            "--id",
            &id,
        ])
        .arg("--output-file")
        .arg(&out)
        .env("CLOUDTOKEN_CONFIG", &e.config));
    expect_ok("pkcs11-tool --read-object", &r);
    std::fs::read(out).unwrap()
}

fn authorizations(svc: &Service, credential: &str) -> usize {
    svc.audit("credentials/authorize")
        .iter()
        .filter(|a| a.credential.as_deref() == Some(credential))
        .count()
}

#[test]
fn processes_share_a_scal1_batch_through_the_agent_but_never_a_scal2_one() {
    let svc = Service::shared();
    let agent = AgentProcess::start(&[]);
    let env = [("CLOUDTOKEN_AGENT_SOCK", agent.socket.as_path())];
    let data = support::config::temp_file("doc.txt", b"agent test document\n");

    // SCAL 1: the first process authorizes a batch, the second one signs with what the agent kept.
    let alice = enroll_login_free(svc, "alice", "Alice Example", &[]);
    let cred = "alice-rsa3072";
    let cert = certificate(&alice, cred);
    let before = authorizations(svc, cred);
    for _ in 0..2 {
        let sig = sign_in_new_process(&alice, cred, "SHA256-RSA-PKCS", &data.1, &env);
        let digest = Sha256::digest(b"agent test document\n");
        assert!(openssl_verify(
            &cert,
            "sha256",
            &digest,
            &sig,
            Scheme::RsaPkcs1
        ));
    }
    assert_eq!(authorizations(svc, cred) - before, 1);
    let questions = alice.questions();
    assert_eq!(questions.len(), 2, "one PIN and one code: {questions:?}");
    assert_eq!(questions[1]["otp_type"], "sms");
    // The batch was the token's batch_size (30): 2 used, 28 left with the agent under the service's key.
    let left = ask(
        &agent.socket,
        serde_json::json!({"op": "peek", "key": {"service": svc.url, "account": "alice", "credential": cred}}),
    );
    assert_eq!(left["signatures"], 28, "{left}");

    // SCAL 2: each signature is authorized for its own hash, whatever the agent holds.
    let bob = enroll_login_free(svc, "bob", "Bob Example", &[]);
    let cred = "bob-rsa2048-scal2";
    let cert = certificate(&bob, cred);
    let before = authorizations(svc, cred);
    let sms_before = svc.sms_messages(cred).len();
    let log = bob.dir.path().join("module.log");
    let env = [
        ("CLOUDTOKEN_AGENT_SOCK", agent.socket.as_path()),
        ("CLOUDTOKEN_LOG", Path::new("info")),
        ("CLOUDTOKEN_LOG_FILE", log.as_path()),
    ];
    for i in 0..2 {
        let content = format!("scal 2 document {i}\n");
        let doc = support::config::temp_file("doc.txt", content.as_bytes());
        let sig = sign_in_new_process(&bob, cred, "SHA256-RSA-PKCS", &doc.1, &env);
        let digest = Sha256::digest(content.as_bytes());
        assert!(openssl_verify(
            &cert,
            "sha256",
            &digest,
            &sig,
            Scheme::RsaPkcs1
        ));
    }
    assert_eq!(authorizations(svc, cred) - before, 2);
    assert_eq!(svc.sms_messages(cred).len() - sms_before, 2);
    let held = ask(
        &agent.socket,
        serde_json::json!({"op": "peek", "key": {"service": svc.url, "account": "bob", "credential": cred}}),
    );
    assert_eq!(held["status"], "missing", "{held}");
    // And the log says why.
    let logged = std::fs::read_to_string(&log).unwrap();
    let said = logged
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "{cred} is SCAL 2: this signature is authorized for its own hash"
            ))
        })
        .count();
    assert_eq!(said, 2, "{logged}");
}

#[test]
fn signing_goes_on_without_a_reachable_agent() {
    let svc = Service::shared();
    let alice = enroll_login_free(svc, "alice", "Alice Example", &[]);
    let cred = "alice-p384";
    let cert = certificate(&alice, cred);
    let log = alice.dir.path().join("module.log");
    let gone = alice.dir.path().join("no-agent-here.sock");
    let env = [
        ("CLOUDTOKEN_AGENT_SOCK", gone.as_path()),
        ("CLOUDTOKEN_LOG", Path::new("warn")),
        ("CLOUDTOKEN_LOG_FILE", log.as_path()),
    ];
    let data = support::config::temp_file("doc.txt", b"no agent\n");
    let before = authorizations(svc, cred);
    for _ in 0..2 {
        let sig = sign_in_new_process(&alice, cred, "ECDSA-SHA384", &data.1, &env);
        let digest = sha2::Sha384::digest(b"no agent\n");
        assert!(openssl_verify(
            &cert,
            "sha384",
            &digest,
            &sig,
            Scheme::EcdsaRaw
        ));
    }
    // Without the agent each process needs its own authorization, and says why once.
    assert_eq!(authorizations(svc, cred) - before, 2);
    let logged = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("signing without it"))
        .collect();
    assert_eq!(warnings.len(), 2, "one warning per process:\n{logged}");
    assert!(warnings
        .iter()
        .all(|w| w.contains(&gone.display().to_string())));
}
