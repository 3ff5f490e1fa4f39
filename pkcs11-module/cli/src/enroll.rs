//! `cloudtoken enroll`: connects a token to an account at a signing service. The account password is asked
//! once and sent only to the service's `auth/login` (with rememberMe); what is kept is the refresh token it
//! issues, in a file only the user can read, so that the module can list the certificates without ever
//! knowing the password. The token's entry in the module configuration is written or updated.

use crate::config_file::{self, TokenEntry};
use crate::status::credential_words;
use crate::words::{self, Failure, Outcome};
use cloudtoken::config;
use remote_client::{ApiVersion, ClientConfig, CscClient, Secret};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

#[derive(Clone, Copy, clap::ValueEnum)]
enum ApiArg {
    V1,
    V2,
    Auto,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Pin,
    ProtectedPath,
    LoginFree,
}

#[derive(clap::Args)]
pub struct Args {
    /// The signing service's address (its base URL, without /csc/v1 or /csc/v2).
    #[arg(long)]
    url: String,
    /// Your account name at the service.
    #[arg(long)]
    account: String,
    /// PEM file with the certificate authority of the service's TLS certificate, when the service does not
    /// use one this computer already trusts.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// The token's name in applications (at most 32 bytes; default: the account name).
    #[arg(long)]
    label: Option<String>,
    /// CSC API version to speak.
    #[arg(long, value_enum, default_value = "auto")]
    api: ApiArg,
    /// The configuration file to write (default: CLOUDTOKEN_CONFIG, else
    /// ~/.config/cloudtoken/cloudtoken.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Read the account password from the first line of standard input instead of the terminal.
    #[arg(long)]
    password_stdin: bool,
    /// How applications log in to the token (README, "Second factor").
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Program the module runs to ask you for the PIN or a one-time code (examples/prompt/).
    #[arg(long)]
    prompt_command: Option<PathBuf>,
    /// An argument for the prompt program (repeat for more).
    #[arg(long = "prompt-arg", requires = "prompt_command")]
    prompt_args: Vec<String>,
    /// The socket of a `cloudtoken agent` that keeps batch authorizations for the module.
    #[arg(long)]
    agent_socket: Option<PathBuf>,
}

fn absolute(path: &Path, what: &str) -> Outcome<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| {
        Failure(format!(
            "The {what} {} cannot be used: {e}.",
            path.display()
        ))
    })
}

fn read_password(from_stdin: bool, account: &str, url: &str) -> Outcome<Secret> {
    let password = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            Failure(format!(
                "The password could not be read from standard input: {e}."
            ))
        })?;
        let end = line.trim_end_matches(['\n', '\r']).len();
        Secret::new(&line[..end])
    } else {
        let typed = rpassword::prompt_password(format!("Password of {account} at {url}: ")).map_err(
            |e| {
                Failure(format!(
                    "There is no terminal to ask for the password ({e}); pass it on standard input with \
                     --password-stdin."
                ))
            },
        )?;
        Secret::new(typed)
    };
    if password.is_empty() {
        return Err(Failure::new("The password is empty; nothing was changed."));
    }
    Ok(password)
}

