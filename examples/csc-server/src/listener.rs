//! The HTTPS listener of every reference service: TLS connections accepted on one address, each
//! served on a thread of its own by a single-threaded runtime, until a stop.
//!
//! Why a thread per connection: a request's blocking work (SQLite and its group commit, the HSM,
//! Argon2) then runs on the thread that read the request, and its answer goes out from there. Handing
//! it to a blocking pool and back costs two wake-ups on the other core per request, and on a 2-core
//! machine those wake-ups were a large part of a signHash's cost (README "Benchmark"). A request that
//! waits (a group commit, an approval) holds up only its own connection; HTTP/1.1 serves one request
//! at a time per connection anyway.
//!
//! Owns: accepting, the TLS handshake (bounded), the connection limit, the request extensions every
//! handler may read ([`ConnectInfo`] with the peer address, [`PeerCertificates`]), and the graceful
//! stop. Calls only tokio, rustls, hyper and the router it is given.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Connections served at once; more are closed at once (each holds a thread).
const MAX_CONNECTIONS: usize = 1024;
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has begun a request must have sent all its headers by then.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stop waits for requests under way.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The client certificates of the connection (empty without mutual TLS), a request extension.
#[derive(Clone, Default)]
pub struct PeerCertificates(pub Arc<[CertificateDer<'static>]>);

/// The connections being served, so that a stop can wait for them.
#[derive(Default)]
struct Live {
    count: Mutex<usize>,
    none: Condvar,
}

/// One connection's place in [`Live`], given back when its thread ends, however it ends.
struct Slot(Arc<Live>);

impl Live {
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        if *n >= MAX_CONNECTIONS {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone()))
    }

    /// Waits until no connection is left or `deadline`; returns how many are left.
    fn drain(&self, deadline: Instant) -> usize {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            n = self
                .none
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *n
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = self.0.count.lock().unwrap_or_else(|p| p.into_inner());
        *n -= 1;
        if *n == 0 {
            self.0.none.notify_all();
        }
    }
}

/// Serves `app` over TLS on `listener` until `stop` completes, then lets requests under way finish (at
/// most [`STOP_GRACE`]). Runs on the caller's runtime, which must be multi-threaded (the wait for the
/// connections blocks in place); connections run on threads of their own.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    stop: impl Future<Output = ()>,
) -> Result<(), String> {
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|e| format!("listener: {e}"))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (stopping, stopped) = watch::channel(false);
    let live = Arc::new(Live::default());
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: the next accept may work once connections close.
                    log::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = live.take() else {
            log::warn!("{peer}: {MAX_CONNECTIONS} connections already, closing this one");
            continue;
        };
        // Off this runtime's reactor, onto the connection thread's.
        let tcp = match tcp.into_std() {
            Ok(t) => t,
            Err(e) => {
                log::warn!("{peer}: {e}");
                continue;
            }
        };
        let (acceptor, app, stopped) = (acceptor.clone(), app.clone(), stopped.clone());
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .spawn(move || {
                let _slot = slot;
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(connection(tcp, peer, acceptor, app, stopped)),
                    Err(e) => log::error!("{peer}: no runtime for the connection: {e}"),
                }
            });
        if let Err(e) = spawned {
            log::error!("{peer}: no thread for the connection: {e}");
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    let left = tokio::task::block_in_place(|| live.drain(Instant::now() + STOP_GRACE));
    if left > 0 {
        log::warn!("stopping with {left} connections still open");
    }
    Ok(())
}

/// The TLS handshake and then HTTP/1.1 requests on one connection, until the client closes it, it
/// fails, or the service stops (then the request under way, if any, is finished first).
async fn connection(
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let tcp = match tokio::net::TcpStream::from_std(tcp) {
        Ok(t) => t,
        Err(e) => return log::warn!("{peer}: {e}"),
    };
    // An answer goes out at once, not held back by Nagle's algorithm until the client acknowledges
    // the previous segment.
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return log::debug!("{peer}: TLS handshake: {e}"),
            Err(_) => return log::debug!("{peer}: no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
        },
        _ = stopped.wait_for(|s| *s) => return,
    };
    let certificates = PeerCertificates(
        stream
            .get_ref()
            .1
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect(),
    );
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(certificates.clone());
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, request).await }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    let outcome = tokio::select! {
        r = served.as_mut() => r,
        _ = stopped.wait_for(|s| *s) => {
            served.as_mut().graceful_shutdown();
            match tokio::time::timeout(STOP_GRACE, served).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = outcome {
        log::debug!("{peer}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Waits (blocking, as handlers' service work does) until `flag` is set; false after 10 s.
    fn wait_for(flag: &AtomicBool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while !flag.load(Ordering::SeqCst) {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn client(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> reqwest::blocking::Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .no_proxy()
            .build()
            .unwrap()
    }

    #[test]
    fn connections_block_only_themselves_and_a_stop_finishes_the_request_under_way() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let tls = crate::server::tls_config_of(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
            None,
        )
        .unwrap();
        let fast_done = Arc::new(AtomicBool::new(false));
        let last_begun = Arc::new(AtomicBool::new(false));
        let stop_sent = Arc::new(AtomicBool::new(false));
        let last_answered = Arc::new(AtomicBool::new(false));
        let (f, b, s) = (fast_done.clone(), last_begun.clone(), stop_sent.clone());
        let a = last_answered.clone();
        // "/slow" blocks its thread until "/fast", on another connection, has been answered: with
        // connections sharing a thread it could never be.
        let app = Router::new()
            .route(
                "/fast",
                get(move || async move { f.store(true, Ordering::SeqCst) }),
            )
            .route(
                "/slow",
                get(move || async move {
                    if wait_for(&fast_done) {
                        "waited"
                    } else {
                        "alone"
                    }
                }),
            )
            .route(
                "/last",
                get(move || async move {
                    b.store(true, Ordering::SeqCst);
                    if !wait_for(&s) {
                        return "no stop";
                    }
                    // Still working well after the stop: serve must wait for this answer.
                    std::thread::sleep(Duration::from_millis(100));
                    a.store(true, Ordering::SeqCst);
                    "finished"
                }),
            );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(serve(listener, tls, app, async {
                    let _ = stopped.await;
                }))
        });
        let url = |path: &str| format!("https://localhost:{port}{path}");

        // A client that connects and never says anything holds up no one.
        let _silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (c, slow_url) = (client(&cert), url("/slow"));
        let slow = std::thread::spawn(move || c.get(slow_url).send().unwrap().text().unwrap());
        let c = client(&cert);
        assert!(c.get(url("/fast")).send().unwrap().status().is_success());
        assert_eq!(slow.join().unwrap(), "waited");

        // A stop lets the request under way finish, then serve returns and nobody is let in.
        let (c, last_url) = (client(&cert), url("/last"));
        let last = std::thread::spawn(move || c.get(last_url).send().unwrap().text().unwrap());
        assert!(wait_for(&last_begun));
        stop.send(()).unwrap();
        stop_sent.store(true, Ordering::SeqCst);
        assert_eq!(server.join().unwrap(), Ok(()));
        assert!(last_answered.load(Ordering::SeqCst));
        assert_eq!(last.join().unwrap(), "finished");
        assert!(client(&cert).get(url("/fast")).send().is_err());
    }
}
