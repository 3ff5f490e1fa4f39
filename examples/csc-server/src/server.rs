//! `csc-server serve`: HTTPS on one address, the bound URL written to `STATE/server.url` once the
//! listener accepts connections, clean stop on SIGTERM/SIGINT. [`serve_app`] and [`tls_config`] /
//! [`tls_config_of`] are the part every reference service shares (the CryptoPro DSS emulator and the
//! GlobalSign DSS emulator, with client certificates, serve their own routes with them).

use crate::db::{self, Db, Durability};
use crate::files::{self, StateDir};
use crate::hsm;
use crate::listener;
use crate::service::{Service, Settings};
use crate::vault::{purpose, Vault};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Options {
    pub listen: SocketAddr,
    pub settings: Settings,
    /// Replaces the module `hsm.toml` names (the same token, e.g. after the library moved).
    pub hsm_module: Option<PathBuf>,
    /// HSM sessions that sign at once.
    pub hsm_sessions: usize,
    pub durability: Durability,
}

pub fn run(state: StateDir, opts: Options) -> Result<(), String> {
    // Opens the database first: a state folder of another schema is refused with its own message.
    let tls = state_tls_config(&state)?;
    // Before any thread: SoftHSM's configuration is an environment variable.
    let mut hsm_config = hsm::configure(&state)?;
    if let Some(module) = opts.hsm_module {
        hsm_config.module = module;
    }
    let store = hsm::open(&state, &hsm_config, opts.hsm_sessions)?;
    if let Some(user) = &opts.settings.accepted.anonymous {
        if !crate::model::USERS.iter().any(|u| u.name == user) {
            return Err(format!(
                "--anonymous-account {user} is no user of the service"
            ));
        }
    }
    let service = Arc::new(Service::load(
        &state,
        store,
        opts.durability,
        opts.settings,
    )?);
    let app = crate::api::router(service.clone());
    serve_app(
        &state,
        opts.listen,
        tls,
        "",
        || app,
        |url| service.set_public_url(url),
    )
}

/// Serves the router `app` makes over HTTPS on `listen` until SIGTERM or SIGINT: the bound URL (with the
/// API's `base_path`, e.g. "/v2") is written to `STATE/server.url` once the listener accepts connections
/// (after `bound` learnt it, on the runtime: it may spawn tasks), and removed at the end.
pub fn serve_app(
    state: &StateDir,
    listen: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    base_path: &str,
    app: impl FnOnce() -> axum::Router,
    bound: impl FnOnce(&str),
) -> Result<(), String> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("listening on {listen}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(serve(state, listener, tls, base_path, app(), bound))
}

fn state_tls_config(state: &StateDir) -> Result<Arc<rustls::ServerConfig>, String> {
    let vault = Vault::load(&state.master_key()).map_err(|e| e.to_string())?;
    let db = Db::open(&state.database())?;
    let conn = db.lock();
    let get = |name: &str| {
        db::get_meta(&conn, name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("state.db has no {name}"))
    };
    let cert = get("tls_cert")?;
    let ca = get("ca_cert")?;
    let key = vault
        .open(purpose::TLS_KEY, &get("tls_key")?)
        .map_err(|e| e.to_string())?;
    tls_config(cert, ca, &key)
}

/// TLS 1.2/1.3 with ring's safe defaults: the server certificate `cert` (DER) with its CA `ca`, the
/// PKCS#8 `key`, HTTP/1.1, no client certificates.
pub fn tls_config(
    cert: Vec<u8>,
    ca: Vec<u8>,
    key: &[u8],
) -> Result<Arc<rustls::ServerConfig>, String> {
    tls_config_of(
        vec![CertificateDer::from(cert), CertificateDer::from(ca)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
        None,
    )
}

/// [`tls_config`] of any certificate `chain` and `key`; with `client_roots`, every connection must show
/// a client certificate that chains to one of them (mutual TLS), else none is asked for.
pub fn tls_config_of(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<rustls::RootCertStore>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match client_roots {
        Some(roots) => {
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("client verifier: {e}"))?
        }
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn serve(
    state: &StateDir,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    base_path: &str,
    app: axum::Router,
    bound: impl FnOnce(&str),
) -> Result<(), String> {
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listener: {e}"))?;
    let url = format!("{}{base_path}", service_url(addr));
    bound(&url);
    // The listening socket already queues connections: clients that read the URL can connect.
    let url_file = state.server_url();
    files::replace(&url_file, url.as_bytes(), 0o644)
        .map_err(|e| format!("{}: {e}", url_file.display()))?;
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
    let result = listener::serve(listener, tls, app, stop).await;
    // A stale URL would send clients to whatever takes the port next.
    if std::fs::read_to_string(&url_file).is_ok_and(|u| u == url) {
        let _ = std::fs::remove_file(&url_file);
    }
    result?;
    log::warn!("stopped");
    Ok(())
}

/// `https://HOST:PORT` for the bound address; a wildcard address is reached via loopback.
fn service_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    let host = if ip.is_unspecified() {
        if ip.is_ipv4() {
            "127.0.0.1".to_owned()
        } else {
            "[::1]".to_owned()
        }
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("https://{host}:{}", addr.port())
}
