//! Rate limits: at most `count` requests of one kind per `window`, over a sliding window. A request
//! over the limit is refused with the wait until the oldest one leaves the window (`Retry-After`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: usize,
    pub window: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;
    /// `COUNT/SECONDS`, e.g. `20/60`.
    fn from_str(s: &str) -> Result<Rate, String> {
        let (n, secs) = s.split_once('/').ok_or("give COUNT/SECONDS, e.g. 20/60")?;
        let count: usize = n.trim().parse().map_err(|_| "COUNT is not a number")?;
        let secs: u64 = secs.trim().parse().map_err(|_| "SECONDS is not a number")?;
        if count == 0 || secs == 0 {
            return Err("COUNT and SECONDS must be at least 1".into());
        }
        Ok(Rate {
            count,
            window: Duration::from_secs(secs),
        })
    }
}

pub struct Limiter {
    rate: Rate,
    recent: Mutex<VecDeque<Instant>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Limiter {
        Limiter {
            rate,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Counts one request, or refuses it with the whole seconds to wait (at least 1).
    pub fn admit(&self) -> Result<(), u64> {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.rate.window)
        {
            recent.pop_front();
        }
        if recent.len() < self.rate.count {
            recent.push_back(now);
            return Ok(());
        }
        let oldest = *recent.front().expect("the window is full");
        let wait = self.rate.window.saturating_sub(now.duration_since(oldest));
        Err(wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_refuses_with_the_wait() {
        let l = Limiter::new("2/30".parse().unwrap());
        assert!(l.admit().is_ok() && l.admit().is_ok());
        let wait = l.admit().unwrap_err();
        assert!((29..=30).contains(&wait), "{wait}");
        let l = Limiter::new(Rate {
            count: 1,
            window: Duration::from_millis(100),
        });
        l.admit().unwrap();
        assert_eq!(l.admit(), Err(1));
        std::thread::sleep(Duration::from_millis(120));
        assert!(l.admit().is_ok());
    }

    #[test]
    fn rates_are_count_per_seconds() {
        assert_eq!(
            "20/60".parse::<Rate>().unwrap(),
            Rate {
                count: 20,
                window: Duration::from_secs(60)
            }
        );
        for bad in ["20", "0/60", "a/60", "20/0", "20/x"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }
}
