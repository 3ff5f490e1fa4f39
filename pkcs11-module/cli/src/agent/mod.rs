//! `cloudtoken agent`: keeps the unused part of SCAL 1 batch authorizations for the signing processes of
//! one user, so that a batch signed one process per document needs one one-time code (like ssh-agent for
//! keys). The protocol and the module's side are in the library (`cloudtoken::agent`); the security
//! argument is in the README, "Batches and the agent".
//!
//! Lifetime: with a COMMAND the agent runs it with CLOUDTOKEN_AGENT_SOCK set and ends with it, passing
//! on its exit status. Without one it prints the shell lines that set CLOUDTOKEN_AGENT_SOCK and
//! CLOUDTOKEN_AGENT_PID and goes to the background (or stays in the foreground with --foreground). It
//! also ends on SIGTERM, SIGINT or SIGHUP and after --idle-timeout seconds without a request; at the end
//! it forgets every SAD and removes its socket.

mod server;
mod socket;
mod store;

use crate::words::{Failure, Outcome};
use cloudtoken::agent::{Request, Response, SOCKET_ENV};
use cloudtoken::batch;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Store;

/// How long one client may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often expired SADs are dropped and the idle time checked.
const TICK: Duration = Duration::from_millis(500);
pub const PID_ENV: &str = "CLOUDTOKEN_AGENT_PID";

#[derive(clap::Args)]
pub struct Args {
    /// The socket to listen on (default: $XDG_RUNTIME_DIR/cloudtoken/agent.PID.sock, else a new private
    /// temporary folder).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// After this many seconds without a request: end (with COMMAND: forget what it holds).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: Option<u64>,
    /// Without COMMAND: stay in the foreground instead of going to the background.
    #[arg(long)]
    foreground: bool,
    /// Signatures the whole batch needs: the first authorization asks for this many (capped by the
    /// credential's limit). Exported to COMMAND as CLOUDTOKEN_BATCH_SIGNATURES.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    batch_signatures: Option<u32>,
    /// A name for the package, shown with the authorization request ("30 invoices"). Exported to
    /// COMMAND as CLOUDTOKEN_BATCH_DESCRIPTION.
    #[arg(long, value_name = "TEXT")]
    batch_description: Option<String>,
    /// Print each request (never a SAD) on standard error.
    #[arg(long, short)]
    verbose: bool,
    /// Program and arguments to run with the agent (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Why the agent ends.
enum End {
    Signal(i32),
    Idle,
    Command(std::process::ExitStatus),
    CommandFailed(String),
}

struct Shared {
    store: Mutex<Store>,
    last_request: Mutex<Instant>,
    verbose: bool,
}

/// The shell lines an `eval` runs, as ssh-agent prints them.
fn shell_lines(socket: &std::path::Path, pid: u32, args: &Args) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut out = format!(
        "{SOCKET_ENV}={}; export {SOCKET_ENV};\n{PID_ENV}={pid}; export {PID_ENV};\n",
        quote(&socket.display().to_string())
    );
    if let Some(n) = args.batch_signatures {
        out.push_str(&format!("{0}={n}; export {0};\n", batch::SIGNATURES_ENV));
    }
    if let Some(d) = &args.batch_description {
        out.push_str(&format!(
            "{0}={1}; export {0};\n",
            batch::DESCRIPTION_ENV,
            quote(d)
        ));
    }
    out
}

/// Blocks the signals the agent ends on in this thread and every thread started after, so that one
/// thread can wait for them with sigwait. Children get an empty mask from `Command`.
fn block_end_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; pthread_sigmask only
    // changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Goes to the background: the parent prints the shell lines with the child's PID and exits; the child
/// leaves the terminal's session and lets go of the parent's standard streams (so that `eval
/// "$(cloudtoken agent)"` returns).
fn daemonize(socket: &std::path::Path, args: &Args) -> Outcome<()> {
    use std::io::Write;
    // SAFETY: no thread has been started yet, so the child is a full copy of this single thread.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Failure(format!(
            "The agent cannot go to the background: {}.",
            std::io::Error::last_os_error()
        )));
    }
    if pid > 0 {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(shell_lines(socket, pid as u32, args).as_bytes());
        let _ = out.write_all(format!("echo Agent pid {pid};\n").as_bytes());
        let _ = out.flush();
        // SAFETY: ends the parent at once, without running the child's cleanup (the socket is the child's).
        unsafe { libc::_exit(0) };
    }
    // SAFETY: setsid and dup2 act on this process's own session and descriptors; the path is a valid
    // NUL-terminated string.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..=2 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}

