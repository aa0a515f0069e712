//! Once-per-cluster timers (`#[timed(every = "...", once_per_cluster)]`): every replica runs the
//! timer, and each tick runs on the one replica that claims it in the store. Ticks are the
//! schedule's occurrences on the store's clock, so a replica whose clock is off neither runs a
//! tick twice nor loses one. All it asks of the store goes through the [`Backend`] seam: its
//! clock ([`Backend::clock_us`]) and its tick claims ([`Backend::claim_tick`],
//! [`Backend::last_tick`], [`Backend::prune_ticks`]).

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Backend, DurableConfig, DurableError};
use crate::config::Config;
use crate::di::{Inject, InjectError, RunContext, ScopeExit};
use crate::registry::ServiceDescriptor;
use crate::service::{
    BoxError, ErasedService, FailurePolicy, HostedService, IntoOutcome, ServiceContext,
    ServiceKind, call_caught,
};
use crate::timer::{CronSchedule, Tick, TimerOptions};
use crate::util::BoxFuture;

type Body = Arc<dyn Fn(RunContext) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// A once-per-cluster timed service: `body` runs once per tick of `options` (an `every` or a
/// `cron` schedule) across every replica that runs it. With `backfill`, ticks missed while no
/// replica ran (up to that long ago) run when one starts; without, they are skipped. What
/// `#[timed(once_per_cluster)]` registers.
pub fn cluster_timed<F, Fut>(
    name: impl Into<Cow<'static, str>>,
    options: TimerOptions,
    backfill: Option<Duration>,
    body: F,
) -> ServiceDescriptor
where
    F: Fn(RunContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output: IntoOutcome> + Send + 'static,
{
    let body: Body = Arc::new(move |cx| -> BoxFuture<'static, Result<(), BoxError>> {
        let run = body(cx);
        Box::pin(async move { run.await.into_outcome() })
    });
    let settings = options.settings();
    let mut descriptor = ServiceDescriptor::new(
        name.into(),
        ServiceKind::Timed,
        Arc::new(move |cx: RunContext| {
            let body = Arc::clone(&body);
            let options = options.configured(cx.info().settings());
            Box::pin(async move {
                let slots = Slots::of(&options).map_err(InjectError::Custom)?;
                let config = cx.resolve::<Config<DurableConfig>>().await?;
                let backend = config
                    .backend()
                    .await
                    .map_err(|error| InjectError::Custom(error.to_string()))?;
                #[cfg(feature = "web")]
                super::readiness::report(&cx, &backend).await;
                let backend: Arc<dyn Backend> = backend;
                Ok(Arc::new(ClusterTimer {
                    body,
                    slots,
                    backfill,
                    backend,
                    cx,
                }) as Arc<dyn ErasedService>)
            })
        }),
    )
    .needs(<Config<DurableConfig> as Inject>::declare)
    .on_failure(FailurePolicy::Ignore);
    descriptor.store = Some(super::STORE);
    settings
        .into_iter()
        .fold(descriptor, ServiceDescriptor::setting)
}

/// The schedule's occurrences, in microseconds since the Unix epoch.
enum Slots {
    /// Every multiple of the period since the epoch.
    Every(i64),
    Cron(Box<CronSchedule>),
}

impl Slots {
    fn of(options: &TimerOptions) -> Result<Self, String> {
        if options.delay.is_some() {
            return Err(
                "a once-per-cluster timer needs an `every` or `cron` schedule: a fixed delay \
                 follows one replica's runs"
                    .to_owned(),
            );
        }
        if let Some(period) = options.every {
            let period = i64::try_from(period.as_micros()).unwrap_or(i64::MAX);
            if period <= 0 {
                return Err("`every` must be at least a microsecond".to_owned());
            }
            return Ok(Self::Every(period));
        }
        let Some(expression) = &options.cron else {
            return Err("a once-per-cluster timer needs an `every` or `cron` schedule".to_owned());
        };
        let mut schedule = CronSchedule::parse(expression).map_err(|error| error.to_string())?;
        if let Some(zone) = &options.time_zone {
            schedule = schedule
                .with_time_zone(zone)
                .map_err(|error| error.to_string())?;
        }
        Ok(Self::Cron(Box::new(schedule)))
    }

    /// The first occurrence strictly after `us`.
    fn next_after(&self, us: i64) -> Option<i64> {
        match self {
            Self::Every(period) => Some((us.div_euclid(*period) + 1) * period),
            Self::Cron(schedule) => {
                let time = SystemTime::UNIX_EPOCH
                    + Duration::from_micros(u64::try_from(us.max(0)).unwrap_or(0));
                let next = schedule.next_after(time)?;
                let since = next.duration_since(SystemTime::UNIX_EPOCH).ok()?;
                i64::try_from(since.as_micros()).ok()
            }
        }
    }

    /// The tick's number: its occurrence's place in the schedule (for `every`, the multiple of
    /// the period; for `cron`, its second since the epoch), the same on every replica.
    fn number(&self, due_us: i64) -> u64 {
        let n = match self {
            Self::Every(period) => due_us / period,
            Self::Cron(_) => due_us / 1_000_000,
        };
        u64::try_from(n).unwrap_or(0)
    }
}

