//! Wall-clock time for the long-running parts (pairing expiry, last sync), pinnable for tests.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A wall clock that starts at a given moment and then runs at real speed. `duet` starts it at
/// `DUET_NOW` when that is set, so a test pins every time a command reads, while timeouts
/// still run on the real monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    start_ms: i64,
    started: Instant,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock::starting_at(now)
    }

    /// A clock that reads `start_ms` (Unix milliseconds) now and runs on from there.
    pub fn starting_at(start_ms: i64) -> Clock {
        Clock {
            start_ms,
            started: Instant::now(),
        }
    }

    /// Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        let elapsed = self.started.elapsed().as_millis().min(i64::MAX as u128) as i64;
        self.start_ms.saturating_add(elapsed)
    }

    /// Unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn a_pinned_clock_starts_where_it_is_told_and_runs_forward() {
        let clock = Clock::starting_at(1_000_000);
        let first = clock.now_ms();
        assert!((1_000_000..1_060_000).contains(&first));
        assert!(clock.now_ms() >= first);
        assert_eq!(Clock::starting_at(-1).now_secs(), -1);
    }
}
