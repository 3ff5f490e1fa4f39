//! Shared by the second-factor tests (pkcs11_modes.rs, pkcs11_prompt.rs, pkcs11_approval.rs,
//! pkcs11_logs.rs), included with `#[path]` next to pkcs11_common.rs: a csc-server of the test binary's
//! own, a module configuration with one token per scenario, the shipped test prompt
//! (examples/prompt/test-prompt.sh) with what it was asked, and the service's audit trail.
#![allow(dead_code)]

use crate::common::*;
use cryptoki_sys::*;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{csc_server_bin, Service};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The test prompt the project ships: the tests drive the very script users read about.
pub fn test_prompt() -> PathBuf {
    workspace_root().join("examples/prompt/test-prompt.sh")
}

/// Starts a service from a thread that lives as long as the process: the server dies with the thread
/// that spawned it (PR_SET_PDEATHSIG), and each test runs on a thread of its own.
pub fn lasting_service(start: impl FnOnce() -> Service + Send + 'static) -> Service {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(start());
        loop {
            std::thread::park();
        }
    });
    rx.recv().expect("start csc-server")
}

/// The tests of one binary share the service, the module and the prompt folders: one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
}

/// A folder the test prompt answers from (see the comment at the top of test-prompt.sh).
pub struct PromptDir {
    pub path: PathBuf,
}

/// One question the prompt was asked: the CLOUDTOKEN_* variables it got.
#[derive(Debug, Clone)]
pub struct Question(pub HashMap<String, String>);

impl Question {
    pub fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("question without {key}: {self:?}"))
    }
}

impl PromptDir {
    pub fn new(path: PathBuf, svc: &Service, pin: &str) -> PromptDir {
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("pin"), format!("{pin}\n")).unwrap();
        std::fs::write(path.join("state"), format!("{}\n", svc.state.display())).unwrap();
        std::fs::write(
            path.join("csc-server"),
            format!("{}\n", csc_server_bin().display()),
        )
        .unwrap();
        PromptDir { path }
    }

    /// The token's `prompt_command` line.
    pub fn command_toml(&self) -> String {
        format!(
            "prompt_command = [{:?}, {:?}]\n",
            test_prompt().display().to_string(),
            self.path.display().to_string()
        )
    }

    /// What to do for the next questions ("right", "wrong", "cancel", "empty", "hang").
    pub fn plan(&self, steps: &[&str]) {
        let text: String = steps.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(self.path.join("plan"), text).unwrap();
    }

    /// The questions asked since the last call.
    pub fn take_questions(&self) -> Vec<Question> {
        let file = self.path.join("questions");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        text.lines()
            .map(|line| {
                Question(
                    line.split('\t')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                )
            })
            .collect()
    }
}

/// One `[[token]]` of `user` on the service, with `extra` lines (mode, channels, ...).
pub fn token_toml(svc: &Service, label: &str, user: &str, extra: &str) -> String {
    let state = &svc.state;
    format!(
        "[[token]]\nlabel = {label:?}\nurl_file = {:?}\napi = \"v2\"\nca_file = {:?}\n\
         request_timeout_ms = 30000\naccount = {user:?}\nrefresh_token_file = {:?}\n{extra}\n",
        state.join("server.url").display().to_string(),
        svc.ca_file().display().to_string(),
        state.join(format!("{user}.refresh")).display().to_string(),
    )
}

