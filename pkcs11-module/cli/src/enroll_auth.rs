//! The sign-in `cloudtoken enroll` makes and records, per `service_auth`: the account password sent
//! once to `auth/login` (login), a person's browser sign-in with OAuth 2.0 authorization code and PKCE
//! (oauth2-code: the page opened with `xdg-open` or printed, the code received on a loopback redirect,
//! RFC 8252 §7.3), or a check that the secrets the user already holds in files sign in (every other
//! kind). What is kept for later is the configuration's keys and, for login and oauth2-code, only the
//! refresh token the service issued.

use crate::words::{self, Failure, Outcome};
use cloudtoken::config::{files, ServiceAuthKind};
use remote_client::{
    CscClient, Loopback, NoRedirect, OAuth2Client, OAuth2Grant, Secret, ServiceAuth, SignIn,
};
use serde::Deserialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// `--service-auth`: a `service_auth` value, read as the configuration reads it.
fn parse_service_auth(text: &str) -> Result<ServiceAuthKind, String> {
    use serde::de::IntoDeserializer;
    let d: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        text.into_deserializer();
    ServiceAuthKind::deserialize(d).map_err(|e| e.to_string())
}

/// The sign-in options of `enroll`.
#[derive(clap::Args)]
pub struct SignInArgs {
    /// How the module signs in to the service (README, "Providers").
    #[arg(long, default_value = "login", value_parser = parse_service_auth)]
    pub service_auth: ServiceAuthKind,
    /// Read the account password from the first line of standard input instead of the terminal.
    #[arg(long)]
    pub password_stdin: bool,
    /// oauth2-password: the file (mode 0600) holding the account password the module sends.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// bearer: the file (mode 0600) holding the static access token.
    #[arg(long)]
    pub access_token_file: Option<PathBuf>,
    /// api-key: the file (mode 0600) holding the API key.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// api-key: the header the key travels in (default x-api-key).
    #[arg(long)]
    pub api_key_header: Option<String>,
    /// The OAuth 2.0 client registered at the service.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The file (mode 0600) holding the OAuth 2.0 client's secret (none: a public client).
    #[arg(long)]
    pub client_secret_file: Option<PathBuf>,
    /// The OAuth 2.0 token endpoint (default: from the service's info.oauth2).
    #[arg(long)]
    pub oauth2_token_url: Option<String>,
    /// The OAuth 2.0 authorization endpoint (default: from the service's info.oauth2).
    #[arg(long)]
    pub oauth2_authorize_url: Option<String>,
    /// The scope of the service sign-in (default: service).
    #[arg(long)]
    pub oauth2_scope: Option<String>,
    /// oauth2-code: print the sign-in page's address instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// oauth2-code: seconds to wait for the browser sign-in.
    #[arg(long, default_value_t = 300)]
    pub browser_timeout: u64,
}

/// What the enrolment yields: the first sign-in (to list the credentials), the refresh token to keep,
/// and the configuration keys of the sign-in (secret files still to be named: see `keys`).
pub struct Enrolled {
    pub signed: SignIn,
    /// To be stored next to the configuration (login, oauth2-code).
    pub refresh_token: Option<Secret>,
    /// `service_auth` and its keys except `refresh_token_file`.
    pub keys: Vec<(&'static str, String)>,
}

fn absolute(path: &Path, what: &str) -> Outcome<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| {
        Failure(format!(
            "The {what} {} cannot be used: {e}.",
            path.display()
        ))
    })
}

/// A secret file the user holds: checked as the module checks it (owner, mode 0600), named absolutely.
fn secret_file(given: &Option<PathBuf>, what: &str, flag: &str) -> Outcome<(PathBuf, Secret)> {
    let path = given
        .as_deref()
        .ok_or_else(|| Failure(format!("This sign-in needs {what}: give it with {flag}.")))?;
    let path = absolute(path, what)?;
    let secret = files::read_secret_file(&path)
        .map_err(|e| Failure(format!("The {what} cannot be used: {e}.")))?;
    Ok((path, secret))
}

