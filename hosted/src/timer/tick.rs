//! [`Tick`]: what a timed service's function learns about the tick it runs for.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::di::{Inject, InjectError, RunContext};

/// The tick a `#[timed]` function runs for; take it as a parameter.
///
/// ```
/// #[hosted::timed(every = "5s")]
/// async fn report(tick: hosted::Tick) {
///     if tick.missed() > 0 {
///         tracing::warn!(missed = tick.missed(), "this tick stands for several");
///     }
///     tracing::info!(tick = tick.number(), lateness = ?tick.lateness(), "reporting");
/// }
/// ```
///
/// Only timed services have ticks: in any other service the parameter fails to inject, and
/// the run fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    pub(crate) number: u64,
    pub(crate) scheduled: Instant,
    pub(crate) scheduled_at: SystemTime,
    pub(crate) started: Instant,
    pub(crate) missed: u64,
}

impl Tick {
    /// The tick's number: the *n*-th time the schedule came due since the timer started,
    /// counting from 1. Ticks skipped or coalesced keep their numbers, so a gap shows ticks that
    /// did not run; numbers go on across restarts.
    #[must_use]
    pub fn number(&self) -> u64 {
        self.number
    }

    /// When the tick was due, jitter included, on tokio's clock.
    #[must_use]
    pub fn scheduled(&self) -> Instant {
        self.scheduled
    }

    /// When the tick was due, on the wall clock (the virtual one under
    /// [`testing`](crate::testing)).
    #[must_use]
    pub fn scheduled_at(&self) -> SystemTime {
        self.scheduled_at
    }

    /// When the tick actually started, on tokio's clock.
    #[must_use]
    pub fn started(&self) -> Instant {
        self.started
    }

    /// How late the tick started: `started - scheduled`.
    #[must_use]
    pub fn lateness(&self) -> Duration {
        self.started.saturating_duration_since(self.scheduled)
    }

    /// How many earlier ticks this one stands for: ticks coalesced into it under
    /// `overlap = "coalesce"`, or skipped by `missed = "skip"` / `"delay"`. Usually 0.
    #[must_use]
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

impl Tick {
    fn of_run(cx: &RunContext) -> Result<Self, InjectError> {
        cx.extension::<Self>().copied().ok_or_else(|| {
            InjectError::Custom(format!(
                "`Tick` is only available to `#[timed]` services, and `{}` is a {} service",
                cx.info().name(),
                cx.info().kind()
            ))
        })
    }
}

#[diagnostic::do_not_recommend]
impl Inject for Tick {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Self::of_run(cx)
    }

    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        Some(Self::of_run(cx))
    }
}
