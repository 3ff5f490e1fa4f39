//! Running one client program: a fresh process group, no stdin, output kept in files, and a deadline after
//! which the whole group is killed, so a client that hangs fails its row instead of blocking CI.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Long enough for the slowest client (pdfsig: NSS start-up, two signatures) on a loaded 2-core CI machine.
const TIMEOUT: Duration = Duration::from_secs(90);

/// A client command being built; `run` starts it.
pub struct Cmd {
    cmd: Command,
    line: String,
    timeout: Duration,
}

/// What a finished (or killed) client did.
pub struct Output {
    /// The command line, with the arguments as given (the suite's secrets are throw-away demo values).
    pub line: String,
    /// `None` when the deadline passed and the process group was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        let program = program.as_ref();
        Cmd {
            line: program.to_string_lossy().into_owned(),
            cmd: Command::new(program),
            timeout: TIMEOUT,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        let a = a.as_ref();
        self.line.push(' ');
        self.line.push_str(&shell_word(&a.to_string_lossy()));
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Cmd {
        self.cmd.env_remove(k);
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Cmd {
        self.cmd.current_dir(dir);
        self
    }

    /// Runs to completion or to the deadline. Output goes to files in `log_dir` (a pipe could fill up
    /// and stall a chatty client while nobody reads it).
    pub fn run(mut self, log_dir: &Path) -> Output {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out_path = log_dir.join(format!("cmd{n}.stdout"));
        let err_path = log_dir.join(format!("cmd{n}.stderr"));
        let spawned = (|| -> std::io::Result<std::process::Child> {
            self.cmd
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out_path)?)
                .stderr(std::fs::File::create(&err_path)?)
                // Its own group, so that the deadline also reaches what the client forked.
                .process_group(0);
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                self.cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            self.cmd.spawn()
        })();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                return Output {
                    line: self.line,
                    status: None,
                    stdout: String::new(),
                    stderr: format!("cannot start: {e}"),
                }
            }
        };
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    // SAFETY: plain syscall on the group this child leads.
                    unsafe {
                        libc::kill(-(child.id() as i32), libc::SIGKILL);
                    }
                    let _ = child.wait();
                    break None;
                }
            }
        };
        Output {
            line: self.line,
            status,
            stdout: read_lossy(&out_path),
            stderr: read_lossy(&err_path),
        }
    }
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Stdout then stderr, for searching what a client reported.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The command, how it ended and the tail of its output: the body of a failed row.
    pub fn describe(&self) -> String {
        let how = match self.status {
            Some(st) => format!("exited with {st}"),
            None => "timed out and was killed".to_owned(),
        };
        format!(
            "`{}` {how}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.line,
            tail(&self.stdout, 40),
            tail(&self.stderr, 40)
        )
    }

    /// `Ok(self)` when the client exited 0, else the description as the row's error.
    pub fn ok(self) -> Result<Output, String> {
        if self.success() {
            Ok(self)
        } else {
            Err(self.describe())
        }
    }
}

fn read_lossy(p: &PathBuf) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,%@+".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
