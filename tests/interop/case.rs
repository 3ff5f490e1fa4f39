//! A row of the suite (one client doing one thing with one key) and how rows run: one thread per
//! credential, because a credential's one-time codes must be used one at a time and in order, and the
//! rows of different credentials can overlap.

use crate::env::{Env, Key};
use crate::process::{Cmd, Output};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the client authenticates in this row.
// `LoginFree` is the mode's name ("login-free"), not a repetition of the enum's.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// No login (public objects, module loading).
    None,
    /// C_Login with the PIN alone: lists private objects, signs nothing.
    Pin,
    /// C_Login with the PIN immediately followed by the credential's one-time code.
    Passcode,
    /// The token in `mode = "login-free"`: the client never logs in, and the module asks the test prompt
    /// for the PIN and the code when it signs.
    LoginFree,
    /// The token in `mode = "protected-path"`: the client logs in with no PIN (C_Login(NULL)), and the
    /// module asks the test prompt for the PIN then and for the code when it signs.
    ProtectedPath,
}

impl Login {
    /// The token mode of the row's module configuration, for the modes the prompt serves.
    fn prompt_mode(self) -> Option<&'static str> {
        match self {
            Login::LoginFree => Some("login-free"),
            Login::ProtectedPath => Some("protected-path"),
            Login::None | Login::Pin | Login::Passcode => None,
        }
    }
}

type Body = Box<dyn FnOnce(&Env, &Ctx) -> Result<String, String> + Send>;

pub struct Case {
    pub client: &'static str,
    pub operation: String,
    /// Index into `Env::keys` of the key the row signs with (and whose one-time code it uses).
    pub key: Option<usize>,
    /// Other keys whose second factor the row touches; held for the whole row too.
    pub also_locks: Vec<usize>,
    pub login: Login,
    body: Body,
}

impl Case {
    /// `body` returns what was checked (e.g. "openssl cms -verify OK") or why the row failed.
    pub fn new(
        client: &'static str,
        operation: impl Into<String>,
        key: Option<usize>,
        login: Login,
        body: impl FnOnce(&Env, &Ctx) -> Result<String, String> + Send + 'static,
    ) -> Case {
        Case {
            client,
            operation: operation.into(),
            key,
            also_locks: Vec::new(),
            login,
            body: Box::new(body),
        }
    }

    pub fn also_locking(mut self, keys: Vec<usize>) -> Case {
        self.also_locks = keys;
        self
    }
}

/// What a row's body gets: its own folder, and commands preset for the module.
pub struct Ctx {
    pub dir: PathBuf,
    pub login: Login,
    /// The module configuration of the row: the demo one, or for a prompt row the demo one with the
    /// demo user's token in the row's mode (`cloudtoken.toml` in the row's folder, 0600).
    pub config: PathBuf,
    /// The configuration that shows only the demo user's token (pdfsig answers one password prompt),
    /// in the row's mode.
    pub single_token_config: PathBuf,
    /// A prompt row's test-prompt folder: what the module asked is in its `questions`.
    prompt: Option<PathBuf>,
}

impl Ctx {
    /// A command that runs in the row's folder with the row's module configuration.
    pub fn cmd(&self, program: &str) -> Cmd {
        Cmd::new(program)
            .current_dir(&self.dir)
            .env("CLOUDTOKEN_CONFIG", &self.config)
    }

    pub fn run(&self, cmd: Cmd) -> Output {
        cmd.run(&self.dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).expect("write case file");
        p
    }
}

pub struct Row {
    pub client: &'static str,
    pub operation: String,
    pub key: String,
    pub auth: String,
    pub outcome: Result<String, String>,
    pub secs: f64,
    pub dir: PathBuf,
}

