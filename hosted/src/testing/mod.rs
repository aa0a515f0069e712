//! Running a host on tokio's paused clock: advance virtual time, then assert what ran.
//!
//! Timed services are tested on virtual time, not by waiting: with tokio's clock paused (the
//! `test-util` feature of tokio, and `#[tokio::test(start_paused = true)]`), a test that runs a
//! host for an hour of virtual time takes milliseconds, and its tick counts are exact. .NET got
//! this only with `FakeTimeProvider` in .NET 8, and only for code written against it.
//!
//! [`TestHost`] starts a host on the paused clock, runs it for a span of virtual time, records
//! every tick of every timed service ([`TickLog`]), and gives the timers a wall clock that
//! follows virtual time ([`VirtualWallClock`]) so cron schedules fire on it too.
//!
//! ```rust,standalone_crate
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::time::Duration;
//!
//! static TICKS: AtomicU64 = AtomicU64::new(0);
//!
//! #[hosted::timed(every = "5s")]
//! async fn heartbeat() {
//!     TICKS.fetch_add(1, Ordering::Relaxed);
//! }
//!
//! #[tokio::main(flavor = "current_thread", start_paused = true)]
//! async fn main() {
//!     let mut host = hosted::testing::TestHost::start(hosted::Host::builder().discover())
//!         .await
//!         .expect("the host starts");
//!     host.run_for(Duration::from_secs(60)).await;
//!     // Due at 0 s, 5 s, ..., 55 s; the tick due at 60 s is past the end.
//!     assert_eq!(TICKS.load(Ordering::Relaxed), 12);
//!     assert_eq!(host.ticks(concat!(module_path!(), "::heartbeat")).len(), 12);
//!     assert!(host.stop().await.is_success());
//! }
//! ```
//!
//! In a test, write `#[tokio::test(start_paused = true)]` instead of the `main` above.
//!
//! # Without `TestHost`
//!
//! Any host runs on the paused clock: build it as usual, [`start`](crate::Host::start) it,
//! `tokio::time::sleep(...)` in the test for as long as it should run (tokio moves the paused
//! clock to each timer in turn, so every tick fires at its exact time), then
//! [`stop`](crate::host::RunningHost::stop) it. Prefer `sleep` to `tokio::time::advance`: `advance`
//! jumps over every tick at once, and the timers see one late wake-up instead of a series of
//! punctual ones. Register a [`VirtualWallClock`] with
//! [`add_instance`](crate::host::HostBuilder::add_instance) for cron schedules to follow virtual time,
//! and a [`TickLog`] to record the ticks.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

pub use crate::timer::{TickLog, TickRecord, VirtualWallClock};

use crate::host::{HostBuilder, Outcome, RunningHost};

/// The resolution of tokio's timers: [`TestHost::run_for`] sleeps until this much before its end,
/// so what is due exactly at the end has not started.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// How many times [`settle`] lets every ready task run.
const SETTLE_ROUNDS: usize = 64;

/// A host running on tokio's paused clock, for tests.
#[derive(Debug)]
pub struct TestHost {
    running: RunningHost,
    log: Arc<TickLog>,
    clock: Arc<VirtualWallClock>,
    started: Instant,
    /// How far [`run_for`](Self::run_for) has taken the host.
    elapsed: Duration,
}

impl TestHost {
    /// Builds and starts the host, with the wall clock starting at the system's current time.
    ///
    /// # Errors
    /// The outcome, when a service failed to start.
    ///
    /// # Panics
    /// When tokio's clock is not paused (use `#[tokio::test(start_paused = true)]`), or when the
    /// host cannot be built.
    pub async fn start(builder: HostBuilder) -> Result<Self, Outcome> {
        Self::start_at(builder, SystemTime::now()).await
    }