pub fn read_password(from_stdin: bool, account: &str, url: &str) -> Outcome<Secret> {
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

/// The OAuth 2.0 client the options name, and its configuration keys.
fn oauth2_client(a: &SignInArgs) -> Outcome<(OAuth2Client, Vec<(&'static str, String)>)> {
    let id = a.client_id.clone().ok_or_else(|| {
        Failure::new(
            "This sign-in needs the OAuth 2.0 client registered at the service: --client-id.",
        )
    })?;
    let mut keys = vec![("client_id", id.clone())];
    let mut client = match &a.client_secret_file {
        Some(_) => {
            let (path, secret) = secret_file(
                &a.client_secret_file,
                "client secret file",
                "--client-secret-file",
            )?;
            keys.push(("client_secret_file", path.display().to_string()));
            OAuth2Client::confidential(id, secret)
        }
        None => OAuth2Client::new(id),
    };
    client.token_url = a.oauth2_token_url.clone();
    client.authorize_url = a.oauth2_authorize_url.clone();
    client.scope = a.oauth2_scope.clone();
    for (k, v) in [
        ("oauth2_token_url", &a.oauth2_token_url),
        ("oauth2_authorize_url", &a.oauth2_authorize_url),
        ("oauth2_scope", &a.oauth2_scope),
    ] {
        if let Some(v) = v {
            keys.push((k, v.clone()));
        }
    }
    Ok((client, keys))
}

/// Signs in the way `a` says and returns what the configuration keeps.
pub fn enrol(
    a: &SignInArgs,
    client: &CscClient,
    account: &str,
    url: &str,
    ca: Option<&Path>,
) -> Outcome<Enrolled> {
    let explain = |e: remote_client::Error| words::service(url, ca, &e);
    let need_account = || {
        if account.is_empty() {
            Err(Failure(format!(
                "service_auth \"{}\" signs in to an account: give it with --account.",
                a.service_auth.name()
            )))
        } else {
            Ok(())
        }
    };
    let mut keys = vec![("service_auth", a.service_auth.name().to_owned())];
    let auth = match a.service_auth {
        ServiceAuthKind::Login => {
            need_account()?;
            let password = read_password(a.password_stdin, account, url)?;
            let tokens = client.login(account, &password, true).map_err(explain)?;
            drop(password);
            let refresh = tokens.refresh_token.clone().ok_or_else(|| {
                Failure::new(
                    "The service signed you in but issued no refresh token (it does not support \
                     rememberMe), so the module could not sign in later without storing your \
                     password. Nothing was changed.",
                )
            })?;
            return Ok(Enrolled {
                signed: SignIn {
                    access: tokens.access_token.into(),
                    expires_in: None,
                    refresh_token: None,
                },
                refresh_token: Some(refresh),
                keys,
            });
        }
        ServiceAuthKind::Oauth2Code => {
            let (oc, more) = oauth2_client(a)?;
            keys.extend(more);
            let signed = browser_sign_in(a, client, &oc).map_err(|f| match f {
                BrowserFailure::Service(e) => explain(e),
                BrowserFailure::Other(f) => f,
            })?;
            let refresh = signed.refresh_token.clone().ok_or_else(|| {
                Failure::new(
                    "The service signed you in but issued no refresh token, so the module could not \
                     sign in later without you. Nothing was changed.",
                )
            })?;
            return Ok(Enrolled {
                signed,
                refresh_token: Some(refresh),
                keys,
            });
        }
        ServiceAuthKind::None => ServiceAuth::None,
        ServiceAuthKind::Bearer => {
            let (path, token) = secret_file(
                &a.access_token_file,
                "access token file",
                "--access-token-file",
            )?;
            keys.push(("access_token_file", path.display().to_string()));
            ServiceAuth::Bearer(token)
        }
        ServiceAuthKind::ApiKey => {
            let (path, key) = secret_file(&a.api_key_file, "API key file", "--api-key-file")?;
            keys.push(("api_key_file", path.display().to_string()));
            let header = a
                .api_key_header
                .clone()
                .unwrap_or_else(|| remote_client::DEFAULT_API_KEY_HEADER.to_owned());
            if a.api_key_header.is_some() {
                keys.push(("api_key_header", header.clone()));
            }
            ServiceAuth::ApiKey { header, key }
        }
        ServiceAuthKind::Oauth2Client => {
            let (oc, more) = oauth2_client(a)?;
            if oc.client_secret.is_none() {
                return Err(Failure::new(
                    "The client credentials grant needs the client's secret: --client-secret-file.",
                ));
            }
            keys.extend(more);
            ServiceAuth::OAuth2 {
                client: oc,
                grant: OAuth2Grant::ClientCredentials,
            }
        }
        ServiceAuthKind::Oauth2Password => {
            need_account()?;
            let (oc, more) = oauth2_client(a)?;
            keys.extend(more);
            let (path, password) =
                secret_file(&a.password_file, "password file", "--password-file")?;
            keys.push(("password_file", path.display().to_string()));
            ServiceAuth::OAuth2 {
                client: oc,
                grant: OAuth2Grant::Password {
                    username: account.to_owned(),
                    password,
                },
            }
        }
    };
    let signed = client.sign_in(&auth).map_err(explain)?;
    Ok(Enrolled {
        signed,
        refresh_token: None,
        keys,
    })
}

enum BrowserFailure {
    Service(remote_client::Error),
    Other(Failure),
}

impl From<remote_client::Error> for BrowserFailure {
    fn from(e: remote_client::Error) -> Self {
        BrowserFailure::Service(e)
    }
}

/// The person's sign-in in a browser: the page opened (or printed), the loopback redirect awaited,
/// its code exchanged.
fn browser_sign_in(
    a: &SignInArgs,
    client: &CscClient,
    oc: &OAuth2Client,
) -> Result<SignIn, BrowserFailure> {
    let other = |s: String| BrowserFailure::Other(Failure(s));
    let listener = Loopback::bind().map_err(other)?;
    let pending = client.oauth2_authorization(oc, listener.redirect_uri())?;
    println!("Sign in at the service in your browser:");
    println!("  {}", pending.url());
    if !a.no_browser {
        // A missing or failing opener leaves the printed address for the person to open.
        let opened = std::process::Command::new("xdg-open")
            .arg(pending.url())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if opened.is_err() {
            println!("  (no browser could be opened: open the address above yourself)");
        }
    }
    println!(
        "Waiting up to {} s for the sign-in (the browser comes back to {}).",
        a.browser_timeout,
        listener.redirect_uri()
    );
    let deadline = Instant::now() + Duration::from_secs(a.browser_timeout);
    let redirect = listener.wait(deadline, || Ok(())).map_err(|e| match e {
        NoRedirect::TimedOut => other(format!(
            "Nobody signed in within {} s; nothing was changed. Run the command again.",
            a.browser_timeout
        )),
        NoRedirect::Stopped(why) | NoRedirect::Failed(why) => other(format!(
            "Waiting for the browser failed: {why}; nothing was changed."
        )),
    })?;
    match client.oauth2_exchange_code(oc, &pending, &redirect) {
        Ok(s) => Ok(s),
        Err(e) if e.reason() == remote_client::Reason::AccessDenied => Err(other(
            "The sign-in was refused at the service's page; nothing was changed.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}