/// Runs every case and returns the rows in the cases' order.
pub fn run_all(env: &Env, cases: Vec<Case>) -> Vec<Row> {
    // Queue per credential (the key a row signs with); rows without a key share one more queue.
    let mut queues: Vec<Vec<(usize, Case)>> = (0..=env.keys.len()).map(|_| Vec::new()).collect();
    for (i, case) in cases.into_iter().enumerate() {
        let q = case.key.unwrap_or(env.keys.len());
        queues[q].push((i, case));
    }
    // A credential's prompt rows first: the prompt answers the current TOTP step and a typed passcode
    // the next one, so every switch from passcode to prompt waits for a step more (3 s each).
    for queue in &mut queues {
        queue.sort_by_key(|(i, case)| (case.login.prompt_mode().is_none(), *i));
    }
    let mut rows: Vec<(usize, Row)> = std::thread::scope(|s| {
        let handles: Vec<_> = queues
            .into_iter()
            .map(|queue| {
                s.spawn(move || {
                    queue
                        .into_iter()
                        .map(|(i, case)| (i, run_one(env, i, case)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("case thread"))
            .collect()
    });
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, r)| r).collect()
}

fn run_one(env: &Env, index: usize, case: Case) -> Row {
    let mut locks: Vec<usize> = case
        .key
        .into_iter()
        .chain(case.also_locks.iter().copied())
        .collect();
    locks.sort_unstable();
    locks.dedup();
    // Always in ascending order, so two rows that need the same two credentials cannot deadlock.
    let _guards: Vec<_> = locks.iter().map(|&k| env.lock(k)).collect();

    let slug: String = format!("{index:03}-{}-{}", case.client, case.operation)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = env.work.join(slug);
    std::fs::create_dir_all(&dir).expect("create case dir");
    let key = case.key.map(|k| &env.keys[k]);
    let ctx = match case.login.prompt_mode() {
        None => Ctx {
            dir: dir.clone(),
            login: case.login,
            config: env.svc.config_file(),
            single_token_config: env.single_token_config.clone(),
            prompt: None,
        },
        Some(mode) => {
            let prompt = dir.join("prompt");
            env.prompt_dir(&prompt);
            let config = dir.join("cloudtoken.toml");
            let single_token_config = dir.join("cloudtoken-single.toml");
            env.mode_config(mode, &prompt, false, &config);
            env.mode_config(mode, &prompt, true, &single_token_config);
            Ctx {
                dir: dir.clone(),
                login: case.login,
                config,
                single_token_config,
                prompt: Some(prompt),
            }
        }
    };
    let auth = match (case.login, key) {
        (Login::None, _) => "-".to_owned(),
        (Login::Pin, _) => "PIN".to_owned(),
        (Login::Passcode, Some(k)) => format!("PIN+{}", k.cred.otp.to_uppercase()),
        (Login::Passcode, None) => "PIN+OTP".to_owned(),
        (Login::LoginFree, _) => "login-free+prompt".to_owned(),
        (Login::ProtectedPath, _) => "protected+prompt".to_owned(),
    };
    // The wait for a fresh code counts in the row's time, as in the rows that type a passcode.
    let started = Instant::now();
    let prompted_key = key.filter(|_| ctx.prompt.is_some());
    if let Some(k) = prompted_key {
        env.before_prompted_code(k);
    }
    let body = case.body;
    let outcome =
        std::panic::catch_unwind(AssertUnwindSafe(|| body(env, &ctx))).unwrap_or_else(|p| {
            Err(format!(
                "panicked: {}",
                p.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            ))
        });
    if let Some(k) = prompted_key {
        env.after_prompted_code(k);
    }
    let outcome = match (&ctx.prompt, outcome) {
        (Some(prompt), Ok(checked)) => {
            prompt_questions(prompt, case.login, key).map(|asked| format!("{checked}; {asked}"))
        }
        (_, outcome) => outcome,
    };
    Row {
        client: case.client,
        operation: case.operation,
        key: key
            .map(|k| k.name().to_owned())
            .unwrap_or_else(|| "-".to_owned()),
        auth,
        outcome,
        secs: started.elapsed().as_secs_f64(),
        dir,
    }
}

/// Checks what the module asked the test prompt in a prompt row: the PIN, for the demo user's token,
/// and the one-time code of the row's credential and of no other (what a user would see at the screen).
fn prompt_questions(dir: &Path, login: Login, key: Option<&Key>) -> Result<String, String> {
    let text = std::fs::read_to_string(dir.join("questions")).unwrap_or_default();
    let questions: Vec<HashMap<&str, &str>> = text
        .lines()
        .map(|l| l.split('\t').filter_map(|kv| kv.split_once('=')).collect())
        .collect();
    let fail = |why: &str| Err(format!("{why}; the prompt was asked:\n{text}"));
    let pins: Vec<_> = questions
        .iter()
        .filter(|q| field(q, "kind") == "pin")
        .collect();
    let codes: Vec<_> = questions
        .iter()
        .filter(|q| field(q, "kind") == "otp")
        .collect();
    if pins.is_empty() || codes.is_empty() || pins.len() + codes.len() != questions.len() {
        return fail("the module did not ask the prompt for both the PIN and the code");
    }
    let Some(first) = pins.first() else {
        return fail("no PIN question");
    };
    if key.is_some_and(|k| field(first, "token") != k.token) {
        return fail("the PIN question names another token");
    }
    // A protected-path login asks before any key is chosen: the question names no key.
    if login == Login::ProtectedPath && !field(first, "credential").is_empty() {
        return fail("the protected-path login's PIN question names a credential");
    }
    if let Some(k) = key {
        if codes.iter().any(|q| {
            field(q, "credential") != k.cred.id || field(q, "otp_type") != k.cred.otp.as_str()
        }) {
            return fail("a code question is not for the row's credential");
        }
    }
    Ok(format!(
        "prompt asked {} PIN, {} {} code",
        pins.len(),
        codes.len(),
        key.map_or("one-time", |k| k.cred.otp.as_str())
    ))
}

fn field<'a>(q: &HashMap<&str, &'a str>, k: &str) -> &'a str {
    q.get(k).copied().unwrap_or_default()
}
