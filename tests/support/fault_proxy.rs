//! A fault proxy between the module and the reference service: an HTTPS server on 127.0.0.1 with a
//! certificate from a test CA of its own (the module trusts it through `ca_file`), which forwards each
//! request to the real `csc-server` and, where a rule says so, misbehaves like a broken service or
//! network: stalls, drips its answer, resets the connection, answers garbage or an HTTP error (with or
//! without a CSC body, with `Retry-After`), or changes the service's real answer (a signature with one bit
//! flipped, random signature bytes, a 401 after the service already signed).
//!
//! It terminates TLS, rather than passing the TLS stream through, so that every fault can act on HTTP
//! requests and answers while the module still speaks verified HTTPS, as in production. Every answer
//! closes its connection, so each request comes on a connection of its own and connection-level faults
//! (a handshake that never completes) apply to the very next request. Every request is recorded.
//!
//! Calls: tls.rs (the test CA, the client to the service), httparse for the request head.

use crate::service::Service;
use crate::tls::{https_client, TestCa};
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the proxy does to a request a rule matches.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Accept the TCP connection and never complete the TLS handshake.
    StallHandshake,
    /// Read the request and never answer, until the client gives up.
    Stall,
    /// Forward; send the answer's head at once and its body one byte per `every`.
    Drip { every: Duration },
    /// Read the request, then reset the connection (RST) without an answer.
    Reset,
    /// Read the request, answer bytes that are not HTTP, close.
    Garbage,
    /// Answer this status without asking the service; `body` (e.g. a CSC error JSON) and `Retry-After`.
    Status {
        code: u16,
        body: Option<String>,
        retry_after: Option<String>,
    },
    /// Forward; flip the lowest bit of the last byte of the first signature in `signatures`.
    FlipSignatureBit,
    /// Forward; replace the first signature in `signatures` by random bytes of the same length.
    RandomSignature,
    /// Forward (the service acts on the request), then answer `code` with `body` instead of its answer.
    AfterForward { code: u16, body: String },
    /// Forward, answer without `Connection: close` (the client may keep the connection), then close
    /// it anyway once the answer is out: a service dropping a kept-alive connection while it is idle.
    CloseWhenIdle,
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::StallHandshake => "stall-handshake",
            Fault::Stall => "stall",
            Fault::Drip { .. } => "drip",
            Fault::Reset => "reset",
            Fault::Garbage => "garbage",
            Fault::Status { .. } => "status",
            Fault::FlipSignatureBit => "flip-signature-bit",
            Fault::RandomSignature => "random-signature",
            Fault::AfterForward { .. } => "after-forward",
            Fault::CloseWhenIdle => "close-when-idle",
        }
    }

    /// The CSC error answer `{"error": error, "error_description": description}` with `code`.
    pub fn csc_error(code: u16, error: &str, description: &str) -> Fault {
        Fault::Status {
            code,
            body: Some(csc_error_body(error, description)),
            retry_after: None,
        }
    }
}

/// A CSC error body.
pub fn csc_error_body(error: &str, description: &str) -> String {
    serde_json::json!({"error": error, "error_description": description}).to_string()
}

struct Rule {
    /// Matches requests whose path contains this ("" matches every request).
    path: String,
    fault: Fault,
    /// How many more requests it applies to (`None`: until cleared).
    times: Option<u32>,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    /// The fault applied, "pass" when forwarded unchanged, "budget" when refused for the budget.
    pub fault: &'static str,
    pub at: Instant,
}

struct Shared {
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
    forwarded: AtomicUsize,
    /// Requests forwarded to the service at most; later ones get a fast 400.
    budget: AtomicUsize,
    /// The paths the budget counts (all when empty).
    budgeted: Mutex<Vec<String>>,
    upstream: String,
    client: reqwest::blocking::Client,
}

pub struct FaultProxy {
    pub url: String,
    ca_file: PathBuf,
    shared: Arc<Shared>,
    accept: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// How long a stalled or dripping connection is kept at most (the client normally gives up first).
const HOLD_AT_MOST: Duration = Duration::from_secs(120);

impl FaultProxy {
    /// A proxy in front of `svc`, forwarding everything until a rule is added.
    pub fn start(svc: &Service) -> FaultProxy {
        let ca = TestCa::new("fault proxy");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = dir.path().join("proxy-ca.pem");
        std::fs::write(&ca_file, &ca.ca_pem).expect("write the proxy CA");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("https://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            forwarded: AtomicUsize::new(0),
            budget: AtomicUsize::new(usize::MAX),
            budgeted: Mutex::new(Vec::new()),
            upstream: svc.url.clone(),
            client: https_client(&svc.ca_file(), Duration::from_secs(60)),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || accept_loop(listener, ca.server, s))
            .expect("start the proxy");
        FaultProxy {
            url,
            ca_file,
            shared,
            accept: Some(accept),
            _dir: dir,
        }
    }

