//! `serve`: HTTPS that requires a client certificate issued by the emulator's root CA (mutual TLS, as
//! the API is reached), expired identities swept every few seconds; on csc-server's listener
//! (`csc_server::server::serve_app`: the bound API base written to `STATE/server.url` once the listener
//! accepts connections, a clean stop on SIGTERM/SIGINT).

use crate::service::{Service, Settings};
use crate::state::{read_secret, StateDir, HSM_TOKEN};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Sessions of the HSM store: concurrent signers sign in parallel.
const HSM_SESSIONS: usize = 4;

/// The emulator's HSM token, logged in (SoftHSM2 configured by the state folder).
pub fn open_hsm(state: &StateDir) -> Result<Arc<hsm_store::Store>, String> {
    hsm_store::softhsm::use_config(&state.softhsm_conf()).map_err(|e| e.to_string())?;
    let module = hsm_store::Module::load(Path::new(hsm_store::softhsm::DEFAULT_MODULE))
        .map_err(|e| e.to_string())?;
    let pin = read_secret(&state.hsm_pin())?;
    hsm_store::Store::open(module, HSM_TOKEN, &pin, HSM_SESSIONS)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

fn tls_config(state: &StateDir) -> Result<Arc<rustls::ServerConfig>, String> {
    let read =
        |p: std::path::PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));
    let chain = rustls_pemfile::certs(&mut read(state.tls_cert())?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.pem: {e}"))?;
    let key = rustls_pemfile::private_key(
        &mut zeroize::Zeroizing::new(read(state.tls_key())?).as_slice(),
    )
    .map_err(|e| format!("tls.key: {e}"))?
    .ok_or("tls.key holds no key")?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut read(state.ca_pem())?.as_slice()) {
        roots
            .add(ca.map_err(|e| format!("ca.pem: {e}"))?)
            .map_err(|e| format!("ca.pem: {e}"))?;
    }
    csc_server::server::tls_config_of(chain, key, Some(roots))
}

pub fn run(state: StateDir, listen: SocketAddr, settings: Settings) -> Result<(), String> {
    let tls = tls_config(&state)?;
    let store = open_hsm(&state)?;
    let service = Arc::new(Service::load(&state, store, settings)?);
    // The listener's part of the state folder (`server.url`) is laid out as csc-server's.
    let listener_state = csc_server::files::StateDir::new(state.path().to_path_buf());
    let app = crate::api::router(service.clone());
    csc_server::server::serve_app(
        &listener_state,
        listen,
        tls,
        "/v2",
        || app,
        |_| {
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SWEEP_EVERY).await;
                    let s = service.clone();
                    let _ = tokio::task::spawn_blocking(move || s.sweep()).await;
                }
            });
        },
    )
}
