//! Helper programs the module runs (the prompt, the GOST signature check): their standard output collected
//! within a deadline into zeroizing memory of bounded size, and a program that overstays ended (SIGTERM,
//! then SIGKILL).
//!
//! Calls nothing else of the crate.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const CHUNK: usize = 256;
/// How often the child's exit is checked while it writes nothing.
const TICK: Duration = Duration::from_millis(20);
/// How long a program that timed out has to end after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_millis(500);

/// Why no output could be taken: in every case the program has been ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overstay {
    /// It wrote more than allowed.
    TooLong,
    /// It did not finish in time.
    TimedOut,
    /// It was started without a pipe for its output.
    NoPipe,
}

/// Reads the child's standard output until it exits or `timeout` passes, keeping at most `max` bytes.
/// The exit status is `None` when it cannot be known (an application that ignores SIGCHLD has its
/// children reaped by the kernel). The output buffer never grows past its first allocation, so no copy
/// of what the program wrote is left behind in freed memory. On any `Err` the program is ended.
pub fn collect(
    child: &mut Child,
    timeout: Duration,
    max: usize,
) -> Result<(Zeroizing<Vec<u8>>, Option<ExitStatus>), Overstay> {
    let result = read_until_exit(child, timeout, max);
    if result.is_err() && matches!(child.try_wait(), Ok(None)) {
        stop(child);
    }
    result
}

fn read_until_exit(
    child: &mut Child,
    timeout: Duration,
    max: usize,
) -> Result<(Zeroizing<Vec<u8>>, Option<ExitStatus>), Overstay> {
    let deadline = Instant::now() + timeout;
    let mut stdout = child.stdout.take().ok_or(Overstay::NoPipe)?;
    let fd = stdout.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL have no memory effects.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(max + CHUNK));
    let mut chunk = Zeroizing::new([0u8; CHUNK]);
    let mut eof = false;
    loop {
        // Read what is there, at most up to the buffer's capacity.
        while !eof {
            match stdout.read(&mut chunk[..]) {
                Ok(0) => eof = true,
                Ok(n) => {
                    if out.len() + n > max {
                        return Err(Overstay::TooLong);
                    }
                    out.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => eof = true,
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                // Written just before exiting: take the rest without waiting for writers the program
                // may have left behind (a background process holding the pipe).
                drain(&mut stdout, &mut out, &mut chunk, max)?;
                return Ok((out, Some(status)));
            }
            Ok(None) => {}
            Err(e) => {
                log::debug!("cannot wait for a helper program: {e}");
                if eof {
                    return Ok((out, None));
                }
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Overstay::TimedOut);
        }
        let wait = TICK.min(deadline - now);
        if eof {
            std::thread::sleep(wait);
        } else {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as libc::c_int) };
        }
    }
}

/// Ends a program that is still running: SIGTERM first, so that a terminal prompt can restore the
/// terminal's echo, then SIGKILL.
pub fn stop(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill has no memory effects; the pid is our child's, not yet reaped (try_wait said it
        // is running), so it cannot name another process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let until = Instant::now() + GRACE;
        while Instant::now() < until {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn drain(
    stdout: &mut impl Read,
    out: &mut Zeroizing<Vec<u8>>,
    chunk: &mut Zeroizing<[u8; CHUNK]>,
    max: usize,
) -> Result<(), Overstay> {
    loop {
        match stdout.read(&mut chunk[..]) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if out.len() + n > max {
                    return Err(Overstay::TooLong);
                }
                out.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(()),
        }
    }
}