    /// The PEM file of the CA that issued the proxy's certificate: the module's `ca_file`.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// Applies `fault` to the next `times` requests whose path contains `path` (`None`: until cleared).
    /// Rules are tried in the order added.
    pub fn inject(&self, path: &str, fault: Fault, times: Option<u32>) {
        self.shared.rules.lock().push(Rule {
            path: path.to_owned(),
            fault,
            times,
        });
    }

    /// Removes every rule: from now on requests are forwarded unchanged.
    pub fn clear(&self) {
        self.shared.rules.lock().clear();
    }

    /// Forwards at most `n` more requests whose path contains one of `paths` (every request when
    /// empty) to the service; later ones get a fast CSC 400 error.
    pub fn limit_forwarding(&self, n: usize, paths: &[&str]) {
        *self.shared.budgeted.lock() = paths.iter().map(|p| p.to_string()).collect();
        let done = self.shared.forwarded.load(Ordering::SeqCst);
        self.shared.budget.store(done + n, Ordering::SeqCst);
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().clone()
    }

    /// How many requests whose path contains `path` arrived.
    pub fn count(&self, path: &str) -> usize {
        self.shared
            .seen
            .lock()
            .iter()
            .filter(|s| s.path.contains(path))
            .count()
    }

    /// Requests the budget counts that were forwarded so far.
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, tls: Arc<rustls::ServerConfig>, s: Arc<Shared>) {
    while !s.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((tcp, _)) => {
                let (tls, s) = (tls.clone(), s.clone());
                let _ = std::thread::Builder::new()
                    .name("fault-proxy-conn".into())
                    .spawn(move || connection(tcp, tls, &s));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Takes the first rule that `applies`, counting one use.
fn take_rule(s: &Shared, applies: impl Fn(&Rule) -> bool) -> Option<Fault> {
    let mut rules = s.rules.lock();
    let i = rules.iter().position(applies)?;
    let fault = rules[i].fault.clone();
    if let Some(n) = rules[i].times.as_mut() {
        *n -= 1;
        if *n == 0 {
            rules.remove(i);
        }
    }
    Some(fault)
}

/// The fault for a request to `path` (handshake stalls are taken at connect time).
fn take_fault(s: &Shared, path: &str) -> Option<Fault> {
    take_rule(s, |r| {
        !matches!(r.fault, Fault::StallHandshake) && path.contains(&r.path)
    })
}

fn record(s: &Shared, path: &str, fault: &'static str) {
    s.seen.lock().push(Seen {
        path: path.to_owned(),
        fault,
        at: Instant::now(),
    });
}

fn connection(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, s: &Shared) {
    let _ = tcp.set_nodelay(true);
    // A handshake stall is decided before the request (and its path) is known.
    if take_rule(s, |r| matches!(r.fault, Fault::StallHandshake)).is_some() {
        record(s, "(connect)", "stall-handshake");
        hold_until_gone(&tcp, s);
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let _ = stream.sock.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(req) = read_request(&mut stream) else {
        return;
    };
    let fault = take_fault(s, &req.path);
    record(s, &req.path, fault.as_ref().map_or("pass", Fault::name));
    let keep_alive_claimed = matches!(fault, Some(Fault::CloseWhenIdle));
    let answer = match fault {
        None | Some(Fault::StallHandshake) | Some(Fault::CloseWhenIdle) => forward(s, &req),
        Some(Fault::Stall) => {
            hold_until_gone(&stream.sock, s);
            return;
        }
        Some(Fault::Reset) => {
            // Dropping the stream with SO_LINGER 0 sends the reset.
            reset(&stream.sock);
            return;
        }
        Some(Fault::Garbage) => {
            let _ = stream.write_all(b"\x00\xffthis is not HTTP\r\n\x7f\x80\r\n\r\n");
            let _ = stream.flush();
            return;
        }
        Some(Fault::Status {
            code,
            body,
            retry_after,
        }) => Answer {
            status: code,
            content_type: body.as_ref().map(|_| "application/json".to_owned()),
            retry_after,
            body: body.unwrap_or_default().into_bytes(),
        },
        Some(Fault::Drip { every }) => {
            let a = forward(s, &req);
            let _ = stream.write_all(&a.head());
            let _ = stream.flush();
            let started = Instant::now();
            for b in &a.body {
                if s.stop.load(Ordering::SeqCst) || started.elapsed() > HOLD_AT_MOST {
                    return;
                }
                std::thread::sleep(every);
                if stream
                    .write_all(&[*b])
                    .and_then(|_| stream.flush())
                    .is_err()
                {
                    return;
                }
            }
            return;
        }
        Some(Fault::FlipSignatureBit) => {
            let mut a = forward(s, &req);
            a.body = change_signature(&a.body, |sig| *sig.last_mut().unwrap() ^= 1);
            a
        }
        Some(Fault::RandomSignature) => {
            let mut a = forward(s, &req);
            a.body = change_signature(&a.body, |sig| {
                getrandom::fill(sig).expect("random bytes");
            });
            a
        }
        Some(Fault::AfterForward { code, body }) => {
            let _ = forward(s, &req);
            Answer {
                status: code,
                content_type: Some("application/json".to_owned()),
                retry_after: None,
                body: body.into_bytes(),
            }
        }
    };
    let mut bytes = answer.head();
    if keep_alive_claimed {
        bytes = String::from_utf8(bytes)
            .expect("an ASCII head")
            .replace("Connection: close\r\n", "")
            .into_bytes();
    }
    bytes.extend_from_slice(&answer.body);
    let _ = stream.write_all(&bytes);
    let _ = stream.flush();
    if keep_alive_claimed {
        // Idle from the client's side by now: the answer is whole.
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// One HTTP/1.1 request: the head parsed by httparse, then a Content-Length body.
fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head_len) = req.parse(&buf).ok()? {
            let headers: Vec<(String, Vec<u8>)> = req
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok())
                .unwrap_or(0);
            let (method, path) = (req.method?.to_owned(), req.path?.to_owned());
            let mut body = buf[head_len..].to_vec();
            while body.len() < len {
                let n = stream.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
            return Some(Request {
                method,
                path,
                headers,
                body,
            });
        }
    }
}

struct Answer {
    status: u16,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn head(&self) -> Vec<u8> {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Unknown");
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.body.len()
        );
        if let Some(ct) = &self.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if let Some(ra) = &self.retry_after {
            head.push_str(&format!("Retry-After: {ra}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// The service's answer to `req`, or a fast CSC error once the forwarding budget is spent.
fn forward(s: &Shared, req: &Request) -> Answer {
    let budget = s.budget.load(Ordering::SeqCst);
    let counted = {
        let paths = s.budgeted.lock();
        paths.is_empty() || paths.iter().any(|p| req.path.contains(p.as_str()))
    };
    let within = !counted
        || s.forwarded
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < budget).then_some(n + 1)
            })
            .is_ok();
    if !within {
        record(s, &req.path, "budget");
        return Answer {
            status: 400,
            content_type: Some("application/json".to_owned()),
            retry_after: None,
            body: csc_error_body("invalid_request", "fault proxy: request budget spent")
                .into_bytes(),
        };
    }
    let method =
        reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut rb = s
        .client
        .request(method, format!("{}{}", s.upstream, req.path))
        .body(req.body.clone());
    for (k, v) in &req.headers {
        if matches!(k.as_str(), "authorization" | "content-type" | "accept") {
            rb = rb.header(k.as_str(), v.as_slice());
        }
    }
    match rb.send() {
        Ok(resp) => Answer {
            status: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            retry_after: None,
            body: resp.bytes().map(|b| b.to_vec()).unwrap_or_default(),
        },
        Err(e) => Answer {
            status: 502,
            content_type: None,
            retry_after: None,
            body: format!("fault proxy: the service failed: {e}").into_bytes(),
        },
    }
}

/// `body` (a signHash answer) with its first signature changed by `f`; unchanged when it has none.
fn change_signature(body: &[u8], f: impl FnOnce(&mut [u8])) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let Some(first) = v["signatures"].get_mut(0) else {
        return body.to_vec();
    };
    let Some(mut sig) = first.as_str().and_then(|s| b64.decode(s).ok()) else {
        return body.to_vec();
    };
    if sig.is_empty() {
        return body.to_vec();
    }
    f(&mut sig);
    *first = serde_json::Value::String(b64.encode(sig));
    v.to_string().into_bytes()
}

/// Keeps a connection open without answering until the client closes it or gives up.
fn hold_until_gone(tcp: &TcpStream, s: &Shared) {
    let _ = tcp.set_nonblocking(true);
    let started = Instant::now();
    let mut probe = [0u8; 1];
    while !s.stop.load(Ordering::SeqCst) && started.elapsed() < HOLD_AT_MOST {
        match tcp.peek(&mut probe) {
            // Closed, or the client sent something (its TLS close alert): it has given up.
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Closes with a TCP reset (SO_LINGER 0) instead of an orderly FIN.
fn reset(tcp: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on our own socket with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
