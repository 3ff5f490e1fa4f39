//! cryptopro-dss-emulator: a reference emulator of CryptoPro DSS — the identity service (OAuth 2.0 tokens,
//! the confirmation of operations) and the signature service (certificates, raw GOST R 34.10-2012
//! signatures of hashes, transactions, packages) — with real TLS, keys, certificates, a confirmation page
//! and an audit trail, built from DSS's public REST documentation for cloudtoken's tests and demos. See
//! README.md for what it reproduces and what it does not.

mod api;
mod certs;
mod confirm;
mod error;
mod gost;
mod init;
mod model;
mod page;
mod page_html;
mod service;
mod signing;
mod store;
mod sts;
#[cfg(test)]
mod tests;

use clap::{Parser, Subcommand};
use csc_server::files::StateDir;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "cryptopro-dss-emulator",
    version,
    about = "Reference CryptoPro DSS emulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new state folder: CA, TLS certificate, users, certificates and keys, client files.
    Init {
        #[arg(long)]
        state: PathBuf,
        /// Seconds per code of the confirmation page's authenticator.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        totp_period: u64,
    },
    /// Serve the identity and signature services and the confirmation page over HTTPS.
    Serve {
        #[arg(long)]
        state: PathBuf,
        /// Address to listen on; port 0 picks a free port. The URL is written to STATE/server.url.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Seconds the user has to confirm an operation (and the client, to collect it).
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(i64).range(1..=86_400))]
        confirmation_timeout: i64,
        /// Seconds a confirmed sign-in (session) signs.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(1..))]
        session_lifetime: i64,
        /// Seconds an access token lasts.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..))]
        access_token_lifetime: i64,
        /// Consecutive failures of a password or page code that lock it.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        max_attempts: u32,
    },
    /// Demo only: play the user's phone (myDSS) — wait for an operation of USER to confirm, and confirm
    /// (or decline) it; with --count, that many, one after the other.
    DemoConfirm {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        user: String,
        #[arg(long)]
        decline: bool,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Seconds to wait for each operation.
        #[arg(long, default_value_t = 120)]
        wait: u64,
    },
    /// Check the hash chain of the audit trail.
    AuditVerify {
        #[arg(long)]
        state: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = match Cli::parse().command {
        Command::Init { state, totp_period } => init::run(
            &StateDir::new(state.clone()),
            &init::Options { totp_period },
        )
        .map(|()| println!("initialized {}", state.display())),
        Command::Serve {
            state,
            listen,
            confirmation_timeout,
            session_lifetime,
            access_token_lifetime,
            max_attempts,
        } => serve(
            StateDir::new(state),
            listen,
            service::Settings {
                access_lifetime: access_token_lifetime,
                confirmation_timeout,
                session_lifetime,
                max_attempts,
            },
        ),
        Command::DemoConfirm {
            state,
            user,
            decline,
            count,
            wait,
        } => demo_confirm(&StateDir::new(state), &user, decline, count, wait),
        Command::AuditVerify { state } => audit_verify(&StateDir::new(state)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cryptopro-dss-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(state: StateDir, listen: SocketAddr, settings: service::Settings) -> Result<(), String> {
    // SoftHSM is pointed at the state folder before any thread starts.
    let conf = state.path().join(hsm_store::softhsm::CONF_FILE);
    hsm_store::softhsm::use_config(&conf).map_err(|e| e.to_string())?;
    let emulator = Arc::new(service::Emulator::load(&state, settings)?);
    let rsa = emulator.check_hsm()?;
    log::warn!("the HSM store holds the {rsa} RSA key(s) of the certificates");
    let tls = emulator.tls_config()?;
    csc_server::server::serve_app(&state, listen, tls, "", || api::router(emulator), |_| {})
}

fn demo_confirm(
    state: &StateDir,
    user: &str,
    decline: bool,
    count: u32,
    wait: u64,
) -> Result<(), String> {
    let emulator = service::Emulator::load(state, service::Settings::default())?;
    let decision = if decline {
        confirm::Decision::Decline
    } else {
        confirm::Decision::Confirm
    };
    for _ in 0..count {
        let deadline = Instant::now() + Duration::from_secs(wait);
        let item = loop {
            let pending = emulator.pending(user).map_err(|e| e.description)?;
            if let Some(first) = pending.into_iter().next() {
                break first;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nothing of {user} waited for confirmation within {wait} s"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        emulator
            .decide(user, &item.id, decision, "demo-confirm")
            .map_err(|e| format!("confirmation {}: {e:?}", item.id))?;
        let verb = if decline { "declined" } else { "confirmed" };
        if item.kind == "session" {
            println!("{verb}: a sign-in of {user} to the signature service");
        } else {
            let what = item.description.as_deref().unwrap_or("an operation");
            println!("{verb}: {what} ({} document(s))", item.hashes.len());
        }
    }
    Ok(())
}

fn audit_verify(state: &StateDir) -> Result<(), String> {
    let db = store::open(&state.database())?;
    println!("{}", csc_server::audit::verify_report(&db.lock())?);
    Ok(())
}
