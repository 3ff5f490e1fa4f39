//! How signatures are timed, independent of the path that makes them: latency runs (warm-up, then
//! timed one at a time; several signers in alternating blocks so that a change of load on a shared
//! machine hits them alike), throughput runs (N threads signing until a deadline), and the order
//! statistics reported.

use crate::Result;
use serde_json::{json, Value};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// What a signer returns: the signed message and the signature, checked after the run.
pub type Signed = (Vec<u8>, Vec<u8>);

/// Order statistics of latencies, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub count: usize,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Stats {
    /// Nearest-rank percentiles of `latencies` (which need not be sorted; must not be empty).
    pub fn of(latencies: &[Duration]) -> Stats {
        let mut v = latencies.to_vec();
        v.sort();
        let rank = |p: f64| ms(v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]);
        Stats {
            count: v.len(),
            median: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: ms(v[v.len() - 1]),
            mean: v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64,
        }
    }

    pub fn json(&self) -> Value {
        json!({"count": self.count, "median_ms": round(self.median), "p95_ms": round(self.p95),
               "p99_ms": round(self.p99), "max_ms": round(self.max), "mean_ms": round(self.mean)})
    }
}

/// Milliseconds to the microsecond, for the report.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A latency run of one signer.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub signed: Vec<Signed>,
}

/// A signer of latency runs: signs its `i`th message.
pub type Signer<'a> = Box<dyn FnMut(usize) -> Result<Signed> + 'a>;

/// Each signer signs `warmup` messages untimed, then `count` timed ones, one at a time; with several
/// signers, in turns of `block` signatures each. Returns one run per signer, in order.
pub fn latency(
    signers: &mut [Signer<'_>],
    warmup: usize,
    count: usize,
    block: usize,
) -> Result<Vec<Run>> {
    for s in signers.iter_mut() {
        for i in 0..warmup {
            s(i)?;
        }
    }
    let mut runs: Vec<Run> = signers
        .iter()
        .map(|_| Run {
            latencies: Vec::with_capacity(count),
            signed: Vec::with_capacity(count),
        })
        .collect();
    let mut done = 0;
    while done < count {
        let n = block.max(1).min(count - done);
        for (s, run) in signers.iter_mut().zip(runs.iter_mut()) {
            for i in warmup + done..warmup + done + n {
                let start = Instant::now();
                let signed = s(i)?;
                run.latencies.push(start.elapsed());
                run.signed.push(signed);
            }
        }
        done += n;
    }
    Ok(runs)
}

/// The outcome of a throughput run.
pub struct Throughput {
    pub threads: usize,
    pub signatures: usize,
    pub seconds: f64,
    pub latencies: Vec<Duration>,
    /// Every `KEEP_EVERY`th signature of each thread, for the check after the run.
    pub kept: Vec<Signed>,
    /// Signatures completed in each second of the run.
    pub per_second: Vec<usize>,
}

const KEEP_EVERY: usize = 50;

impl Throughput {
    pub fn rate(&self) -> f64 {
        self.signatures as f64 / self.seconds
    }
}

/// `threads` threads, each with the signer `make(thread)` builds for it (its own session), sign from
/// a common start until `duration` has passed; a signature in flight at the deadline is waited for
/// and counted. The first error of any thread fails the run once every thread has stopped.
pub fn throughput<W, M>(threads: usize, duration: Duration, make: M) -> Result<Throughput>
where
    W: FnMut(usize) -> Result<Signed>,
    M: Fn(usize) -> Result<W> + Sync,
{
    let start_line = Barrier::new(threads + 1);
    let started = Mutex::new(None::<Instant>);
    struct Part {
        latencies: Vec<Duration>,
        kept: Vec<Signed>,
        per_second: Vec<usize>,
    }
    let (parts, seconds) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (make, start_line, started) = (&make, &start_line, &started);
                scope.spawn(move || -> Result<Part> {
                    let signer = make(t);
                    // Every thread reaches the start line, even one whose setup failed, so that
                    // none waits for it forever.
                    start_line.wait();
                    let mut signer = signer?;
                    let t0 = started
                        .lock()
                        .map_err(|_| "start time lock poisoned".to_owned())?
                        .ok_or("no start time")?;
                    let deadline = t0 + duration;
                    let mut part = Part {
                        latencies: Vec::new(),
                        kept: Vec::new(),
                        per_second: Vec::new(),
                    };
                    let mut i = 0;
                    while Instant::now() < deadline {
                        let begin = Instant::now();
                        let signed = signer(i)?;
                        let end = Instant::now();
                        part.latencies.push(end - begin);
                        let second = (end - t0).as_secs() as usize;
                        if part.per_second.len() <= second {
                            part.per_second.resize(second + 1, 0);
                        }
                        part.per_second[second] += 1;
                        if i % KEEP_EVERY == 0 {
                            part.kept.push(signed);
                        }
                        i += 1;
                    }
                    Ok(part)
                })
            })
            .collect();
        let t0 = Instant::now();
        *started.lock().unwrap_or_else(|p| p.into_inner()) = Some(t0);
        start_line.wait();
        let parts: Vec<Result<Part>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a signing thread panicked".into()))
            })
            .collect();
        (parts, t0.elapsed().as_secs_f64())
    });
    let mut out = Throughput {
        threads,
        signatures: 0,
        seconds,
        latencies: Vec::new(),
        kept: Vec::new(),
        per_second: Vec::new(),
    };
    for part in parts {
        let part = part?;
        out.signatures += part.latencies.len();
        out.latencies.extend(part.latencies);
        out.kept.extend(part.kept);
        if out.per_second.len() < part.per_second.len() {
            out.per_second.resize(part.per_second.len(), 0);
        }
        for (total, n) in out.per_second.iter_mut().zip(part.per_second) {
            *total += n;
        }
    }
    if out.signatures == 0 {
        return Err(format!("{threads} threads made no signature"));
    }
    Ok(out)
}
