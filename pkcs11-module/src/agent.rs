//! The signing agent: its protocol, and the module's side of it.
//!
//! A one-time code works once (RFC 6238 §5.2), yet many workflows start one process per document (a
//! script calling `pdfsig` in a loop). `cloudtoken agent` is a small per-user process, like ssh-agent,
//! that keeps the unused part of a SCAL 1 batch authorization (the SAD and how many signatures it still
//! covers) in memory and hands it out one signature at a time to the next processes of the same user.
//!
//! Protocol: a Unix stream socket; per connection one request and one response, each a single line of
//! JSON of at most [`MAX_MESSAGE_BYTES`]. Both ends check with SO_PEERCRED that the other end runs as the
//! same user. Messages that hold a SAD are only ever built and read in zeroizing buffers.
//!
//! The module uses the agent named by `CLOUDTOKEN_AGENT_SOCK`, else the token's `agent_socket`; never
//! for SCAL 2 (those SADs are bound to one hash). Any failure to reach the agent is logged at warn level
//! and the module authorizes as it would without one.

use crate::config::TokenConfig;
use remote_client::Secret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// The agent's socket, exported by `cloudtoken agent` like SSH_AUTH_SOCK.
pub const SOCKET_ENV: &str = "CLOUDTOKEN_AGENT_SOCK";
/// Longest request or response line, newline included.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// A signer waits at most this long for the agent before signing without it.
const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// Whose authorization a SAD is: a credential of an account at a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SadKey {
    pub service: String,
    pub account: String,
    pub credential: String,
}

/// A SAD inside a message. Its `Debug` is redacted like every [`Secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct WireSad(pub Secret);

impl Serialize for WireSad {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose())
    }
}

impl<'de> Deserialize<'de> for WireSad {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Secret::deserialize(d).map(WireSad)
    }
}

impl fmt::Debug for WireSad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Keep `sad` for `signatures` more signatures, until `expires_in_ms` from now. Replaces what the
    /// agent held for the key.
    Put {
        key: SadKey,
        sad: WireSad,
        signatures: u32,
        expires_in_ms: u64,
    },
    /// Take `signatures` signatures' worth of the SAD: all of them or none.
    Take { key: SadKey, signatures: u32 },
    /// How many signatures the agent could hand out for the key, without taking any.
    Peek { key: SadKey },
    /// Drop the key's SAD (the service refused it).
    Forget { key: SadKey },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    Stored,
    Granted {
        sad: WireSad,
        expires_in_ms: u64,
        /// Signatures left in the agent after this one.
        remaining: u32,
    },
    Available {
        signatures: u32,
    },
    /// Nothing (or not enough) held for the key.
    Missing,
    Forgotten,
    Refused {
        reason: String,
    },
}

/// A `Write` over a buffer that never grows past its capacity, so a message never leaves an unzeroized
/// copy behind in a reallocated buffer.
struct Bounded<'a>(&'a mut Vec<u8>);

impl Write for Bounded<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.0.len() + data.len() > self.0.capacity() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message too long",
            ));
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes one message line.
pub fn write_message<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_BYTES));
    serde_json::to_writer(Bounded(&mut buf), msg).map_err(io::Error::from)?;
    Bounded(&mut buf).write_all(b"\n")?;
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one message line. `Ok(None)`: the peer closed the connection without sending anything.
pub fn read_message<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_MESSAGE_BYTES]);
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].iter().position(|b| *b == b'\n') {
            let msg = serde_json::from_slice(&buf[..end]).map_err(|e| {
                // Only the kind and position: serde's own message may quote the input, a SAD.
                let kind = match e.classify() {
                    serde_json::error::Category::Data => "not a known message",
                    _ => "not JSON",
                };
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{kind} (column {})", e.column()),
                )
            })?;
            return Ok(Some(msg));
        }
        if len == buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message too long",
            ));
        }
        let n = r.read(&mut buf[len..])?;
        if n == 0 {
            return if len == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        len += n;
    }
}

/// The user ID of the process at the other end of a connected Unix socket (SO_PEERCRED).
pub fn peer_uid(stream: &impl AsRawFd) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given, and the descriptor is open for
    // as long as `stream` is borrowed.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// One request and its response.
pub fn exchange(socket: &Path, request: &Request) -> Result<Response, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connecting: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let uid = peer_uid(&stream).map_err(|e| format!("checking the agent's user: {e}"))?;
    if uid != own_uid() {
        return Err(format!(
            "the agent runs as user {uid}, not as you; not using it"
        ));
    }
    write_message(&mut stream, request).map_err(|e| format!("sending: {e}"))?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    read_message(&mut stream)
        .map_err(|e| format!("reading the answer: {e}"))?
        .ok_or_else(|| "the agent closed the connection without answering".to_owned())
}

static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The agent one token uses, if any.
pub struct Agent {
    socket: PathBuf,
    service: String,
    account: String,
}

impl Agent {
    /// `CLOUDTOKEN_AGENT_SOCK` if set, else the token's `agent_socket`; `service` is the service's
    /// address, which with the account names whose batches the agent keeps.
    pub fn for_token(config: &TokenConfig, service: &str) -> Option<Agent> {
        let socket = std::env::var_os(SOCKET_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| config.agent_socket.clone())?;
        Some(Agent::at(socket, service, &config.account))
    }

