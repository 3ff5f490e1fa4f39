//! `serve`: HTTPS that requires a client certificate issued by the emulator's root CA (mutual TLS, as
//! the API is reached), the bound API base written to `STATE/server.url` once the listener accepts
//! connections, expired identities swept every few seconds, a clean stop on SIGTERM/SIGINT.

use crate::service::{Service, Settings};
use crate::state::{read_secret, replace, StateDir, HSM_TOKEN};
use axum_server::tls_rustls::RustlsConfig;
use rustls::server::WebPkiClientVerifier;
use std::net::{SocketAddr, TcpListener};
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("client verifier: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

pub fn run(state: StateDir, listen: SocketAddr, settings: Settings) -> Result<(), String> {
    let tls = tls_config(&state)?;
    let store = open_hsm(&state)?;
    let service = Arc::new(Service::load(&state, store, settings)?);
    let listener = TcpListener::bind(listen).map_err(|e| format!("listening on {listen}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(serve(state, listener, tls, service))
}

async fn serve(
    state: StateDir,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: Arc<Service>,
) -> Result<(), String> {
    let app = crate::api::router(service.clone());
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls))
        .map_err(|e| format!("server: {e}"))?
        .handle(handle.clone());
    let mut server_task = tokio::spawn(server.serve(app.into_make_service()));
    let Some(addr) = handle.listening().await else {
        return Err(match server_task.await {
            Ok(Err(e)) => format!("server: {e}"),
            _ => "server did not start".into(),
        });
    };
    let sweeper = service.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let s = sweeper.clone();
            let _ = tokio::task::spawn_blocking(move || s.sweep()).await;
        }
    });
    let url = format!("https://127.0.0.1:{}/v2", addr.port());
    let url_file = state.server_url();
    replace(&url_file, url.as_bytes(), 0o644)?;
    log::warn!("serving {url} (state {})", state.path().display());

    let stop = async {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    };
    let result = tokio::select! {
        _ = stop => {
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
            (&mut server_task).await
        }
        r = &mut server_task => r,
    };
    // A stale URL would send clients to whatever takes the port next.
    if std::fs::read_to_string(&url_file).is_ok_and(|u| u == url) {
        let _ = std::fs::remove_file(&url_file);
    }
    match result {
        Ok(Ok(())) => {
            log::warn!("stopped");
            Ok(())
        }
        Ok(Err(e)) => Err(format!("server: {e}")),
        Err(e) => Err(format!("server task: {e}")),
    }
}
