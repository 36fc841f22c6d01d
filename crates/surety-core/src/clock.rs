//! Time comes from outside: every rule that depends on "now" takes it from a [`Clock`],
//! so tests can drive it and production reads the system clock in exactly one place.

use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC, truncated to whole microseconds (the resolution both
    /// storage backends keep, so values round-trip exactly).
    fn now(&self) -> OffsetDateTime;
}

/// Truncates an instant to whole microseconds.
#[must_use]
pub fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t - Duration::nanoseconds(i64::from(nanos % 1_000))
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate_to_micros(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `start` (truncated to microseconds).
    #[must_use]
    pub fn new(start: OffsetDateTime) -> Self {
        let start = truncate_to_micros(start);
        Self {
            micros: AtomicI64::new(unix_micros(start)),
        }
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX);
        self.micros.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: OffsetDateTime) {
        self.micros.store(unix_micros(t), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let micros = self.micros.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

fn unix_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(datetime!(2026-01-01 00:00:00.123456789 UTC));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00:00.123456 UTC));
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:05:00.123456 UTC));
    }

    #[test]
    fn system_clock_is_truncated_to_micros() {
        assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
    }
}