    /// The agent at `socket`, keeping batches of `account` at `service`.
    pub fn at(socket: PathBuf, service: &str, account: &str) -> Agent {
        Agent {
            socket,
            service: service.trim_end_matches('/').to_owned(),
            account: account.to_owned(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether an agent answers on the socket (as this user).
    pub fn is_running(&self) -> bool {
        exchange(&self.socket, &Request::Peek { key: self.key("") }).is_ok()
    }

    fn key(&self, credential: &str) -> SadKey {
        SadKey {
            service: self.service.clone(),
            account: self.account.clone(),
            credential: credential.to_owned(),
        }
    }

    fn ask(&self, request: &Request) -> Option<Response> {
        match exchange(&self.socket, request) {
            Ok(Response::Refused { reason }) => {
                log::warn!("agent {}: refused: {reason}", self.socket.display());
                None
            }
            Ok(r) => Some(r),
            Err(e) => {
                // Said once at warn level per process; a signer asks the agent several times.
                if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    log::debug!("agent {}: {e}; signing without it", self.socket.display());
                } else {
                    log::warn!("agent {}: {e}; signing without it", self.socket.display());
                }
                None
            }
        }
    }

    /// One signature's worth of a batch authorization held by the agent, with its remaining lifetime.
    pub fn take_one(&self, credential: &str) -> Option<(Secret, Duration)> {
        let request = Request::Take {
            key: self.key(credential),
            signatures: 1,
        };
        match self.ask(&request)? {
            Response::Granted {
                sad,
                expires_in_ms,
                remaining,
            } => {
                log::info!(
                    "agent: using a batch authorization of {credential} held by the agent \
                     ({remaining} signatures left there)"
                );
                Some((sad.0, Duration::from_millis(expires_in_ms)))
            }
            _ => None,
        }
    }

    /// Whether the agent holds at least one signature for the credential.
    pub fn has_signature(&self, credential: &str) -> bool {
        let request = Request::Peek {
            key: self.key(credential),
        };
        matches!(self.ask(&request), Some(Response::Available { signatures }) if signatures > 0)
    }

    /// Hands the rest of a batch authorization to the agent. False if the agent did not take it.
    pub fn put(
        &self,
        credential: &str,
        sad: &Secret,
        signatures: u32,
        expires_in: Duration,
    ) -> bool {
        let request = Request::Put {
            key: self.key(credential),
            sad: WireSad(sad.clone()),
            signatures,
            expires_in_ms: u64::try_from(expires_in.as_millis()).unwrap_or(u64::MAX),
        };
        let stored = matches!(self.ask(&request), Some(Response::Stored));
        if stored {
            log::info!(
                "agent: {signatures} more signatures of {credential} left with the agent for the next processes"
            );
        }
        stored
    }

    /// Tells the agent to drop the credential's SAD (the service no longer accepts it).
    pub fn forget(&self, credential: &str) {
        let _ = self.ask(&Request::Forget {
            key: self.key(credential),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SadKey {
        SadKey {
            service: "https://h".into(),
            account: "alice".into(),
            credential: "c1".into(),
        }
    }

    #[test]
    fn messages_round_trip_and_hide_the_sad_from_debug() {
        let put = Request::Put {
            key: key(),
            sad: WireSad(Secret::new("sad-value-1")),
            signatures: 59,
            expires_in_ms: 1000,
        };
        let mut wire = Vec::new();
        write_message(&mut wire, &put).unwrap();
        assert_eq!(wire.last(), Some(&b'\n'));
        assert_eq!(wire.iter().filter(|b| **b == b'\n').count(), 1);
        let back: Request = read_message(&mut wire.as_slice()).unwrap().unwrap();
        match &back {
            Request::Put {
                key: k,
                sad,
                signatures,
                expires_in_ms,
            } => {
                assert_eq!(k, &key());
                assert_eq!(sad.0.expose(), "sad-value-1");
                assert_eq!((*signatures, *expires_in_ms), (59, 1000));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{back:?}").contains("sad-value-1"));
    }

    #[test]
    fn read_refuses_oversized_and_truncated_messages() {
        let long = vec![b'x'; MAX_MESSAGE_BYTES + 10];
        let e = read_message::<Request>(&mut long.as_slice()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e = read_message::<Request>(&mut &b"{\"op\":\"peek\""[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(read_message::<Request>(&mut &b""[..]).unwrap().is_none());
        let e = read_message::<Request>(&mut &b"{\"op\":\"steal\"}\n"[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A malformed message is not quoted back.
        let bad = b"{\"op\":\"take\",\"key\":{\"service\":\"s\",\"account\":\"a\",\"credential\":\"c\"},\"signatures\":\"SECRET-SAD\"}\n";
        let e = read_message::<Request>(&mut &bad[..]).unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[test]
    fn write_refuses_a_message_past_the_limit() {
        let put = Request::Put {
            key: key(),
            sad: WireSad(Secret::new("s".repeat(MAX_MESSAGE_BYTES))),
            signatures: 1,
            expires_in_ms: 1,
        };
        let mut wire = Vec::new();
        assert!(write_message(&mut wire, &put).is_err());
        assert!(wire.is_empty());
    }

    #[test]
    fn peer_uid_of_a_socket_pair_is_ours() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), own_uid());
    }
}