    /// Builds and starts the host, with the timers' wall clock starting at `wall`: how a test
    /// pins what a cron schedule sees.
    ///
    /// # Errors
    /// The outcome, when a service failed to start.
    ///
    /// # Panics
    /// When tokio's clock is not paused (use `#[tokio::test(start_paused = true)]`), or when the
    /// host cannot be built.
    pub async fn start_at(builder: HostBuilder, wall: SystemTime) -> Result<Self, Outcome> {
        assert_paused();
        let log = Arc::new(TickLog::default());
        let clock = Arc::new(VirtualWallClock::starting_at(wall));
        let host = builder
            .add_instance(Arc::clone(&log))
            .add_instance(Arc::clone(&clock))
            .build()
            .unwrap_or_else(|error| panic!("the host cannot be built: {error}"));
        let started = Instant::now();
        let running = host.start().await?;
        Ok(Self {
            running,
            log,
            clock,
            started,
            elapsed: Duration::ZERO,
        })
    }

    /// Lets the host run for `duration` of virtual time, from where the previous call left it:
    /// every tick due in `[elapsed, elapsed + duration)` runs at its time. A tick due exactly at
    /// the end runs in the next call (or never, if the host is stopped).
    pub async fn run_for(&mut self, duration: Duration) {
        self.elapsed += duration;
        let end = self.started + self.elapsed;
        let short = end.checked_sub(TIMER_RESOLUTION).unwrap_or(end);
        if short > Instant::now() {
            tokio::time::sleep_until(short).await;
        }
        // What is due now (at 0 for `run_for(1ms)`, or woken with this sleep) runs before the
        // call returns.
        settle().await;
    }

    /// Moves the clock forward by `duration` at once, as a suspended process sees it on waking:
    /// timers then find themselves late, and their missed-tick policy applies. Compare
    /// [`run_for`](Self::run_for), which lets each tick fire at its time. Needs the `test-util`
    /// feature of `hosted` (which turns on tokio's).
    #[cfg(feature = "test-util")]
    pub async fn jump(&mut self, duration: Duration) {
        self.elapsed += duration;
        // From where the host's time stands, not from where `run_for` left tokio's clock (a
        // millisecond short of it).
        let target = self.started + self.elapsed;
        tokio::time::advance(target.saturating_duration_since(Instant::now())).await;
        settle().await;
    }

    /// The virtual time the host has run for.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The instant the host started on tokio's clock, from which [`elapsed`](Self::elapsed)
    /// counts: tick times minus this are the virtual times they happened at.
    #[must_use]
    pub fn origin(&self) -> Instant {
        self.started
    }

    /// The ticks of the service named `service` that started, in order.
    #[must_use]
    pub fn ticks(&self, service: &str) -> Vec<TickRecord> {
        self.log.of(service)
    }

    /// Every tick that started, in order.
    #[must_use]
    pub fn tick_log(&self) -> &TickLog {
        &self.log
    }

    /// The timers' wall clock.
    #[must_use]
    pub fn wall_clock(&self) -> &VirtualWallClock {
        &self.clock
    }

    /// The running host: its lifetime, and the registered values.
    #[must_use]
    pub fn host(&self) -> &RunningHost {
        &self.running
    }

    /// Stops the host, as at the end of a run: no tick starts once the stop begins, and the
    /// running ones are awaited within the shutdown budget (on virtual time too).
    pub async fn stop(self) -> Outcome {
        self.running.stop().await
    }
}

/// Lets every task that can run now run, without moving the clock: on the paused clock's one
/// thread, each yield lets every ready task (and every timer due now) have its turn.
async fn settle() {
    for _ in 0..SETTLE_ROUNDS {
        tokio::task::yield_now().await;
    }
}

/// Panics unless tokio's clock is paused: otherwise `run_for` would wait for real.
fn assert_paused() {
    let before = Instant::now();
    std::thread::sleep(Duration::from_millis(1));
    assert!(
        Instant::now() == before,
        "hosted::testing runs on tokio's paused clock: use `#[tokio::test(start_paused = true)]` \
         (with tokio's `test-util` feature)"
    );
}
