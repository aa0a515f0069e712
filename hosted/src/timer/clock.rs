//! The wall clock cron schedules read: the system's, or one that follows tokio's paused clock.

use std::time::SystemTime;

use tokio::time::Instant;

/// A wall clock that follows tokio's clock from a starting time: under the paused clock, cron
/// schedules fire on virtual time. Register it with
/// [`HostBuilder::add_instance`](crate::host::HostBuilder::add_instance); [`TestHost`](crate::testing::TestHost) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualWallClock {
    origin: Instant,
    origin_wall: SystemTime,
}

impl VirtualWallClock {
    /// A clock that reads `wall` now and moves with tokio's clock.
    #[must_use]
    pub fn starting_at(wall: SystemTime) -> Self {
        Self {
            origin: Instant::now(),
            origin_wall: wall,
        }
    }

    /// The wall time now.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        self.wall_at(Instant::now())
    }

    /// The wall time at `instant` of tokio's clock.
    #[must_use]
    pub fn wall_at(&self, instant: Instant) -> SystemTime {
        if instant >= self.origin {
            self.origin_wall + (instant - self.origin)
        } else {
            self.origin_wall
                .checked_sub(self.origin - instant)
                .unwrap_or(self.origin_wall)
        }
    }

    /// The instant of tokio's clock at which the wall clock reads `wall`.
    #[must_use]
    pub fn instant_at(&self, wall: SystemTime) -> Instant {
        match wall.duration_since(self.origin_wall) {
            Ok(after) => self.origin + after,
            Err(before) => self
                .origin
                .checked_sub(before.duration())
                .unwrap_or(self.origin),
        }
    }
}
