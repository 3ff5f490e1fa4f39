//! csc-server: a reference Cloud Signature Consortium (CSC API v1.0.4 / v2.0) signing service with real
//! TLS, keys, certificates, PIN and OTP checks, lockouts and an audit trail, for cloudtoken's tests and
//! demos. See README.md.

use csc_server::{access, audit, db, hsm, init, phone, server, service};

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
    /// Create a new state folder: HSM token, CA, TLS certificate, demo users and credentials, client
    /// files.
    Init {
        #[arg(long)]
        state: PathBuf,
        /// TOTP time step in seconds.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        totp_period: u64,
        /// The PKCS#11 module that holds the keys. Without --hsm-token it must be SoftHSM2 (it gets
        /// a new token whose files live in the state folder).
        #[arg(long, default_value = hsm_store::softhsm::DEFAULT_MODULE)]
        hsm_module: PathBuf,
        /// Use this initialized token of --hsm-module (by label) instead of a new SoftHSM token.
        #[arg(long, requires = "hsm_pin_file")]
        hsm_token: Option<String>,
        /// A file (mode 0600) with the user PIN of --hsm-token; init copies it to STATE/hsm.pin.
        #[arg(long, requires = "hsm_token")]
        hsm_pin_file: Option<PathBuf>,
    },
    /// Serve the CSC API over HTTPS.
    Serve {
        #[arg(long)]
        state: PathBuf,
        /// Address to listen on; port 0 picks a free port. The URL is written to STATE/server.url.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Seconds a SAD stays valid (unless its credential has a lifetime of its own: the seals' is
        /// 3600).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(1..))]
        sad_lifetime: i64,
        /// The SAD lifetime of one credential, ID=SECONDS (repeatable).
        #[arg(long = "credential-sad-lifetime", value_name = "ID=SECONDS", value_parser = credential_lifetime)]
        credential_sad_lifetimes: Vec<(String, i64)>,
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
        /// Load this PKCS#11 module instead of the one STATE/hsm.toml names (same token).
        #[arg(long)]
        hsm_module: Option<PathBuf>,
        /// When a database commit counts as durable: `normal` (survives a crash of the service) or
        /// `full` (also a power loss: every commit is fsynced; concurrent requests share commits).
        #[arg(long, default_value = "normal", value_parser = ["normal", "full"])]
        durability: String,
        /// HSM sessions that sign at the same time.
        #[arg(long, default_value_t = hsm::DEFAULT_SESSIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
        hsm_sessions: usize,
        /// The ways of signing in the service accepts: `login` (auth/login), `oauth2` (the OAuth 2.0
        /// server), `api-key` (x-api-key), `none` (no sign-in: requests act for --anonymous-account).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "login,oauth2,api-key"
        )]
        auth: Vec<access::AuthKind>,
        /// The account requests without credentials act for, when --auth includes `none`.
        #[arg(long, default_value = "alice")]
        anonymous_account: String,
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
        Command::Init {
            state,
            totp_period,
            hsm_module,
            hsm_token,
            hsm_pin_file,
        } => init_command(&state, totp_period, hsm_module, hsm_token, hsm_pin_file),
        Command::Serve {
            state,
            listen,
            sad_lifetime,
            credential_sad_lifetimes,
            access_token_lifetime,
            max_attempts,
            approval_timeout,
            hsm_module,
            hsm_sessions,
            durability,
            auth,
            anonymous_account,
        } => server::run(
            StateDir::new(state),
            server::Options {
                listen,
                settings: service::Settings {
                    sad_lifetime,
                    credential_sad_lifetimes: credential_sad_lifetimes.into_iter().collect(),
                    access_token_lifetime,
                    max_attempts,
                    approval_timeout,
                    accepted: access::Accepted::new(&auth, &anonymous_account),
                },
                hsm_module,
                hsm_sessions,
                durability: if durability == "full" {
                    db::Durability::Full
                } else {
                    db::Durability::Normal
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

/// `ID=SECONDS` of `--credential-sad-lifetime`.
fn credential_lifetime(s: &str) -> Result<(String, i64), String> {
    let (id, secs) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not ID=SECONDS"))?;
    match secs.parse::<i64>() {
        Ok(n) if n >= 1 && !id.is_empty() => Ok((id.to_owned(), n)),
        _ => Err(format!("{s:?} is not ID=SECONDS (SECONDS at least 1)")),
    }
}

fn init_command(
    state: &std::path::Path,
    totp_period: u64,
    module: PathBuf,
    token: Option<String>,
    pin_file: Option<PathBuf>,
) -> Result<(), String> {
    let hsm = match (token, pin_file) {
        (Some(token), Some(pin_file)) => hsm::Choice::Token {
            module,
            token,
            pin: hsm::read_pin_file(&pin_file)?,
        },
        _ => hsm::Choice::SoftHsmInState { module },
    };
    init::run(state, &init::Options { totp_period, hsm }).map_err(|e| e.to_string())?;
    println!("initialized {}", state.display());
    Ok(())
}

fn audit_verify(state: &StateDir) -> Result<(), String> {
    let db = db::Db::open(&state.database())?;
    println!("{}", audit::verify_report(&db.lock())?);
    Ok(())
}
