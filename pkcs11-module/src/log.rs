//! Logging: one process-wide `log` logger that forwards to an `env_logger::Logger` which C_Initialize may
//! replace (the `log` crate lets a logger be installed once, but every C_Initialize reads a configuration).
//!
//! Precedence: CLOUDTOKEN_LOG / CLOUDTOKEN_LOG_FILE, then the configuration's `[log]`, then errors only to
//! standard error. Dependencies (HTTP, TLS) are capped at `warn` whatever the level, so that no third-party
//! trace output (headers, bodies) can carry a secret into the log.

use log::{LevelFilter, Log, Metadata, Record};
use parking_lot::RwLock;
use std::io::Write;
use std::path::Path;

pub const LEVEL_ENV: &str = "CLOUDTOKEN_LOG";
pub const FILE_ENV: &str = "CLOUDTOKEN_LOG_FILE";

struct Dispatch {
    inner: RwLock<Option<env_logger::Logger>>,
}

static DISPATCH: Dispatch = Dispatch {
    inner: RwLock::new(None),
};

impl Log for Dispatch {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner
            .read()
            .as_ref()
            .is_some_and(|l| l.enabled(metadata))
    }

    fn log(&self, record: &Record) {
        if let Some(l) = self.inner.read().as_ref() {
            if l.matches(record) {
                l.log(record);
            }
        }
    }

    fn flush(&self) {
        if let Some(l) = self.inner.read().as_ref() {
            l.flush();
        }
    }
}

/// Parses a level name as the configuration and CLOUDTOKEN_LOG accept it.
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" | "none" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// Installs (first call) or reconfigures the logger. `level` and `file` come from the configuration's
/// `[log]`; the environment overrides both. Never fails: a log file that cannot be opened falls back to
/// standard error with a line saying so.
pub fn configure(level: Option<LevelFilter>, file: Option<&Path>) {
    let env_level = std::env::var(LEVEL_ENV).ok();
    let env_level_parsed = env_level.as_deref().and_then(parse_level);
    let level = env_level_parsed.or(level).unwrap_or(LevelFilter::Error);
    let env_file = std::env::var_os(FILE_ENV).filter(|f| !f.is_empty());
    let file = env_file.as_deref().map(Path::new).or(file);

    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level.min(LevelFilter::Warn))
        .filter_module("cloudtoken", level)
        .filter_module("remote_client", level)
        .write_style(env_logger::WriteStyle::Never)
        .format(|buf, record| {
            writeln!(
                buf,
                "[{} {:<5} cloudtoken {}] {}: {}",
                buf.timestamp_millis(),
                record.level(),
                std::process::id(),
                record.target(),
                record.args()
            )
        });
    let mut file_error = None;
    if let Some(path) = file {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => {
                builder.target(env_logger::Target::Pipe(Box::new(f)));
            }
            Err(e) => file_error = Some(format!("{}: {e}", path.display())),
        }
    }
    let logger = builder.build();

    // A forked child may inherit the lock held by a thread that no longer exists: never wait for it.
    if let Some(mut slot) = DISPATCH
        .inner
        .try_write_for(std::time::Duration::from_millis(200))
    {
        *slot = Some(logger);
    } else {
        return;
    }
    // Fails only when already installed, which is what we want after the first call.
    let _ = log::set_logger(&DISPATCH);
    log::set_max_level(level);

    if let Some(e) = file_error {
        log::error!("cannot open the log file {e}; logging to standard error");
    }
    if env_level.is_some() && env_level_parsed.is_none() {
        log::warn!("{LEVEL_ENV} has an unknown level; using {level}");
    }
}
