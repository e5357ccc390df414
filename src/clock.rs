//! Time as the monitor sees it (SPEC §4 "Time"): verdicts follow elapsed
//! (monotonic) time, epoch seconds appear only in payloads.
//!
//! [`Now`] carries both readings, taken together by the main loop and
//! passed to the monitor core, so the core never reads a clock itself (its
//! tests inject any time they like). `mono_ms` counts milliseconds on the
//! monotonic clock from an origin placed on the whole wall-clock second
//! before start: whole seconds of `mono_ms` then fall on whole epoch
//! seconds (until the wall clock is stepped), so deadlines rounded up to a
//! whole second and ticks just after each second keep the original's
//! "alert within a few milliseconds of its deadline" — and a wall-clock
//! step moves neither.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Both clocks at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds since the clock's origin.
    pub mono_ms: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub wall_ms: u64,
}

impl Now {
    /// The epoch milliseconds of an earlier (or later) monotonic instant,
    /// as the wall clock reads now: `wall − (mono_now − mono)`.
    pub fn wall_of(&self, mono_ms: u64) -> u64 {
        (self.wall_ms + mono_ms).saturating_sub(self.mono_ms)
    }

    /// [`Now::wall_of`] in whole epoch seconds, rounded to the nearest
    /// (stable from one tick to the next although both clocks are read a
    /// few microseconds apart).
    pub fn wall_s_of(&self, mono_ms: u64) -> u64 {
        (self.wall_of(mono_ms) + 500) / 1000
    }
}

/// A monotonic instant in milliseconds that may not have happened yet:
/// 8 bytes where an `Option<u64>` takes 16 (several of them per device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeMs(u64);

impl MaybeMs {
    pub const NEVER: MaybeMs = MaybeMs(u64::MAX);

    pub fn at(ms: u64) -> MaybeMs {
        debug_assert!(ms != u64::MAX, "the sentinel of NEVER");
        MaybeMs(ms)
    }

    pub fn get(self) -> Option<u64> {
        (self != MaybeMs::NEVER).then_some(self.0)
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The real clock of the main loop.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose whole monotonic seconds fall on whole epoch seconds.
    pub fn new() -> Clock {
        let now = Instant::now();
        let into_second = Duration::from_millis(wall_ms() % 1000);
        Clock {
            origin: now.checked_sub(into_second).unwrap_or(now),
        }
    }

    pub fn now(&self) -> Now {
        Now {
            mono_ms: self.origin.elapsed().as_millis() as u64,
            wall_ms: wall_ms(),
        }
    }

    /// The `Instant` of a monotonic reading (to wait until it).
    pub fn instant(&self, mono_ms: u64) -> Instant {
        self.origin + Duration::from_millis(mono_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_of_a_monotonic_instant_follows_the_wall_clock_now() {
        let now = Now {
            mono_ms: 10_000,
            wall_ms: 1_700_000_010_000,
        };
        assert_eq!(now.wall_of(4_000), 1_700_000_004_000);
        assert_eq!(now.wall_s_of(4_000), 1_700_000_004);
        // The wall clock stepped back one hour: the same instant is now
        // reported an hour earlier, the elapsed time is unchanged.
        let stepped = Now {
            wall_ms: now.wall_ms - 3_600_000,
            ..now
        };
        assert_eq!(stepped.wall_s_of(4_000), 1_700_000_004 - 3_600);
        // Readings a millisecond apart round to the same second.
        let jitter = Now {
            mono_ms: 10_001,
            ..now
        };
        assert_eq!(jitter.wall_s_of(4_000), now.wall_s_of(4_000));
    }

    #[test]
    fn whole_monotonic_seconds_fall_on_whole_epoch_seconds() {
        let clock = Clock::new();
        let now = clock.now();
        let offset = (now.wall_ms - now.mono_ms) % 1000;
        assert!(
            !(50..=950).contains(&offset),
            "offset {offset} ms between the clocks' seconds"
        );
    }
}
