//! globalsign-dss-emulator: a reference emulator of the GlobalSign Digital Signing Service API v2 —
//! mutual TLS, API key and secret, short-lived identity certificates from a demo CA with every key in
//! an HSM (SoftHSM2 through hsm-store), quotas, rate limits, the documented error bodies and an
//! audit trail — for cloudtoken's tests and demos. See README.md for what it reproduces.

mod api;
mod audit;
mod init;
mod limits;
mod pki;
mod random;
mod server;
mod service;
mod state;

use clap::{Parser, Subcommand};
use limits::Rate;
use state::StateDir;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "globalsign-dss-emulator",
    version,
    about = "Reference emulator of the GlobalSign DSS API v2"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new state folder: HSM, CAs, TLS certificates, the account and its client files.
    Init {
        #[arg(long)]
        state: PathBuf,
        /// Signatures the account may make.
        #[arg(long, default_value_t = 100_000)]
        signature_quota: u64,
        /// Time-stamps the account may request.
        #[arg(long, default_value_t = 100_000)]
        timestamp_quota: u64,
    },
    /// Serve the API over HTTPS with client certificates.
    Serve {
        #[arg(long)]
        state: PathBuf,
        /// Address to listen on; port 0 picks a free port. The API base is written to STATE/server.url.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Seconds an identity's certificate (and key) lasts: ten minutes at GlobalSign.
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(5..=86_400))]
        identity_lifetime: u64,
        /// Seconds a login's access token lasts.
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        session_lifetime: u64,
        /// Logins allowed per window, COUNT/SECONDS.
        #[arg(long, default_value = "30/60")]
        rate_logins: Rate,
        /// Identities allowed per window, COUNT/SECONDS.
        #[arg(long, default_value = "60/60")]
        rate_identities: Rate,
        /// Signatures allowed per window, COUNT/SECONDS.
        #[arg(long, default_value = "50/1")]
        rate_signatures: Rate,
        /// Signatures the account has left for this run (default: the account's quota).
        #[arg(long)]
        signature_quota: Option<u64>,
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
        Command::Init {
            state,
            signature_quota,
            timestamp_quota,
        } => init::run(
            &state,
            &init::Options {
                signature_quota,
                timestamp_quota,
            },
        )
        .map(|()| println!("initialized {}", state.display())),
        Command::Serve {
            state,
            listen,
            identity_lifetime,
            session_lifetime,
            rate_logins,
            rate_identities,
            rate_signatures,
            signature_quota,
        } => server::run(
            StateDir::new(state),
            listen,
            service::Settings {
                identity_lifetime: Duration::from_secs(identity_lifetime),
                session_lifetime: Duration::from_secs(session_lifetime),
                logins: rate_logins,
                identities: rate_identities,
                signatures: rate_signatures,
                signature_quota,
            },
        ),
        Command::AuditVerify { state } => audit::verify(&StateDir::new(state).audit())
            .map(|n| println!("audit chain OK ({n} entries)")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("globalsign-dss-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
