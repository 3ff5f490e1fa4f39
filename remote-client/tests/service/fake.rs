//! A scripted HTTP/1.1 service on 127.0.0.1 (plain or TLS) that records what the client sends, so the
//! tests can check the exact wire format, headers and connection reuse, and that misbehaves on request
//! (a body that drips, a stall, a reset connection, bytes that are not HTTP) for the fault tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    /// The body as JSON, `Null` when it is not JSON.
    pub body: serde_json::Value,
    pub raw: String,
}

impl Req {
    /// The body as `application/x-www-form-urlencoded` pairs (OAuth 2.0 token requests).
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.raw.as_bytes())
            .into_owned()
            .collect()
    }
}

/// Ways to misbehave after the request has been read.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Status line and headers at once, then the body one byte per interval.
    DripBody(Duration),
    /// The status line and headers one byte per interval.
    DripHeaders(Duration),
    /// Status line and headers (with the full Content-Length), then silence for this long.
    StallBody(Duration),
    /// Silence for this long, then the connection is closed.
    Stall(Duration),
    /// The connection is reset (RST) instead of answered.
    Reset,
    /// Headers and half the body, then a reset.
    ResetMidBody,
    /// Bytes that are not HTTP.
    Garbage,
}

pub struct Resp {
    pub status: u16,
    pub body: String,
    pub delay: Option<Duration>,
    pub extra_headers: Vec<(String, String)>,
    pub fault: Option<Fault>,
}

impl Resp {
    pub fn json(status: u16, body: serde_json::Value) -> Resp {
        Resp::raw(status, &body.to_string())
    }
    pub fn raw(status: u16, body: &str) -> Resp {
        Resp {
            status,
            body: body.to_owned(),
            delay: None,
            extra_headers: vec![],
            fault: None,
        }
    }
    pub fn empty(status: u16) -> Resp {
        Resp::raw(status, "")
    }
    pub fn delayed(mut self, d: Duration) -> Resp {
        self.delay = Some(d);
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Resp {
        self.extra_headers.push((name.into(), value.into()));
        self
    }
    pub fn fault(mut self, fault: Fault) -> Resp {
        self.fault = Some(fault);
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

pub struct Fake {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<Req>>>,
    pub connections: Arc<AtomicUsize>,
}

impl Fake {
    pub fn http(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Fake {
        Fake::start(Arc::new(handler), None)
    }

    pub fn https(
        handler: impl Fn(&Req) -> Resp + Send + Sync + 'static,
        tls: Arc<rustls::ServerConfig>,
    ) -> Fake {
        Fake::start(Arc::new(handler), Some(tls))
    }

    fn start(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (reqs, conns) = (requests.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                conns.fetch_add(1, Ordering::SeqCst);
                let (handler, reqs, tls) = (handler.clone(), reqs.clone(), tls.clone());
                let Ok(socket) = stream.try_clone() else {
                    continue;
                };
                std::thread::spawn(move || {
                    let reset = match tls {
                        None => serve(stream, &handler, &reqs),
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(conn, stream), &handler, &reqs)
                        }
                    };
                    if reset {
                        // A zero linger turns the close into a reset.
                        let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
                    }
                });
            }
        });
        Fake {
            addr,
            requests,
            connections,
        }
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Answers requests until the client closes; true when the connection is to be reset.
fn serve<S: Read + Write>(stream: S, handler: &Handler, reqs: &Mutex<Vec<Req>>) -> bool {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("").to_owned();
        let path = words.next().unwrap_or("").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return false;
        }
        let req = Req {
            method,
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            raw: String::from_utf8_lossy(&body).into_owned(),
        };
        reqs.lock().unwrap().push(req.clone());
        let resp = handler(&req);
        if let Some(d) = resp.delay {
            std::thread::sleep(d);
        }
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            resp.status,
            resp.body.len()
        );
        for (k, v) in &resp.extra_headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let stream = reader.get_mut();
        let written = match resp.fault {
            None => write_all(stream, head.as_bytes()) && write_all(stream, resp.body.as_bytes()),
            Some(Fault::DripBody(every)) => {
                write_all(stream, head.as_bytes()) && drip(stream, resp.body.as_bytes(), every)
            }
            Some(Fault::DripHeaders(every)) => {
                drip(stream, head.as_bytes(), every) && write_all(stream, resp.body.as_bytes())
            }
            Some(Fault::StallBody(d)) => {
                write_all(stream, head.as_bytes());
                std::thread::sleep(d);
                return false;
            }
            Some(Fault::Stall(d)) => {
                std::thread::sleep(d);
                return false;
            }
            Some(Fault::Reset) => return true,
            Some(Fault::ResetMidBody) => {
                let half = &resp.body.as_bytes()[..resp.body.len() / 2];
                write_all(stream, head.as_bytes());
                write_all(stream, half);
                return true;
            }
            Some(Fault::Garbage) => {
                write_all(stream, b"\x16\x03\x01 this is not HTTP at all\r\n\r\n");
                return false;
            }
        };
        if !written {
            return false;
        }
    }
}

fn write_all<S: Write>(stream: &mut S, bytes: &[u8]) -> bool {
    stream.write_all(bytes).is_ok() && stream.flush().is_ok()
}

/// One byte per interval; stops when the client has gone.
fn drip<S: Write>(stream: &mut S, bytes: &[u8], every: Duration) -> bool {
    for b in bytes {
        if !write_all(stream, std::slice::from_ref(b)) {
            return false;
        }
        std::thread::sleep(every);
    }
    true
}

/// A CA, a server certificate for 127.0.0.1 issued by it, and the CA's PEM.
pub struct Pki {
    pub ca_pem: String,
    pub issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf certificate chain and its key, for `names` (IP addresses or DNS names).
    pub fn leaf(
        &self,
        names: &[&str],
    ) -> (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
        String,
        String,
    ) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        (
            vec![cert.der().clone()],
            der,
            cert.pem(),
            key.serialize_pem(),
        )
    }

    pub fn server_config(&self, client_ca: Option<&Pki>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (chain, key, _, _) = self.leaf(&["127.0.0.1"]);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                let der = rustls_pemfile::certs(&mut ca.ca_pem.as_bytes())
                    .next()
                    .unwrap()
                    .unwrap();
                roots.add(der).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        Arc::new(builder.with_single_cert(chain, key).unwrap())
    }
}
