//! The loopback redirect of a native app's OAuth 2.0 authorization (RFC 8252 §7.3): a listener on
//! 127.0.0.1 at a free port, whose `http://127.0.0.1:PORT/callback` the authorization request names,
//! and the wait for the browser to arrive there with the code (or the error).
//!
//! One thread, no background work: the listener is polled while the caller's `keep_waiting` is asked,
//! each connection's request head is parsed by `httparse`, answered, and closed; dropping the
//! `Loopback` closes the socket at once (a PKCS#11 module leaves no thread behind in its host).
//!
//! Used by the module's credential authorization and by `cloudtoken enroll`. What arrives is handed
//! back whole (path and query) for [`PendingAuthorization`](crate::PendingAuthorization)'s exchange to
//! check `state` and take the code; nothing of it is logged.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const PATH: &str = "/callback";
/// How often the caller's `keep_waiting` is asked while no request arrives.
const TICK: Duration = Duration::from_millis(50);
/// How long one connection may take to send its request head, and its largest size.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HEAD: usize = 16 * 1024;

const DONE_PAGE: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>cloudtoken</title></head><body><h1>Done</h1><p>cloudtoken received the answer of the signing \
service. You can close this window.</p></body></html>";

/// Why no redirect arrived.
#[derive(Debug)]
pub enum NoRedirect {
    /// The deadline passed.
    TimedOut,
    /// The caller stopped the wait (`keep_waiting` said so), with its reason.
    Stopped(String),
    /// The listener failed.
    Failed(String),
}

/// A listener for one redirect.
pub struct Loopback {
    listener: TcpListener,
    redirect_uri: String,
}

impl Loopback {
    /// Listens on 127.0.0.1 at a port the system picks.
    pub fn bind() -> Result<Loopback, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on 127.0.0.1 for the browser's answer: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("the loopback listener has no port: {e}"))?
            .port();
        Ok(Loopback {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}{PATH}"),
        })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits until the browser brings the redirect (returns its path and query), `deadline` passes,
    /// or `keep_waiting` returns a reason to stop (asked every 50 ms). Requests for other paths (a
    /// browser's favicon) are answered 404 and the wait goes on.
    pub fn wait(
        &self,
        deadline: Instant,
        mut keep_waiting: impl FnMut() -> Result<(), String>,
    ) -> Result<Zeroizing<String>, NoRedirect> {
        loop {
            keep_waiting().map_err(NoRedirect::Stopped)?;
            let now = Instant::now();
            if now >= deadline {
                return Err(NoRedirect::TimedOut);
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(target) = answer(stream) {
                        return Ok(target);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(TICK.min(deadline - now));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(NoRedirect::Failed(e.to_string())),
            }
        }
    }
}

/// Reads one request head from `stream` and answers it: the redirect gets the "done" page and is
/// returned; anything else gets 404 (another path or method) or 400 (no HTTP request).
fn answer(mut stream: TcpStream) -> Option<Zeroizing<String>> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(HEAD_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HEAD_TIMEOUT));
    let mut buf = Zeroizing::new(Vec::with_capacity(1024));
    let mut chunk = [0u8; 1024];
    let target = loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let path = request.path.unwrap_or_default();
                let route = path.split(['?', '#']).next().unwrap_or_default();
                break (request.method == Some("GET") && route == PATH)
                    .then(|| Zeroizing::new(path.to_owned()));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => {
                respond(&mut stream, "400 Bad Request", "");
                return None;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    match &target {
        Some(_) => respond(&mut stream, "200 OK", DONE_PAGE),
        None => respond(&mut stream, "404 Not Found", ""),
    }
    target
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n\
         Referrer-Policy: no-referrer\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// `127.0.0.1:PORT` of a redirect URI.
    fn addr(uri: &str) -> String {
        let host = uri.trim_start_matches("http://").split('/').next();
        host.unwrap().to_owned()
    }

    fn get(uri: &str, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr(uri)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn the_redirect_is_returned_and_other_paths_are_not() {
        let l = Loopback::bind().unwrap();
        assert!(l.redirect_uri().starts_with("http://127.0.0.1:"));
        assert!(l.redirect_uri().ends_with("/callback"));
        let uri = l.redirect_uri().to_owned();
        let browser = std::thread::spawn(move || {
            let favicon = get(&uri, "/favicon.ico");
            let mut junk = std::net::TcpStream::connect(addr(&uri)).unwrap();
            junk.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
            let mut refused = String::new();
            junk.read_to_string(&mut refused).unwrap();
            assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
            let done = get(&uri, "/callback?code=abc&state=xyz");
            (favicon, done)
        });
        let got = l
            .wait(Instant::now() + Duration::from_secs(10), || Ok(()))
            .unwrap();
        assert_eq!(got.as_str(), "/callback?code=abc&state=xyz");
        let (favicon, done) = browser.join().unwrap();
        assert!(favicon.starts_with("HTTP/1.1 404"), "{favicon}");
        assert!(done.starts_with("HTTP/1.1 200") && done.contains("You can close this window"));
    }

    #[test]
    fn each_listener_answers_until_dropped() {
        for round in 0..3 {
            let l = Loopback::bind().unwrap();
            let uri = l.redirect_uri().to_owned();
            let browser = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                get(&uri, &format!("/callback?code={round}"))
            });
            let got = l
                .wait(Instant::now() + Duration::from_secs(10), || Ok(()))
                .unwrap();
            assert_eq!(got.as_str(), format!("/callback?code={round}"));
            assert!(browser.join().unwrap().starts_with("HTTP/1.1 200"));
            let uri = l.redirect_uri().to_owned();
            drop(l);
            assert!(
                std::net::TcpStream::connect(addr(&uri)).is_err(),
                "closed when dropped"
            );
        }
    }

    #[test]
    fn the_wait_ends_at_the_deadline_or_when_told() {
        let l = Loopback::bind().unwrap();
        let started = Instant::now();
        assert!(matches!(
            l.wait(Instant::now() + Duration::from_millis(300), || Ok(())),
            Err(NoRedirect::TimedOut)
        ));
        assert!(started.elapsed() < Duration::from_secs(3));
        let mut n = 0;
        let stopped = l.wait(Instant::now() + Duration::from_secs(10), || {
            n += 1;
            if n > 2 {
                Err("cancelled".into())
            } else {
                Ok(())
            }
        });
        assert!(matches!(stopped, Err(NoRedirect::Stopped(ref r)) if r == "cancelled"));
    }
}