pub fn run(args: Args) -> Outcome<ExitCode> {
    // Before anything is announced: a signal that arrives from then on ends the agent cleanly.
    let signals = block_end_signals();
    let mut bound = socket::bind(args.socket.clone())?;
    let with_command = !args.command.is_empty();
    if !with_command {
        if args.foreground {
            print!("{}", shell_lines(&bound.path, std::process::id(), &args));
            use std::io::Write;
            let _ = std::io::stdout().flush();
        } else if let Err(e) = daemonize(&bound.path, &args) {
            bound.remove();
            return Err(e);
        }
    }
    let shared = Arc::new(Shared {
        store: Mutex::new(Store::default()),
        last_request: Mutex::new(Instant::now()),
        verbose: args.verbose,
    });
    let (end_tx, end_rx) = mpsc::channel::<End>();

    {
        let tx = end_tx.clone();
        std::thread::spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `signals` is an initialised set and `sig` a valid place for the result.
            if unsafe { libc::sigwait(&signals, &mut sig) } == 0
                && tx.send(End::Signal(sig)).is_err()
            {
                return;
            }
        });
    }
    {
        let listener = bound
            .listener
            .try_clone()
            .map_err(|e| Failure(format!("The agent's socket cannot be used: {e}.")))?;
        let shared = shared.clone();
        std::thread::spawn(move || server::run(listener, &shared));
    }
    {
        let tx = end_tx.clone();
        let shared = shared.clone();
        let idle = args.idle_timeout.map(Duration::from_secs);
        std::thread::spawn(move || loop {
            std::thread::sleep(TICK);
            shared.store.lock().purge(Instant::now());
            if idle.is_some_and(|idle| shared.last_request.lock().elapsed() >= idle) {
                if with_command {
                    // The command still runs: it keeps its agent, which forgets what it held.
                    shared.store.lock().clear();
                    *shared.last_request.lock() = Instant::now();
                } else {
                    let _ = tx.send(End::Idle);
                    return;
                }
            }
        });
    }
    let mut child_pid = None;
    if with_command {
        let mut cmd = Command::new(&args.command[0]);
        cmd.args(&args.command[1..]).env(SOCKET_ENV, &bound.path);
        if let Some(n) = args.batch_signatures {
            cmd.env(batch::SIGNATURES_ENV, n.to_string());
        }
        if let Some(d) = &args.batch_description {
            cmd.env(batch::DESCRIPTION_ENV, d);
        }
        match cmd.spawn() {
            Ok(mut child) => {
                child_pid = Some(child.id());
                let tx = end_tx.clone();
                std::thread::spawn(move || {
                    let end = match child.wait() {
                        Ok(status) => End::Command(status),
                        Err(e) => End::CommandFailed(e.to_string()),
                    };
                    let _ = tx.send(end);
                });
            }
            Err(e) => {
                let _ = end_tx.send(End::CommandFailed(format!(
                    "{} could not be started: {e}",
                    args.command[0]
                )));
            }
        }
    }

    let code: i32 = loop {
        match end_rx.recv() {
            Ok(End::Signal(sig)) => {
                if let Some(pid) = child_pid {
                    // The command ends first; its status is what the agent passes on.
                    // SAFETY: kill with a PID of our own child and a valid signal number.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                    continue;
                }
                if args.verbose {
                    eprintln!("cloudtoken agent: ending on signal {sig}");
                }
                break 0;
            }
            Ok(End::Idle) => {
                if args.verbose {
                    eprintln!("cloudtoken agent: ending after the idle timeout");
                }
                break 0;
            }
            Ok(End::Command(status)) => {
                use std::os::unix::process::ExitStatusExt;
                // Killed by a signal: the shell's convention, 128 + signal.
                break status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(1));
            }
            Ok(End::CommandFailed(e)) => {
                eprintln!("cloudtoken agent: {e}");
                break 127;
            }
            Err(_) => break 1,
        }
    };
    shared.store.lock().clear();
    bound.remove();
    // Other threads still block in accept and sigwait: end the process rather than wait for them.
    std::process::exit(code);
}

/// The answer to one request of this user (server.rs checked who is asking and read the request).
fn answer(request: Request, shared: &Shared) -> Response {
    *shared.last_request.lock() = Instant::now();
    let now = Instant::now();
    let (what, response) = {
        let mut store = shared.store.lock();
        match request {
            Request::Put {
                key,
                sad,
                signatures,
                expires_in_ms,
            } => {
                let what = format!("put {signatures} signatures for {}", key.credential);
                let r = store.put(
                    key,
                    sad.0,
                    signatures,
                    Duration::from_millis(expires_in_ms),
                    now,
                );
                (what, r)
            }
            Request::Take { key, signatures } => (
                format!("take {signatures} for {}", key.credential),
                store.take(&key, signatures, now),
            ),
            Request::Peek { key } => (format!("peek {}", key.credential), store.peek(&key, now)),
            Request::Forget { key } => (format!("forget {}", key.credential), store.forget(&key)),
        }
    };
    if shared.verbose {
        let outcome = match &response {
            Response::Granted { remaining, .. } => format!("granted, {remaining} left"),
            Response::Available { signatures } => format!("{signatures} available"),
            Response::Refused { reason } => format!("refused: {reason}"),
            Response::Stored => "stored".into(),
            Response::Missing => "none held".into(),
            Response::Forgotten => "forgotten".into(),
        };
        eprintln!("cloudtoken agent: {what}: {outcome}");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_quote_for_eval() {
        let args = Args {
            socket: None,
            idle_timeout: None,
            foreground: true,
            batch_signatures: Some(60),
            batch_description: Some("Bob's 30 invoices".into()),
            verbose: false,
            command: vec![],
        };
        let text = shell_lines(std::path::Path::new("/run/x y/a.sock"), 42, &args);
        assert_eq!(
            text,
            "CLOUDTOKEN_AGENT_SOCK='/run/x y/a.sock'; export CLOUDTOKEN_AGENT_SOCK;\n\
             CLOUDTOKEN_AGENT_PID=42; export CLOUDTOKEN_AGENT_PID;\n\
             CLOUDTOKEN_BATCH_SIGNATURES=60; export CLOUDTOKEN_BATCH_SIGNATURES;\n\
             CLOUDTOKEN_BATCH_DESCRIPTION='Bob'\\''s 30 invoices'; export CLOUDTOKEN_BATCH_DESCRIPTION;\n"
        );
    }
}
