//! `cloudtoken`: sets up cloudtoken tokens for a person — enrolment against a signing service, a status
//! report, registration of the module with p11-kit and NSS — and runs the signing agent that lets one
//! authorization serve a batch signed by many processes.
//!
//! A library so that two programs share one command line: the `cloudtoken` binary (src/main.rs) runs
//! it, and `cloudtoken-docs` (src/bin/cloudtoken-docs/) writes the man pages and shell completions from
//! it when the Debian package is built.

mod agent;
mod config_file;
mod enroll;
mod enroll_auth;
mod register;
mod signin;
mod status;
mod status_globalsign;
mod words;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Connect this computer to your account at a signing service: signs in once (the account
    /// password, a browser sign-in, or the secrets you hold), keeps a refresh token (never the
    /// password) and writes the module configuration.
    Enroll(Box<enroll::Args>),
    /// Show each configured token: service, TLS, credentials, certificates and their pkcs11: URIs,
    /// expiry, and how the second factor is collected.
    Status(status::Args),
    /// Make applications load the module: a p11-kit module file, or an NSS database entry.
    Register(register::Args),
    /// Keep batch authorizations for the signing processes of this user (like ssh-agent).
    Agent(agent::Args),
}

/// The command line, as clap describes it (for man pages and completions).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the arguments of this process and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Enroll(a) => enroll::run(*a),
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
