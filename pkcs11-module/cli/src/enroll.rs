//! `cloudtoken enroll`: connects a token to an account at a signing service, with any `service_auth`
//! (enroll_auth.rs signs in). With `login` the account password is asked once and sent only to
//! `auth/login` (rememberMe); with `oauth2-code` the person signs in in a browser. Either way what is kept
//! is the refresh token the service issues, in a file only the user can read, so that the module never
//! knows the password. The token's entry in the module configuration is written or updated.

use crate::config_file::{self, TokenEntry};
use crate::enroll_auth::{self, SignInArgs};
use crate::status::credential_words;
use crate::words::{self, Failure, Outcome};
use cloudtoken::config;
use remote_client::{ApiVersion, ClientConfig, CscClient};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// --url is the full base of the CSC methods (api_base, e.g. https://host/csc/v0); needs --api v1
    /// or v2.
    #[arg(long)]
    api_base: bool,
    /// Allow plain HTTP to a service on this computer (127.0.0.1, ::1): test services only.
    #[arg(long)]
    allow_loopback_http: bool,
    /// Your account name at the service (login, oauth2-password; for others it only names the token).
    #[arg(long, default_value = "")]
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
    #[command(flatten)]
    sign_in: SignInArgs,
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

pub fn run(args: Args) -> Outcome<ExitCode> {
    let label = args
        .label
        .clone()
        .or_else(|| (!args.account.is_empty()).then(|| args.account.clone()))
        .ok_or_else(|| Failure::new("Name the token with --label (or give --account)."))?;
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
    if args.api_base && matches!(args.api, ApiArg::Auto) {
        return Err(Failure::new(
            "With --api-base the wire format must be named: --api v1 or --api v2.",
        ));
    }
    let mut cc = ClientConfig::new(url.clone());
    if args.api_base {
        cc.api_base = Some(url.clone());
    }
    cc.allow_loopback_http = args.allow_loopback_http;
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

    let enrolled = enroll_auth::enrol(
        &args.sign_in,
        &client,
        &args.account,
        &url,
        ca_file.as_deref(),
    )?;
    let access = &enrolled.signed.access;
    let who = if args.account.is_empty() {
        format!("with service_auth \"{}\"", args.sign_in.service_auth.name())
    } else {
        format!("as {}", args.account)
    };
    if client.offers("credentials/list").unwrap_or(true) {
        let ids = client.list_credentials(access).map_err(explain)?;
        println!("Signed in {who}; signing credentials: {}", ids.len());
        let info_offered = client.offers("credentials/info").unwrap_or(true);
        for id in ids.iter().filter(|_| info_offered) {
            match client.credential_info(access, id) {
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
    } else {
        println!("Signed in {who}; the service does not list credentials/list.");
    }
    // The module signs in by itself; this session is not needed any more.
    if let remote_client::Access::Bearer(token) = access {
        match args.sign_in.service_auth {
            cloudtoken::config::ServiceAuthKind::Login
                if client.offers("auth/revoke").unwrap_or(false) =>
            {
                let _ = client.revoke(access, token, "access_token");
            }
            _ => {}
        }
    }

    let config_path = config_file::for_writing(args.config)?;
    let dir = config_file::ensure_folder(&config_path)?;
    let mut sign_in = enrolled.keys.clone();
    let refresh_path = match &enrolled.refresh_token {
        Some(refresh) => {
            let refresh_name = config_file::refresh_token_name(&label);
            let refresh_path = dir.join(&refresh_name);
            config::files::write_secret_file(&refresh_path, refresh).map_err(|e| {
                Failure(format!(
                    "The refresh token cannot be stored: {e}. Nothing else was changed."
                ))
            })?;
            sign_in.push(("refresh_token_file", refresh_name));
            Some(refresh_path)
        }
        None => None,
    };
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
        url_is_api_base: args.api_base,
        api: match args.api {
            ApiArg::V1 => "v1",
            ApiArg::V2 => "v2",
            ApiArg::Auto => "auto",
        },
        ca_file,
        allow_loopback_http: args.allow_loopback_http,
        account: args.account.clone(),
        sign_in,
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
    if let Some(refresh_path) = refresh_path {
        println!(
            "The enrolment (a refresh token, not your password) is in {}, readable only by you.",
            refresh_path.display()
        );
    }
    println!("Next: cloudtoken status, then cloudtoken register --p11-kit (or --nss sql:DIR).");
    Ok(ExitCode::SUCCESS)
}