struct ClusterTimer {
    body: Body,
    slots: Slots,
    backfill: Option<Duration>,
    backend: Arc<dyn Backend>,
    cx: RunContext,
}

/// The database's clock as this replica reads it: the database's time at a local instant.
#[derive(Clone, Copy)]
struct DbClock {
    at: Instant,
    us: i64,
}

impl DbClock {
    fn now(self) -> i64 {
        let elapsed = i64::try_from(self.at.elapsed().as_micros()).unwrap_or(i64::MAX);
        self.us.saturating_add(elapsed)
    }

    /// The local instant when the database's clock reads `us`.
    fn instant_of(self, us: i64) -> Instant {
        let ahead = u64::try_from(us.saturating_sub(self.us)).unwrap_or(0);
        self.at + Duration::from_micros(ahead)
    }
}

impl ClusterTimer {
    fn name(&self) -> &str {
        self.cx.info().name()
    }

    async fn clock(&self) -> Result<DbClock, DurableError> {
        let before = Instant::now();
        let us = self.backend.clock_us().await?;
        // Half the round trip is the best guess of when the server read its clock.
        let at = before + before.elapsed() / 2;
        Ok(DbClock { at, us })
    }

    /// Runs one tick if this replica claims it.
    async fn tick(&self, due_us: i64, clock: DbClock) -> Result<(), DurableError> {
        if !self.backend.claim_tick(self.name(), due_us).await? {
            return Ok(());
        }
        let retention = self
            .backfill
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_hours(24));
        let keep_from =
            due_us.saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
        if let Err(error) = self.backend.prune_ticks(self.name(), keep_from).await {
            tracing::debug!(%error, "cannot forget old ticks yet");
        }
        let tick = Tick {
            number: self.slots.number(due_us),
            scheduled: clock.instant_of(due_us),
            scheduled_at: SystemTime::UNIX_EPOCH
                + Duration::from_micros(u64::try_from(due_us).unwrap_or(0)),
            started: Instant::now(),
            missed: 0,
        };
        let (cx, end) = self.cx.begin_run();
        let cx = cx.with_extension(tick);
        let result = call_caught(|| (self.body)(cx), None).await;
        let exit = ScopeExit::of(&result);
        let disposed = end.finish(exit, self.cx.status()).await;
        // A `dispose` that panicked fails the tick, as in any timer.
        if let Err(failure) = result.and(disposed) {
            tracing::warn!(tick = tick.number, error = %failure, "the tick failed; the timer goes on");
        }
        Ok(())
    }

    /// With `backfill`, the ticks missed while no replica ran, within the window, and those
    /// that come due while back-filling; returns where the schedule goes on from.
    async fn backfill(&self, clock: DbClock) -> Result<i64, DurableError> {
        let now = clock.now();
        let Some(window) = self.backfill else {
            return Ok(now);
        };
        let window_start =
            now.saturating_sub(i64::try_from(window.as_micros()).unwrap_or(i64::MAX));
        let Some(last) = self.backend.last_tick(self.name()).await? else {
            return Ok(now);
        };
        let mut cursor = last.max(window_start);
        let mut ran = 0_u64;
        let mut clock = clock;
        loop {
            let now = clock.now();
            let mut caught_up = true;
            while let Some(due) = self.slots.next_after(cursor) {
                if due > now {
                    break;
                }
                self.tick(due, clock).await?;
                ran += 1;
                cursor = due;
                caught_up = false;
            }
            if caught_up {
                break;
            }
            clock = self.clock().await?;
        }
        if ran > 0 {
            tracing::info!(
                ticks = ran,
                "back-filled the ticks missed while no replica ran"
            );
        }
        Ok(cursor.max(now))
    }
}

impl HostedService for ClusterTimer {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!(backfill = ?self.backfill, "once-per-cluster timer: ticks run on one replica each");
        Ok(())
    }

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        let mut backoff = Duration::from_millis(100);
        let mut cursor: Option<i64> = None;
        loop {
            let clock = match self.clock().await {
                Ok(clock) => clock,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the database's clock; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let from = match cursor {
                // Ticks that passed while this replica was busy or cut off are skipped here:
                // another replica ran them, or they were missed.
                Some(cursor) => cursor.max(clock.now()),
                // Back-filled up to there: a tick that came due since the back-fill last read
                // the clock runs next, late, rather than being skipped as passed.
                None => match self.backfill(clock).await {
                    Ok(resume) => resume,
                    Err(error) => {
                        tracing::warn!(%error, "cannot back-fill the missed ticks");
                        clock.now()
                    }
                },
            };
            let Some(due) = self.slots.next_after(from) else {
                stop.cancelled().await;
                return Ok(());
            };
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(clock.instant_of(due)) => {}
            }
            if let Err(error) = self.tick(due, clock).await {
                tracing::warn!(%error, "cannot claim the tick; retrying on the next one");
            }
            cursor = Some(due);
        }
    }
}
