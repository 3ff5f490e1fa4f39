//! `cloudtoken`: sets up cloudtoken tokens for a person — enrolment against a signing service, a status
//! report, registration of the module with p11-kit and NSS — and runs the signing agent that lets one
//! authorization serve a batch signed by many processes.

mod agent;
mod config_file;
mod enroll;
mod register;
mod status;
mod status_dss;
mod words;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cloudtoken",
    version,
    about = "Set up cloudtoken tokens (a remote signing service as a PKCS#11 token) and run the signing agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect this computer to your account at a signing service: asks the account password once,
    /// keeps a refresh token (never the password) and writes the module configuration.
    Enroll(enroll::Args),
    /// Show each configured token: service, TLS, credentials, certificates and their pkcs11: URIs,
    /// expiry, and how the second factor is collected.
    Status(status::Args),
    /// Make applications load the module: a p11-kit module file, or an NSS database entry.
    Register(register::Args),
    /// Keep batch authorizations for the signing processes of this user (like ssh-agent).
    Agent(agent::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Enroll(a) => enroll::run(a),
        Command::Status(a) => status::run(a),
        Command::Register(a) => register::run(a),
        Command::Agent(a) => agent::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cloudtoken: {e}");
            ExitCode::FAILURE
        }
    }
}
