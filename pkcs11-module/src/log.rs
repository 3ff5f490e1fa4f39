//! Logging: one process-wide `log` logger that forwards to an `env_logger::Logger` which C_Initialize may
//! replace (the `log` crate lets a logger be installed once, but every C_Initialize reads a configuration).
//!
//! Precedence: CLOUDTOKEN_LOG / CLOUDTOKEN_LOG_FILE, then the configuration's `[log]`, then errors only to
//! standard error. Dependencies (HTTP, TLS) are capped at `warn` whatever the level, so that no third-party
//! trace output (headers, bodies) can carry a secret into the log. Log files are created mode 0600.
//!
//! Fork safety: a forked child inherits the logger's internal writer lock in whatever state a parent
//! thread left it. So the logger is read without a lock (an atomically swapped `Arc`) and remembers the
//! process that installed it: a child logs nothing until its own C_Initialize installs a fresh logger,
//! and never waits on a lock a parent thread held.

use arc_swap::ArcSwapOption;
use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

pub const LEVEL_ENV: &str = "CLOUDTOKEN_LOG";
pub const FILE_ENV: &str = "CLOUDTOKEN_LOG_FILE";

/// A logger and the process that installed it.
struct Installed {
    pid: u32,
    logger: env_logger::Logger,
}

struct Dispatch {
    current: ArcSwapOption<Installed>,
}

static DISPATCH: Dispatch = Dispatch {
    current: ArcSwapOption::const_empty(),
};

impl Dispatch {
    /// The logger of this process, if it installed one.
    fn mine(&self) -> Option<Arc<Installed>> {
        self.current
            .load_full()
            .filter(|i| i.pid == std::process::id())
    }
}

impl Log for Dispatch {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.mine().is_some_and(|i| i.logger.enabled(metadata))
    }

    fn log(&self, record: &Record) {
        if let Some(i) = self.mine() {
            if i.logger.matches(record) {
                i.logger.log(record);
            }
        }
    }

    fn flush(&self) {
        if let Some(i) = self.mine() {
            i.logger.flush();
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
            .mode(0o600)
            .open(path)
        {
            Ok(f) => {
                builder.target(env_logger::Target::Pipe(Box::new(f)));
            }
            Err(e) => file_error = Some(format!("{}: {e}", path.display())),
        }
    }
    let logger = builder.build();

    DISPATCH.current.store(Some(Arc::new(Installed {
        pid: std::process::id(),
        logger,
    })));
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
