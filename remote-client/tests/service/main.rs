//! The client against a scripted service on 127.0.0.1 ([`fake`]): one test binary, one module per subject.

mod fake;
mod faults;
mod sign_in;
mod wire;

use remote_client::{Error, TransportKind};

/// The kind of a transport error; `None` for any other error.
pub fn transport_kind(e: &Error) -> Option<TransportKind> {
    match e {
        Error::Transport { kind, .. } => Some(*kind),
        _ => None,
    }
}
