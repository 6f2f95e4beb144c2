//! Time as a parameter: the log asks a [`Clock`] instead of the system, so
//! tests can drive segment rolling, retention and tombstone expiry.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::types::TimestampMs;

/// A source of wall-clock time.
pub trait Clock {
    /// Now, in milliseconds since the Unix epoch.
    fn now(&self) -> TimestampMs;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> TimestampMs {
        // A clock before 1970 is a broken host; treat it as the epoch.
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        TimestampMs(ms)
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: Cell<i64>,
}

impl ManualClock {
    /// A clock that reads `now_ms`.
    #[must_use]
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock {
            now_ms: Cell::new(now_ms),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// Sets the clock to `now_ms`.
    pub fn set(&self, now_ms: i64) {
        self.now_ms.set(now_ms);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> TimestampMs {
        TimestampMs(self.now_ms.get())
    }
}