/// Writes the module configuration (mode 0600) with a `[log]` section and the tokens.
pub fn write_config(dir: &Path, level: &str, log: &Path, tokens: &[String]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("cloudtoken.toml");
    let text = format!(
        "[log]\nlevel = {level:?}\nfile = {:?}\n\n{}",
        log.display().to_string(),
        tokens.concat()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A secret file the module accepts (0600).
pub fn secret_file(path: &Path, value: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{value}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

/// `credentials/authorize` entries of the audit trail for `credential`: (outcome, hashes).
pub fn authorizations(svc: &Service, credential: &str) -> Vec<(String, String)> {
    audit_events(svc, "credentials/authorize", credential)
}

/// Entries of the audit trail for `event` and `credential`, oldest first: (outcome, hashes).
pub fn audit_events(svc: &Service, event: &str, credential: &str) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        svc.state.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the service database");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT outcome, hashes FROM audit WHERE event = ?1 AND credential = ?2 ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([event, credential], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The authorizations the service granted for `credential` (not refused ones).
pub fn granted(svc: &Service, credential: &str) -> usize {
    authorizations(svc, credential)
        .iter()
        .filter(|(outcome, _)| outcome == "ok")
        .count()
}

/// What /proc/self/comm says: the process name the module reports.
pub fn own_process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_owned()
}

pub fn session_state(p: P11, h: CK_SESSION_HANDLE) -> CK_STATE {
    let mut info = CK_SESSION_INFO::default();
    // SAFETY: valid out pointer.
    let rv = unsafe { (p.f.C_GetSessionInfo.unwrap())(h, &mut info) };
    assert_rv(rv, CKR_OK, "C_GetSessionInfo");
    info.state
}

/// C_Login with a NULL_PTR PIN (the protected authentication path).
pub fn login_null(p: P11, h: CK_SESSION_HANDLE, user: CK_USER_TYPE) -> CK_RV {
    // SAFETY: a NULL PIN with length 0 is the protected-path form.
    unsafe { (p.f.C_Login.unwrap())(h, user, ptr::null_mut(), 0) }
}

pub fn token_flags(p: P11, label: &str) -> CK_FLAGS {
    ok(p.token_info(p.slot_of(label)), "C_GetTokenInfo").flags
}

/// Objects of `class` labelled `label` that the session can see.
pub fn find_labelled(
    p: P11,
    h: CK_SESSION_HANDLE,
    class: CK_OBJECT_CLASS,
    label: &str,
) -> Vec<CK_OBJECT_HANDLE> {
    ok(
        p.find(
            h,
            &[
                (CKA_CLASS, ulong(class)),
                (CKA_LABEL, label.as_bytes().to_vec()),
            ],
        ),
        "find objects",
    )
}

/// Signs `message` with the key's first hashing mechanism and has openssl verify the result.
pub fn sign_verified(p: P11, h: CK_SESSION_HANDLE, key: &Key, message: &[u8]) -> Result<(), CK_RV> {
    let mech = if key.key_type == CKK_EC {
        CKM_ECDSA_SHA256
    } else {
        CKM_SHA256_RSA_PKCS
    };
    let case = cases_for(mech, message).remove(0);
    let sig = p.sign(h, &case.mech, key.private, &case.input)?;
    assert!(
        support::openssl_verify(&key.cert_der, case.hash, &case.digest, &sig, case.scheme),
        "openssl rejects the signature"
    );
    Ok(())
}

/// The SMS the service sent for `credential`, oldest first: (code, description).
pub fn sms(svc: &Service, credential: &str) -> Vec<(String, String)> {
    svc.sms_messages(credential)
        .iter()
        .map(|m| {
            (
                m["code"].as_str().unwrap_or_default().to_owned(),
                m["description"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

// ---- the approval page, as a browser without script uses it ----

pub struct Page {
    http: reqwest::blocking::Client,
    base: String,
    cookies: HashMap<String, String>,
}

pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Page {
    /// Signs in as `user` with the account password and the account's authenticator code.
    pub fn sign_in(svc: &Service, user: &str) -> Page {
        let pem = std::fs::read(svc.ca_file()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut page = Page {
            http,
            base: svc.url.clone(),
            cookies: HashMap::new(),
        };
        let form = page.get("/approve");
        assert_eq!(form.status, 200);
        let csrf = input_value(&form.body, 0, "csrf").to_owned();
        let token = svc.demo.token_of(user);
        let signed_in = page.post(
            "/approve/login",
            &[
                ("csrf", &csrf),
                ("username", user),
                ("password", &token.password),
                ("code", &support::account_code(token)),
            ],
        );
        assert_eq!(signed_in.status, 303, "sign-in: {}", signed_in.body);
        page
    }

    fn send(&mut self, rb: reqwest::blocking::RequestBuilder) -> Answer {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let resp = rb
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .expect("HTTPS request");
        let status = resp.status().as_u16();
        for sc in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let pair = sc.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status,
            body: resp.text().unwrap_or_default(),
        }
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let rb = self.http.get(format!("{}{path}", self.base));
        self.send(rb)
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        self.send(rb)
    }

    /// Waits until a request whose card contains `marker` is listed, then answers it.
    pub fn decide(&mut self, marker: &str, decision: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.get("/approve");
            assert_eq!(list.status, 200);
            if let Some(at) = list.body.find(marker) {
                let card_start = list.body[..at].rfind("<article").unwrap_or(0);
                let card = &list.body[card_start..];
                let request = input_value(card, 0, "request").to_owned();
                let csrf = input_value(card, 0, "csrf").to_owned();
                let answered = self.post(
                    "/approve/decide",
                    &[
                        ("csrf", &csrf),
                        ("request", &request),
                        ("decision", decision),
                    ],
                );
                assert_eq!(answered.status, 303, "{}", answered.body);
                return card[..card.find("</article>").unwrap_or(card.len())].to_owned();
            }
            assert!(Instant::now() < deadline, "no request with {marker} listed");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn input_value<'a>(html: &'a str, from: usize, name: &str) -> &'a str {
    let key = format!("name=\"{name}\" value=\"");
    let start = html[from..]
        .find(&key)
        .unwrap_or_else(|| panic!("no input {name} in:\n{html}"))
        + from
        + key.len();
    let end = html[start..].find('"').unwrap() + start;
    &html[start..end]
}