pub fn run(args: Args) -> Outcome<ExitCode> {
    let label = args.label.clone().unwrap_or_else(|| args.account.clone());
    if label.is_empty() || label.len() > 32 {
        return Err(Failure::new(
            "The token label must be 1 to 32 bytes long (applications show at most 32); choose a shorter \
             --label.",
        ));
    }
    let url = args.url.trim().trim_end_matches('/').to_owned();
    let ca_file = args
        .ca_file
        .as_deref()
        .map(|p| absolute(p, "CA file"))
        .transpose()?;
    let prompt_command = match &args.prompt_command {
        Some(p) => {
            let program = absolute(p, "prompt program")?;
            config::files::check_program("prompt_command", &program)
                .map_err(|e| Failure(format!("The prompt program cannot be used: {e}.")))?;
            let mut cmd = vec![program.display().to_string()];
            cmd.extend(args.prompt_args.iter().cloned());
            Some(cmd)
        }
        None => None,
    };
    let mut cc = ClientConfig::new(url.clone());
    cc.ca_file = ca_file.clone();
    cc.api_version = match args.api {
        ApiArg::V1 => ApiVersion::V1,
        ApiArg::V2 => ApiVersion::V2,
        ApiArg::Auto => ApiVersion::Auto,
    };
    let explain = |e: remote_client::Error| words::service(&url, ca_file.as_deref(), &e);
    let client = CscClient::new(&cc).map_err(explain)?;
    // Reachability and TLS first, so nobody types a password for a service that cannot be reached.
    let info = client.info().map_err(explain)?;
    println!(
        "Service {url}: reachable{}, TLS certificate trusted.",
        if info.name.is_empty() {
            String::new()
        } else {
            format!(" (\"{}\")", info.name)
        }
    );

    let password = read_password(args.password_stdin, &args.account, &url)?;
    let tokens = client
        .login(&args.account, &password, true)
        .map_err(explain)?;
    drop(password);
    let refresh = tokens.refresh_token.clone().ok_or_else(|| {
        Failure::new(
            "The service signed you in but issued no refresh token (it does not support rememberMe), so \
             the module could not sign in later without storing your password. Nothing was changed.",
        )
    })?;
    let access = tokens.access_token.clone();
    let ids = client.list_credentials(&access).map_err(explain)?;
    println!(
        "Signed in as {}; signing credentials: {}",
        args.account,
        ids.len()
    );
    for id in &ids {
        match client.credential_info(&access, id) {
            Ok(c) => println!(
                "  {}  [{id}]: {}",
                cloudtoken::naming::credential_label(&c),
                credential_words(&c)
            ),
            Err(e) => println!("  [{id}]: cannot be read: {}", explain(e)),
        }
    }
    if ids.is_empty() {
        println!("  The account has no signing credentials yet: the token will be empty.");
    }
    // The module signs in with the refresh token; this session is not needed any more.
    let _ = client.revoke(&access, &access, "access_token");

    let config_path = config_file::for_writing(args.config)?;
    let dir = config_file::ensure_folder(&config_path)?;
    let refresh_name = config_file::refresh_token_name(&label);
    let refresh_path = dir.join(&refresh_name);
    config::files::write_secret_file(&refresh_path, &refresh).map_err(|e| {
        Failure(format!(
            "The refresh token cannot be stored: {e}. Nothing else was changed."
        ))
    })?;
    let existing = match std::fs::read_to_string(&config_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Failure(format!(
                "The configuration {} cannot be read: {e}.",
                config_path.display()
            )))
        }
    };
    let entry = TokenEntry {
        label: label.clone(),
        url: url.clone(),
        api: match args.api {
            ApiArg::V1 => "v1",
            ApiArg::V2 => "v2",
            ApiArg::Auto => "auto",
        },
        ca_file,
        account: args.account.clone(),
        refresh_token_file: refresh_name,
        mode: args.mode.map(|m| {
            match m {
                ModeArg::Pin => "pin",
                ModeArg::ProtectedPath => "protected-path",
                ModeArg::LoginFree => "login-free",
            }
            .to_owned()
        }),
        prompt_command,
        agent_socket: args.agent_socket,
    };
    let (text, replaced) = config_file::with_token(existing.as_deref(), &entry).map_err(|e| {
        Failure(format!(
            "The configuration {} is not valid TOML ({e}); fix it or move it away, then enrol again.",
            config_path.display()
        ))
    })?;
    config_file::replace_checked(&config_path, &text)?;
    println!(
        "{} token \"{label}\" in {}.",
        if replaced { "Updated" } else { "Added" },
        config_path.display()
    );
    println!(
        "The enrolment (a refresh token, not your password) is in {}, readable only by you.",
        refresh_path.display()
    );
    println!("Next: cloudtoken status, then cloudtoken register --p11-kit (or --nss sql:DIR).");
    Ok(ExitCode::SUCCESS)
}
