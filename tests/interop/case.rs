//! A row of the suite (one client doing one thing with one key) and how rows run: one thread per
//! credential, because a credential's one-time codes must be used one at a time and in order, and the
//! rows of different credentials can overlap.

use crate::env::Env;
use crate::process::{Cmd, Output};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Instant;

/// How the client authenticates in this row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// No login (public objects, module loading).
    None,
    /// C_Login with the PIN alone: lists private objects, signs nothing.
    Pin,
    /// C_Login with the PIN immediately followed by the credential's one-time code.
    Passcode,
    // The login-free and protected-path modes of the second-factor issue get their variants, and
    // rows in every client module, when the module offers them.
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
}

impl Ctx {
    /// A command that runs in the row's folder with the full demo configuration.
    pub fn cmd(&self, env: &Env, program: &str) -> Cmd {
        Cmd::new(program)
            .current_dir(&self.dir)
            .env("CLOUDTOKEN_CONFIG", env.svc.config_file())
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
    let ctx = Ctx { dir: dir.clone() };
    let key = case.key.map(|k| &env.keys[k]);
    let auth = match (case.login, key) {
        (Login::None, _) => "-".to_owned(),
        (Login::Pin, _) => "PIN".to_owned(),
        (Login::Passcode, Some(k)) => format!("PIN+{}", k.cred.otp.to_uppercase()),
        (Login::Passcode, None) => "PIN+OTP".to_owned(),
    };
    let started = Instant::now();
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
