//! The client against a scripted service on 127.0.0.1 ([`fake`]): one test binary, one module per subject.

mod fake;
mod faults;
mod oauth;
mod sign_in;
mod tolerance;
mod wire;

use remote_client::{ApiVersion, ClientConfig, Error, TransportKind};
use std::time::Duration;

/// A client configuration for a fake service on loopback: plain http allowed, `version` on the wire.
pub fn loopback(url: &str, version: ApiVersion) -> ClientConfig {
    let mut cfg = ClientConfig::new(url);
    cfg.api_version = version;
    cfg.allow_loopback_http = true;
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

/// The kind of a transport error; `None` for any other error.
pub fn transport_kind(e: &Error) -> Option<TransportKind> {
    match e {
        Error::Transport { kind, .. } => Some(*kind),
        _ => None,
    }
}
