//! A timer's instants as nanoseconds since it started. Everything a tick works out from its
//! instants — which ticks are due, how late it started, how long it ran, when the next one is
//! due, its wall time — is then integer arithmetic: tokio's clock is read and converted once
//! when the tick starts and once when its run ends, where subtracting two `Instant`s (a checked
//! `timespec` subtraction, about 60 instructions) came up eight times per tick.

use std::time::Duration;

use tokio::time::Instant;

use crate::util::nanos;

/// A point of a timer's timeline: nanoseconds since the timer started. Saturates 584 years on,
/// so a schedule that far away never comes due rather than wrapping.
pub(crate) type At = u64;

/// Where a timer's timeline starts, on tokio's clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeline {
    origin: Instant,
}

/// tokio's clock read once: the instant, and where it falls on the timeline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reading {
    pub(crate) instant: Instant,
    pub(crate) at: At,
}

impl Timeline {
    /// A timeline starting now.
    pub(crate) fn starting_now() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// The instant the timeline starts at.
    pub(crate) fn origin(self) -> Instant {
        self.origin
    }

    /// Reads tokio's clock.
    pub(crate) fn read(self) -> Reading {
        let instant = Instant::now();
        Reading {
            instant,
            at: self.at(instant),
        }
    }

    /// Where `instant` falls; an instant before the start falls on it.
    pub(crate) fn at(self, instant: Instant) -> At {
        nanos(instant.saturating_duration_since(self.origin))
    }

    /// The instant at `at`.
    pub(crate) fn instant(self, at: At) -> Instant {
        self.origin + Duration::from_nanos(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_points_convert_both_ways() {
        let timeline = Timeline::starting_now();
        let later = timeline.origin() + Duration::from_millis(1_500);
        assert_eq!(timeline.at(later), 1_500_000_000);
        assert_eq!(timeline.instant(1_500_000_000), later);
        // Before the start: on it.
        let before = timeline.origin().checked_sub(Duration::from_secs(1));
        if let Some(before) = before {
            assert_eq!(timeline.at(before), 0);
        }
        assert!(timeline.read().at < 60_000_000_000, "read a minute late");
    }
}
