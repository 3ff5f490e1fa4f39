//! csc-server: a reference Cloud Signature Consortium (CSC API v1.0.4 / v2.0) signing service with real
//! TLS, keys, certificates, PIN and OTP checks, lockouts and an audit trail, for cloudtoken's tests and
//! demos. See README.md.

use csc_server::{audit, db, init, phone, server, service};

use clap::{Parser, Subcommand};
use csc_server::files::StateDir;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "csc-server",
    version,
    about = "Reference CSC API v1/v2 signing service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new state folder: CA, TLS certificate, demo users and credentials, client files.
    Init {
        #[arg(long)]
        state: PathBuf,
        /// TOTP time step in seconds.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        totp_period: u64,
    },
    /// Serve the CSC API over HTTPS.
    Serve {
        #[arg(long)]
        state: PathBuf,
        /// Address to listen on; port 0 picks a free port. The URL is written to STATE/server.url.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Seconds a SAD stays valid.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(1..))]
        sad_lifetime: i64,
        /// Seconds an access token stays valid.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..))]
        access_token_lifetime: i64,
        /// Consecutive failures of a password, PIN or OTP that lock it.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        max_attempts: u32,
        /// Seconds the user has to approve a request of an approval credential on the approval page
        /// (and the client, to collect the SAD of an approved one).
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(i64).range(1..=86_400))]
        approval_timeout: i64,
    },
    /// Check the hash chain of the audit trail.
    AuditVerify {
        #[arg(long)]
        state: PathBuf,
    },
    /// Demo only: print what the user's phone shows for a credential — its current TOTP code, or the
    /// newest SMS code the service sent for it — or, with --account, the current code of the user's
    /// account for the approval page login.
    DemoOtp {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, required_unless_present = "account", conflicts_with = "account")]
        credential: Option<String>,
        /// A user name (alice, bob, carol).
        #[arg(long)]
        account: Option<String>,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init { state, totp_period } => init::run(&state, &init::Options { totp_period })
            .map(|()| println!("initialized {}", state.display()))
            .map_err(|e| e.to_string()),
        Command::Serve {
            state,
            listen,
            sad_lifetime,
            access_token_lifetime,
            max_attempts,
            approval_timeout,
        } => server::run(
            StateDir::new(state),
            server::Options {
                listen,
                settings: service::Settings {
                    sad_lifetime,
                    access_token_lifetime,
                    max_attempts,
                    approval_timeout,
                },
            },
        ),
        Command::AuditVerify { state } => audit_verify(&StateDir::new(state)),
        Command::DemoOtp {
            state,
            credential,
            account,
        } => {
            let state = StateDir::new(state);
            match (credential, account) {
                (_, Some(user)) => phone::account_code(&state, &user),
                (Some(credential), None) => phone::current_code(&state, &credential),
                (None, None) => Err("give --credential or --account".to_owned()),
            }
            .map(|code| println!("{code}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("csc-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn audit_verify(state: &StateDir) -> Result<(), String> {
    let db = db::Db::open(&state.database())?;
    let verdict = audit::verify(&db.lock()).map_err(|e| format!("reading the audit trail: {e}"))?;
    match verdict {
        audit::Verification::Ok { entries } => {
            println!("audit chain OK ({entries} entries)");
            Ok(())
        }
        audit::Verification::Broken { seq, reason } => {
            Err(format!("audit chain broken at entry {seq}: {reason}"))
        }
    }
}
