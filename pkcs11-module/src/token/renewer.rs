//! The background renewal of a token's short-lived credentials (GlobalSign DSS identities): one thread
//! per such token, started with the first set, that replaces the set when it is due
//! (credentials.rs's [`Life`](super::credentials::Life)) — off the signing path, so that no signature
//! waits for a new identity — while an application has a session open with the token. A token nobody
//! uses is not renewed: its next lookup fetches a fresh set itself.
//!
//! The thread holds the token only while it works (a `Weak` otherwise); dropping the token wakes it,
//! and it ends. C_Finalize stops it and waits for it to end ([`Renewer::stop`]): an application may
//! unload the module right after C_Finalize (pkcs11-provider does at exit), and a thread still running
//! the module's code then would crash the process. A forked child has no renewer until it initializes
//! the module itself (state.rs), which builds new tokens.

use super::Token;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often an unused token whose set is due is looked at again.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// First pause after a failed renewal; it doubles up to [`LONGEST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const LONGEST_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Sleeps `d` or until stopped; true when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stopped = self.stopped.lock();
        while !*stopped {
            if self.wake.wait_until(&mut stopped, deadline).timed_out() {
                break;
            }
        }
        *stopped
    }
}

#[derive(Default)]
pub struct Renewer {
    started: AtomicBool,
    stop: Arc<Stop>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Renewer {
    /// Starts the thread once.
    pub fn start(&self, token: Weak<Token>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let stop = self.stop.clone();
        let spawned = std::thread::Builder::new()
            .name("cloudtoken-renew".into())
            .spawn(move || run(&token, &stop));
        match spawned {
            Ok(handle) => *self.thread.lock() = Some(handle),
            Err(e) => {
                log::warn!("cannot start the renewal of short-lived credentials: {e}");
                self.started.store(false, Ordering::Release);
            }
        }
    }

    /// Stops the thread and waits up to `wait` for it to end (a renewal in progress finishes first).
    /// False when it is still running then.
    pub fn stop(&self, wait: Duration) -> bool {
        *self.stop.stopped.lock() = true;
        self.stop.wake.notify_all();
        let Some(handle) = self.thread.lock().take() else {
            return true;
        };
        reap(handle, Instant::now() + wait)
    }
}

/// Joins `thread` if it ends before `deadline`; false (and left running) otherwise. Once joined, none
/// of its code runs any more, so the application may unload the module.
pub fn reap(thread: JoinHandle<()>, deadline: Instant) -> bool {
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = thread.join();
    true
}

impl Drop for Renewer {
    fn drop(&mut self) {
        *self.stop.stopped.lock() = true;
        self.stop.wake.notify_all();
    }
}

fn run(token: &Weak<Token>, stop: &Stop) {
    let mut backoff: Option<Duration> = None;
    loop {
        let wait = {
            let Some(t) = token.upgrade() else { return };
            let Some(at) = t.catalog.renew_at() else {
                return;
            };
            let until_due = at.saturating_duration_since(Instant::now());
            match backoff {
                Some(b) => b,
                None if until_due.is_zero() && !t.in_use() => IDLE_POLL,
                None => until_due,
            }
        };
        if stop.sleep(wait) {
            return;
        }
        let Some(t) = token.upgrade() else { return };
        if !t.in_use() || *stop.stopped.lock() {
            continue;
        }
        match t.renew() {
            Ok(()) => backoff = None,
            Err(rv) => {
                let next = backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(LONGEST_BACKOFF));
                log::warn!(
                    "slot {}: renewing the short-lived credentials failed ({}); trying again in {} s",
                    t.slot_id,
                    crate::error::rv_name(rv),
                    next.as_secs()
                );
                backoff = Some(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_waits_for_the_thread_to_end() {
        let r = Renewer::default();
        assert!(
            r.stop(Duration::from_millis(10)),
            "no thread: nothing to wait for"
        );
        let r = Renewer::default();
        let s = r.stop.clone();
        *r.thread.lock() = Some(std::thread::spawn(move || {
            s.sleep(Duration::from_secs(30));
        }));
        let started = Instant::now();
        assert!(r.stop(Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(r.thread.lock().is_none());
        // A thread busy beyond the wait is reported, not waited for.
        let r = Renewer::default();
        *r.thread.lock() = Some(std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(500));
        }));
        assert!(!r.stop(Duration::from_millis(20)));
    }

    #[test]
    fn a_stopped_sleep_returns_at_once() {
        let stop = Arc::new(Stop::default());
        let s = stop.clone();
        let t = std::thread::spawn(move || s.sleep(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        *stop.stopped.lock() = true;
        stop.wake.notify_all();
        let started = Instant::now();
        assert!(t.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!Stop::default().sleep(Duration::from_millis(10)));
    }
}
