//! The agent's connections, all served by one thread: a poll loop that accepts, checks each peer's user
//! (SO_PEERCRED), reads one request line into a zeroizing buffer of bounded size, answers it and closes.
//! A connection that sends nothing costs a buffer, not a thread, and is dropped after CLIENT_TIMEOUT.
//!
//! Calls the protocol (cloudtoken::agent) and `answer` (mod.rs), which holds the store.

use super::{answer, Shared, CLIENT_TIMEOUT};
use cloudtoken::agent::{self as protocol, Request, Response, MAX_MESSAGE_BYTES};
use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const LISTENER: Token = Token(0);
/// Connections served at once; more wait in the socket's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// How long writing an answer (a few hundred bytes) may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

struct Connection {
    stream: UnixStream,
    buf: Zeroizing<Vec<u8>>,
    deadline: Instant,
}

/// Serves until the process ends (the agent exits with `std::process::exit`).
pub fn run(listener: std::os::unix::net::UnixListener, shared: &Shared) {
    if let Err(e) = serve(listener, shared) {
        eprintln!("cloudtoken agent: the socket cannot be served: {e}");
    }
}

fn serve(listener: std::os::unix::net::UnixListener, shared: &Shared) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = UnixListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(256);
    let mut connections: HashMap<Token, Connection> = HashMap::new();
    let mut next = 1usize;
    loop {
        let wait = connections
            .values()
            .map(|c| c.deadline.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_secs(60));
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                continue;
            }
            let token = event.token();
            let done = match connections.get_mut(&token) {
                Some(c) => read_available(c),
                None => false,
            };
            if done {
                if let Some(mut c) = connections.remove(&token) {
                    let _ = poll.registry().deregister(&mut c.stream);
                    finish(c, shared);
                }
            }
        }
        // Accept whatever is waiting (the listener is edge-triggered), up to the bound; past it the rest
        // waits in the backlog and is taken on a later round.
        while connections.len() < MAX_CONNECTIONS {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    if !peer_is_us(&mut stream, shared) {
                        continue;
                    }
                    let token = Token(next);
                    next = next.wrapping_add(1).max(1);
                    poll.registry()
                        .register(&mut stream, token, Interest::READABLE)?;
                    let mut c = Connection {
                        stream,
                        buf: Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_BYTES)),
                        deadline: Instant::now() + CLIENT_TIMEOUT,
                    };
                    // Data may already be there (the edge was before registration).
                    if read_available(&mut c) {
                        let _ = poll.registry().deregister(&mut c.stream);
                        finish(c, shared);
                    } else {
                        connections.insert(token, c);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let now = Instant::now();
        connections.retain(|_, c| {
            let keep = c.deadline > now;
            if !keep {
                let _ = poll.registry().deregister(&mut c.stream);
            }
            keep
        });
    }
}

/// SO_PEERCRED: only this user's processes are served; others get a refusal and the door.
fn peer_is_us(stream: &mut UnixStream, shared: &Shared) -> bool {
    match protocol::peer_uid(stream) {
        Ok(uid) if uid == protocol::own_uid() => true,
        Ok(uid) => {
            if shared.verbose {
                eprintln!("cloudtoken agent: refused a connection from user {uid}");
            }
            respond(
                stream,
                &Response::Refused {
                    reason: "not your agent".into(),
                },
            );
            false
        }
        Err(_) => false,
    }
}

/// Reads what the peer sent so far. True when the request is complete (a newline, the end of the
/// stream, or more than a message may hold).
fn read_available(c: &mut Connection) -> bool {
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        match c.stream.read(&mut chunk[..]) {
            Ok(0) => return true,
            Ok(n) => {
                let room = MAX_MESSAGE_BYTES.saturating_sub(c.buf.len());
                // Never grow past the capacity: a reallocation would leave an unzeroized copy.
                c.buf.extend_from_slice(&chunk[..n.min(room)]);
                if n > room || c.buf.contains(&b'\n') {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Answers a complete request and closes the connection.
fn finish(mut c: Connection, shared: &Shared) {
    let response = match protocol::read_message::<Request>(&mut c.buf.as_slice()) {
        Ok(Some(request)) => answer(request, shared),
        Ok(None) => return,
        Err(e) => Response::Refused {
            reason: format!("bad request: {e}"),
        },
    };
    respond(&mut c.stream, &response);
}

/// Writes one answer, waiting a little for room in the socket buffer.
fn respond(stream: &mut UnixStream, response: &Response) {
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_BYTES));
    if protocol::write_message(&mut *out, response).is_err() {
        return;
    }
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let mut written = 0;
    while written < out.len() && Instant::now() < deadline {
        match stream.write(&out[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudtoken::agent::{read_message, write_message, SadKey};
    use parking_lot::Mutex;

    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }

    #[test]
    fn idle_connections_cost_no_thread_and_do_not_block_requests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            store: Mutex::new(Default::default()),
            last_request: Mutex::new(Instant::now()),
            verbose: false,
        }));
        std::thread::spawn(move || run(listener, shared));
        let before = threads();
        let idle: Vec<_> = (0..300)
            .map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap())
            .collect();
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let key = SadKey {
            service: "https://svc".into(),
            account: "alice".into(),
            credential: "c".into(),
        };
        write_message(&mut s, &Request::Peek { key }).unwrap();
        let answer: Option<Response> = read_message(&mut s).unwrap();
        assert!(
            matches!(answer, Some(Response::Missing | Response::Available { .. })),
            "{answer:?}"
        );
        assert!(
            threads() <= before + 1,
            "{} threads for 300 idle connections",
            threads() - before
        );
        drop(idle);
    }
}
