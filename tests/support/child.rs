//! Code that may crash or hang, run where that is a detected failure instead of a lost test runner:
//! a forked child process under a deadline, killed when it overruns, with a pipe for what it reports.
//!
//! The child runs in a copy of a multi-threaded test process, so it must not take locks another thread
//! may have held at fork time: it reports through `ChildPipe::say` (a raw write), not println, and its
//! code should return an exit code rather than panic (a panic message needs the stderr lock).

use std::time::{Duration, Instant};

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `_exit(code)`.
    Exited(i32),
    /// Killed by this signal (a crash: SIGSEGV, SIGABRT, ...).
    Signaled(i32),
    /// Still running at the deadline; it was killed.
    TimedOut,
}

/// The child's ending and everything it said.
#[derive(Debug)]
pub struct ChildRun {
    pub ending: Ending,
    pub said: String,
    pub took: Duration,
}

impl ChildRun {
    pub fn exited_ok(&self) -> bool {
        self.ending == Ending::Exited(0)
    }
}

/// The child's end of the report pipe.
pub struct ChildPipe {
    fd: libc::c_int,
}

impl ChildPipe {
    /// Writes `line` and a newline to the parent.
    pub fn say(&mut self, line: &str) {
        let bytes = format!("{line}\n");
        let mut rest = bytes.as_bytes();
        while !rest.is_empty() {
            // SAFETY: writing from a live buffer to our own pipe descriptor.
            let n =
                unsafe { libc::write(self.fd, rest.as_ptr() as *const libc::c_void, rest.len()) };
            if n <= 0 {
                return;
            }
            rest = &rest[n as usize..];
        }
    }
}

/// Forks; the child runs `f` and exits with its return value (101 if it panics). The parent waits at
/// most `deadline`, then kills the child.
pub fn in_child(deadline: Duration, f: impl FnOnce(&mut ChildPipe) -> i32) -> ChildRun {
    let mut fds = [0; 2];
    // SAFETY: a two-element array for pipe2.
    let rv = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rv, 0, "pipe2");
    let (read_fd, write_fd) = (fds[0], fds[1]);
    let started = Instant::now();
    // SAFETY: the child only runs `f` (see the module comment) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: closing the read end in the child.
        unsafe { libc::close(read_fd) };
        let mut pipe = ChildPipe { fd: write_fd };
        let code =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut pipe))).unwrap_or(101);
        // SAFETY: leaves the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the parent keeps only the read end, non-blocking so it can wait and read in turns.
    unsafe {
        libc::close(write_fd);
        libc::fcntl(read_fd, libc::F_SETFL, libc::O_NONBLOCK);
    }
    let mut said = Vec::new();
    let drain = |said: &mut Vec<u8>| loop {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a live buffer.
        let n = unsafe { libc::read(read_fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n <= 0 {
            break;
        }
        said.extend_from_slice(&buf[..n as usize]);
    };
    let ending = loop {
        drain(&mut said);
        let mut status = 0;
        // SAFETY: polling our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break if libc::WIFEXITED(status) {
                Ending::Exited(libc::WEXITSTATUS(status))
            } else {
                Ending::Signaled(libc::WTERMSIG(status))
            };
        }
        if started.elapsed() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            break Ending::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drain(&mut said);
    // SAFETY: our descriptor.
    unsafe { libc::close(read_fd) };
    ChildRun {
        ending,
        said: String::from_utf8_lossy(&said).into_owned(),
        took: started.elapsed(),
    }
}

/// A running program under a deadline: waits for it and kills it when it overruns.
pub fn wait_deadline(
    child: &mut std::process::Child,
    deadline: Duration,
) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
