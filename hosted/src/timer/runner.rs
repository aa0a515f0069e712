//! The timer service: the loop that computes when ticks are due, applies the overlap and
//! missed-tick policies, and runs each tick as a run of its own.

use std::any::TypeId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use std::future::Future;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::stop_signal::StopSignal;
use crate::di::RunContext;
use crate::di::ScopeExit;
use crate::service::Failure;
use crate::service::FailurePolicy;
use crate::service::call_caught_unbounded;
use crate::service::{BoxError, HostedService, IntoOutcome};
use crate::telemetry::{RunSpan, in_run};
use crate::timer::options::{Cadence, Missed, Overlap, Plan};
use crate::timer::schedule::CronSchedule;
use crate::timer::tick::Tick;
use crate::timer::timeline::{At, Reading, Timeline};
use crate::timer::{TickLog, VirtualWallClock};
use crate::util::nanos;

/// Under the system clock, a cron timer wakes at least this often to read the wall clock again,
/// so a clock step or a suspended machine delays a fire time by at most this much.
const WALL_CLOCK_RECHECK: Duration = Duration::from_mins(1);

/// Fire times a cron timer counts at most when it finds itself late, so a schedule firing every
/// second after a week asleep does not spin.
const MAX_COUNTED_FIRES: u64 = 100_000;

/// The wall clock the timer reads: the system's, or a virtual one that follows tokio's
/// (paused) clock.
#[derive(Clone, Debug)]
pub(crate) enum Clock {
    System,
    Virtual(Arc<VirtualWallClock>),
}

impl Clock {
    fn wall_at(&self, instant: Instant) -> SystemTime {
        match self {
            Self::System => {
                let (now, wall) = (Instant::now(), SystemTime::now());
                if instant >= now {
                    wall + (instant - now)
                } else {
                    wall.checked_sub(now - instant).unwrap_or(wall)
                }
            }
            Self::Virtual(clock) => clock.wall_at(instant),
        }
    }

    fn instant_at(&self, wall: SystemTime) -> Instant {
        match self {
            Self::System => {
                let (now, wall_now) = (Instant::now(), SystemTime::now());
                now + wall.duration_since(wall_now).unwrap_or_default()
            }
            Self::Virtual(clock) => clock.instant_at(wall),
        }
    }
}

/// The wall time of one point of the timeline, from which a tick's wall time is derived without
/// reading both clocks on every tick. Taken again every minute, so the system's wall clock is
/// followed.
struct WallAnchor {
    at: At,
    wall: Wall,
}

/// A tick's wall time, as the tick shows it and as the status keeps it.
#[derive(Clone, Copy)]
struct Wall {
    time: SystemTime,
    /// `time` in nanoseconds since the Unix epoch ([`crate::status::unix_nanos`]).
    unix_nanos: u64,
}

impl Wall {
    fn of(time: SystemTime) -> Self {
        Self {
            time,
            unix_nanos: crate::status::unix_nanos(time),
        }
    }

    /// `nanos` after this one.
    fn after(self, nanos: u64) -> Self {
        Self {
            time: self.time + Duration::from_nanos(nanos),
            unix_nanos: self.unix_nanos.saturating_add(nanos),
        }
    }
}

impl WallAnchor {
    fn new(clock: &Clock, timeline: Timeline) -> Self {
        let now = timeline.read();
        Self {
            at: now.at,
            wall: Wall::of(clock.wall_at(now.instant)),
        }
    }

    fn wall_at(&mut self, clock: &Clock, timeline: Timeline, at: At) -> Wall {
        if let Clock::Virtual(clock) = clock {
            return Wall::of(clock.wall_at(timeline.instant(at)));
        }
        // One subtraction of integers in the usual case: a tick within a minute after the
        // anchor.
        match at.checked_sub(self.at) {
            Some(since) if since <= nanos(WALL_CLOCK_RECHECK) => self.wall.after(since),
            Some(_) => {
                *self = Self::new(clock, timeline);
                self.wall_of(at)
            }
            None => self.wall_of(at),
        }
    }

    /// The wall time of `at`, before or after the anchor.
    fn wall_of(&self, at: At) -> Wall {
        match at.checked_sub(self.at) {
            Some(since) => self.wall.after(since),
            None => Wall::of(
                self.wall
                    .time
                    .checked_sub(Duration::from_nanos(self.at - at))
                    .unwrap_or(self.wall.time),
            ),
        }
    }
}

/// What a timer runs on each tick: the function given to
/// [`ServiceDescriptor::timed`](crate::registry::ServiceDescriptor::timed), called through its
/// own type, so a tick's future is not boxed.
pub(crate) trait TickBody: Send + Sync + 'static {
    fn call(&self, cx: RunContext) -> impl Future<Output = Result<(), BoxError>> + Send + 'static;
}

impl<F, Fut> TickBody for F
where
    F: Fn(RunContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output: IntoOutcome> + Send + 'static,
{
    fn call(&self, cx: RunContext) -> impl Future<Output = Result<(), BoxError>> + Send + 'static {
        let run = self(cx);
        async move { run.await.into_outcome() }
    }
}

/// A service that runs its body on a schedule.
pub(crate) struct TimerService<B> {
    body: Arc<B>,
    cx: RunContext,
    plan: Plan,
    clock: Clock,
    log: Option<Arc<TickLog>>,
    /// The number of the next tick, kept across restarts.
    next_number: AtomicU64,
    /// Where ticks and their runs are recorded for the host's status; `None` in the benchmark
    /// that measures what that costs ([`crate::status::bypass`]).
    status: Option<Arc<crate::status::ServiceStatus>>,
    /// Whether the next due time is shown in the service's activity: always, but in that
    /// benchmark.
    record: bool,
    /// Whether ticks run in spans (when a subscriber would see them): always, but in the
    /// benchmark that measures what that costs ([`crate::telemetry::bypass_spans`]).
    spans: bool,
}

impl<B: TickBody> TimerService<B> {
    /// Builds the timer, with the virtual wall clock and tick log the
    /// [`testing`](crate::testing) host registers, when there are.
    pub(crate) async fn new(body: Arc<B>, cx: RunContext, plan: Plan) -> Self {
        let container = Arc::clone(cx.container());
        let clock = if container.provides(TypeId::of::<VirtualWallClock>()) {
            container
                .resolve::<VirtualWallClock>(&cx)
                .await
                .map_or(Clock::System, Clock::Virtual)
        } else {
            Clock::System
        };
        let log = if container.provides(TypeId::of::<TickLog>()) {
            container.resolve::<TickLog>(&cx).await.ok()
        } else {
            None
        };
        let record = crate::status::record_wanted();
        let status = cx.status().filter(|_| record).cloned();
        if let Some(status) = &status {
            status.timer(plan.describe());
        }
        Self {
            body,
            cx,
            plan,
            clock,
            log,
            next_number: AtomicU64::new(1),
            status,
            record,
            spans: crate::telemetry::spans_wanted(),
        }
    }

    /// Takes the tick due now from the schedule, and records its start. Not inlined in the
    /// timer's loop: a tick borrowed there would keep room for a copy in the timer's future
    /// across the run, though it was moved into the run.
    fn start_tick(
        &self,
        cursor: &mut Cursor<'_>,
        now: Reading,
        offset: u64,
        wall: &mut WallAnchor,
    ) -> Starting {
        let due = cursor.take(now, self.plan.missed);
        let starting = self.tick(cursor.timeline, due, offset, now, wall);
        self.next_number
            .store(cursor.next_number, Ordering::Relaxed);
        self.record_tick(&starting, cursor);
        starting
    }

    /// Records a tick as it starts in the host's status: its lateness, the ticks it stands
    /// for, and when the next one is due.
    fn record_tick(&self, starting: &Starting, cursor: &mut Cursor<'_>) {
        let Some(timer) = self
            .status
            .as_ref()
            .and_then(|status| status.timer_status())
        else {
            return;
        };
        let next = cursor
            .due()
            .map(|due| due.saturating_sub(starting.scheduled));
        timer.tick_started(
            starting.wall_nanos,
            starting.started.saturating_sub(starting.scheduled),
            starting.tick.missed,
            std::mem::take(&mut cursor.skipped),
            next,
        );
    }

    /// The tick's span; none built when no subscriber would see it (one relaxed load).
    fn span(&self, number: u64) -> RunSpan {
        if self.spans && crate::telemetry::runs_traced() {
            RunSpan::tick(self.cx.info().name(), number)
        } else {
            RunSpan::none()
        }
    }

    /// The next tick's random delay, in nanoseconds.
    fn jitter(&self) -> u64 {
        if self.plan.jitter.is_zero() {
            return 0;
        }
        fastrand::u64(0..=nanos(self.plan.jitter))
    }

    fn tick(
        &self,
        timeline: Timeline,
        due: Due,
        offset: u64,
        now: Reading,
        wall: &mut WallAnchor,
    ) -> Starting {
        let scheduled = due.at.saturating_add(offset);
        // A cron fire time is a wall time already; converting it to tokio's clock and back would
        // add the error of two clock readings (the first tick once read a microsecond early).
        let scheduled_at = due.wall.map_or_else(
            || wall.wall_at(&self.clock, timeline, scheduled),
            |fire| Wall::of(fire + Duration::from_nanos(offset)),
        );
        Starting {
            tick: Tick {
                number: due.number,
                scheduled: timeline.instant(scheduled),
                scheduled_at: scheduled_at.time,
                started: now.instant,
                missed: due.missed,
            },
            scheduled,
            started: now.at,
            wall_nanos: scheduled_at.unix_nanos,
        }
    }

    /// Handles a failed tick as the service's policy says: under `ignore` (the timers' default)
    /// log it and go on; otherwise end the timer with the error, for the supervisor to stop the
    /// host or restart the timer.
    fn failed(&self, number: u64, failure: Failure) -> Result<(), BoxError> {
        if let Some(status) = &self.status {
            status.record_error(&format_args!("tick {number} failed: {failure}"));
        }
        if matches!(self.cx.info().policy(), FailurePolicy::Ignore) {
            tracing::error!(
                tick = number,
                error = %failure,
                "tick failed; the timer keeps going (policy: ignore)"
            );
            Ok(())
        } else {
            Err(Box::new(TickFailed { number, failure }))
        }
    }

    /// Ticks one at a time: `overlap = "skip"` or `"coalesce"`. Each tick runs on this task.
    async fn run_in_turn(&self, stop: &CancellationToken) -> Result<(), BoxError> {
        let mut stop = StopSignal::new(stop);
        let mut cursor = Cursor::start(&self.plan, &self.clock, &self.next_number);
        // Neither the timeline nor the activity is kept in a local: each would be one more
        // field of the timer's future, held by every resting timer.
        let due_base = self
            .cx
            .info()
            .activity()
            .since_epoch(cursor.timeline.origin());
        let mut wall = WallAnchor::new(&self.clock, cursor.timeline);
        let mut offset = self.jitter();
        let mut sleep = std::pin::pin!(tokio::time::sleep_until(cursor.timeline.origin()));
        // When the previous tick ended, if that was read.
        let mut ended = None;
        loop {
            let Some(due) = cursor.due() else {
                self.cx.info().activity().set_next_due(None);
                return Ok(());
            };
            let target = due.saturating_add(offset);
            if self.record {
                self.cx
                    .info()
                    .activity()
                    .set_next_due(Some(due_base.saturating_add(signed(target))));
            }
            if later_than_now(cursor.timeline, target, ended.take()) {
                sleep.as_mut().reset(cursor.wake_at(target));
                tokio::select! {
                    biased;
                    () = stop.stopped() => return Ok(()),
                    () = &mut sleep => {}
                }
            } else {
                // Due already (the first tick, a coalesced or missed one): no timer to wait for,
                // whose resolution would make it up to a millisecond late; yield only if this
                // task has used up its share of the scheduler.
                tokio::task::consume_budget().await;
                if stop.is_stopped() {
                    return Ok(());
                }
            }
            let now = cursor.timeline.read();
            if !cursor.ready(now, target) {
                continue;
            }
            let starting = self.start_tick(&mut cursor, now, offset, &mut wall);
            offset = self.jitter();
            let span = self.span(starting.tick.number);
            let (number, started) = (starting.tick.number, now.at);
            // Boxed for the tick's run only: the timer between ticks then holds its schedule
            // and its sleep, not room for a run (half its future), and successive runs on a
            // worker thread reuse one recently freed, cache-warm allocation.
            let (result, run_ended) = Box::pin(in_run(
                span,
                run_tick(
                    &*self.body,
                    &self.cx,
                    cursor.timeline,
                    starting,
                    self.log.as_deref(),
                    self.status.as_deref(),
                ),
            ))
            .await;
            let end = run_ended.unwrap_or_else(|| cursor.timeline.read().at);
            ended = Some(end);
            cursor.after_run(started, end, self.plan.overlap);
            if let Err(failure) = result {
                self.failed(number, failure)?;
            }
        }
    }

    /// Ticks side by side, up to the limit: `overlap = "concurrent"`. Each tick runs on a task
    /// of its own; at stop, the running ones are awaited.
    async fn run_side_by_side(&self, stop: &CancellationToken) -> Result<(), BoxError> {
        let mut stop = StopSignal::new(stop);
        let mut cursor = Cursor::start(&self.plan, &self.clock, &self.next_number);
        let due_base = self
            .cx
            .info()
            .activity()
            .since_epoch(cursor.timeline.origin());
        let mut wall = WallAnchor::new(&self.clock, cursor.timeline);
        let mut offset = self.jitter();
        let mut sleep = std::pin::pin!(tokio::time::sleep_until(cursor.timeline.origin()));
        let mut running: JoinSet<(u64, Result<(), Failure>)> = JoinSet::new();
        let mut escalated = None;
        // When the last tick started, filling the last free slot.
        let mut full_since = cursor.timeline.read().at;
        while let Some(due) = cursor.due() {
            let full = running.len() >= self.plan.max_concurrent;
            let target = due.saturating_add(offset);
            if self.record {
                self.cx
                    .info()
                    .activity()
                    .set_next_due(Some(due_base.saturating_add(signed(target))));
            }
            if !full {
                sleep.as_mut().reset(cursor.wake_at(target));
            }
            tokio::select! {
                biased;
                () = stop.stopped() => break,
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    if let Err(error) = self.joined(joined) {
                        escalated = Some(error);
                        break;
                    }
                    if full {
                        // The ticks that came due while every slot was taken coalesce.
                        cursor.after_run(full_since, cursor.timeline.read().at, Overlap::Coalesce);
                    }
                    continue;
                }
                () = &mut sleep, if !full => {}
            }
            if stop.is_stopped() {
                break;
            }
            let now = cursor.timeline.read();
            if !cursor.ready(now, target) {
                continue;
            }
            let starting = self.start_tick(&mut cursor, now, offset, &mut wall);
            offset = self.jitter();
            let (body, cx, log) = (Arc::clone(&self.body), self.cx.clone(), self.log.clone());
            let status = self.status.clone();
            full_since = now.at;
            let span = self.span(starting.tick.number);
            let timeline = cursor.timeline;
            running.spawn(in_run(span, async move {
                let number = starting.tick.number;
                let (result, _) = run_tick(
                    &*body,
                    &cx,
                    timeline,
                    starting,
                    log.as_deref(),
                    status.as_deref(),
                )
                .await;
                (number, result)
            }));
        }
        while let Some(joined) = running.join_next().await {
            if let Err(error) = self.joined(joined) {
                escalated.get_or_insert(error);
            }
        }
        escalated.map_or(Ok(()), Err)
    }

    fn joined(
        &self,
        joined: Result<(u64, Result<(), Failure>), tokio::task::JoinError>,
    ) -> Result<(), BoxError> {
        match joined {
            Ok((_, Ok(()))) => Ok(()),
            Ok((number, Err(failure))) => self.failed(number, failure),
            // Ticks catch their panics, and the set is never aborted while it is joined.
            Err(error) => self.failed(0, Failure::Panic(error.to_string())),
        }
    }
}

impl<B: TickBody> HostedService for TimerService<B> {
    const __DEFAULT_HOOKS: bool = true;

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        let finished = match self.plan.overlap {
            Overlap::Concurrent => self.run_side_by_side(&stop).await,
            Overlap::Skip | Overlap::Coalesce => self.run_in_turn(&stop).await,
        };
        if finished.is_ok() && !stop.is_cancelled() {
            tracing::warn!("the cron schedule has no fire time left; the timer ends");
        }
        finished
    }
}

/// A tick about to run, with its instants on the timer's timeline.
struct Starting {
    tick: Tick,
    /// When it was due, jitter included.
    scheduled: At,
    /// When it starts.
    started: At,
    /// When it was due on the wall clock, in nanoseconds since the Unix epoch.
    wall_nanos: u64,
}

/// One tick: a fresh run (and scope) with the tick attached, the body called with its panics
/// caught, the scope closed with the outcome, the run recorded in the status from the tick's
/// start to its end. Returns the outcome and the end, when it was read (for the status or the
/// tick log): the schedule's next step reads the same instant.
async fn run_tick<B: TickBody>(
    body: &B,
    base: &RunContext,
    timeline: Timeline,
    starting: Starting,
    log: Option<&TickLog>,
    status: Option<&crate::status::ServiceStatus>,
) -> (Result<(), Failure>, Option<At>) {
    let (cx, end) = base.begin_unrecorded_run();
    let entry = log.map(|log| log.started(base.info().name(), starting.tick));
    let result = call_caught_unbounded(|| body.call(cx.with_extension(starting.tick))).await;
    let exit = ScopeExit::of(&result);
    // Recorded below with the instants the timer reads anyway.
    let disposed = end.finish(exit, None).await;
    let result = result.and(disposed);
    let ended = (status.is_some() || log.is_some()).then(|| timeline.read());
    if let (Some(status), Some(ended)) = (status, ended) {
        status.run_took(ended.at.saturating_sub(starting.started), result.is_ok());
    }
    if let (Some(log), Some(entry), Some(ended)) = (log, entry, ended) {
        log.finished(entry, ended.instant, result.is_ok());
    }
    (result, ended.map(|ended| ended.at))
}

/// Whether `target` is still to come. When the previous tick ended more than a millisecond
/// before `target`, the clock is not read again: `target` is to come unless this task was held
/// up for longer than that since, and then a sleep until `target` wakes on the timer's next
/// millisecond, which the hold-up has mostly spent already. Otherwise the clock decides, so a
/// tick due right away never waits for the timer's resolution.
fn later_than_now(timeline: Timeline, target: At, ended: Option<At>) -> bool {
    match ended {
        Some(ended) if target > ended.saturating_add(MILLISECOND) => true,
        _ => target > timeline.read().at,
    }
}

const MILLISECOND: u64 = 1_000_000;

/// A point of the timeline as a signed count, as the service's activity adds it.
fn signed(at: At) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX)
}

/// A failed tick, as the supervisor sees it under the `stop` and `restart` policies.
#[derive(Debug, thiserror::Error)]
#[error("tick {number} failed: {failure}")]
struct TickFailed {
    number: u64,
    failure: Failure,
}

/// The tick to run now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Due {
    number: u64,
    /// When it was due, before jitter.
    at: At,
    /// For a cron schedule, the fire time on the wall clock, before jitter.
    wall: Option<SystemTime>,
    missed: u64,
}

/// Where the schedule stands: the next due tick, and the arithmetic that finds the ones after.
struct Cursor<'a> {
    kind: CursorKind<'a>,
    /// Where the schedule's instants are counted from: when the timer started.
    timeline: Timeline,
    /// The number the next tick due will have.
    next_number: u64,
    /// Ticks coalesced into the next one.
    coalesced: u64,
    /// Running missed ticks one after the other (`missed = "burst"`), already reported.
    bursting: bool,
    /// Ticks dropped under `overlap = "skip"` and not yet recorded in the status.
    skipped: u64,
}

enum CursorKind<'a> {
    Rate(Grid),
    Delay {
        due: At,
        /// In nanoseconds.
        delay: u64,
    },
    Cron {
        schedule: &'a CronSchedule,
        clock: &'a Clock,
        /// `None` once the schedule has no fire time left.
        due: Option<(SystemTime, At)>,
    },
}

impl<'a> Cursor<'a> {
    fn start(plan: &'a Plan, clock: &'a Clock, next_number: &AtomicU64) -> Self {
        let timeline = Timeline::starting_now();
        let first = nanos(plan.initial_delay);
        let kind = match &plan.cadence {
            Cadence::Rate(period) => CursorKind::Rate(Grid::new(first, nanos(*period))),
            Cadence::Delay(delay) => CursorKind::Delay {
                due: first,
                delay: nanos(*delay),
            },
            Cadence::Cron(schedule) => CursorKind::Cron {
                schedule,
                clock,
                due: fire_after(
                    schedule,
                    clock,
                    timeline,
                    clock.wall_at(timeline.instant(first)),
                ),
            },
        };
        Self {
            kind,
            timeline,
            next_number: next_number.load(Ordering::Relaxed),
            coalesced: 0,
            bursting: false,
            skipped: 0,
        }
    }

    /// When the next tick is due, before jitter; `None` when no tick will ever be.
    fn due(&self) -> Option<At> {
        match &self.kind {
            CursorKind::Rate(grid) => Some(grid.due),
            CursorKind::Delay { due, .. } => Some(*due),
            CursorKind::Cron { due, .. } => due.map(|(_, instant)| instant),
        }
    }

    /// When to wake up to start a tick due at `target`: under the system clock a cron timer
    /// wakes up now and then to follow the wall clock.
    fn wake_at(&self, target: At) -> Instant {
        let target = self.timeline.instant(target);
        match &self.kind {
            CursorKind::Cron {
                clock: Clock::System,
                ..
            } => target.min(Instant::now() + WALL_CLOCK_RECHECK),
            _ => target,
        }
    }

    /// Whether the tick due at `target` may start at `now`.
    fn ready(&mut self, now: Reading, target: At) -> bool {
        match &mut self.kind {
            CursorKind::Cron {
                clock: clock @ Clock::System,
                due: Some((wall, at)),
                ..
            } => {
                if clock.wall_at(now.instant) >= *wall {
                    return true;
                }
                // The wall clock moved against tokio's: aim again.
                *at = self.timeline.at(clock.instant_at(*wall));
                false
            }
            _ => now.at >= target,
        }
    }

    /// Takes the tick to run now. When the timer woke up so late that several ticks are due, the
    /// missed-tick policy says which run (a cron timer always runs the latest).
    fn take(&mut self, now: Reading, missed: Missed) -> Due {
        let coalesced = std::mem::take(&mut self.coalesced);
        let first = self.next_number;
        let bursting = &mut self.bursting;
        let timeline = self.timeline;
        let due = match &mut self.kind {
            CursorKind::Rate(grid) => {
                let passed = slots_through(grid.due, grid.period, now.at).max(1);
                let (ran, at) = match missed {
                    _ if passed == 1 => (0, grid.due),
                    Missed::Burst => (0, grid.due),
                    Missed::Skip | Missed::Delay => (passed - 1, grid.later(passed - 1)),
                };
                if passed > 1 && !*bursting {
                    tracing::warn!(
                        late = ?Duration::from_nanos(now.at.saturating_sub(grid.due)),
                        missed = passed - 1,
                        "the timer woke up late; {} missed ticks (missed: {missed})",
                        passed - 1
                    );
                }
                *bursting = passed > 1 && missed == Missed::Burst;
                if passed > 1 && missed == Missed::Delay {
                    grid.restart(now.at);
                } else {
                    grid.advance(ran + 1);
                }
                Due {
                    number: first + ran,
                    at,
                    wall: None,
                    missed: ran + coalesced,
                }
            }
            CursorKind::Delay { due, .. } => Due {
                number: first,
                at: *due,
                wall: None,
                missed: coalesced,
            },
            CursorKind::Cron {
                schedule,
                clock,
                due,
            } => {
                let (mut wall, mut at) = due.expect("`take` follows a due tick");
                let wall_now = clock.wall_at(now.instant);
                let mut ran = 0;
                while let Some(next) = fire_after(schedule, clock, timeline, wall)
                    && next.0 <= wall_now
                    && ran < MAX_COUNTED_FIRES
                {
                    (wall, at) = next;
                    ran += 1;
                }
                if ran > 0 {
                    tracing::warn!(
                        missed = ran,
                        "the timer woke up late; {ran} missed fire times"
                    );
                }
                *due = fire_after(schedule, clock, timeline, wall);
                Due {
                    number: first + ran,
                    at,
                    wall: Some(wall),
                    missed: ran + coalesced,
                }
            }
        };
        self.next_number = due.number + 1;
        due
    }

    /// Accounts for the ticks that came due while a tick ran (from `started` until it ended at
    /// `end`): under `overlap = "skip"` those due before the end are dropped (one due at the very
    /// instant it ended runs); under `"coalesce"` those due up to the end fold into one, which
    /// runs at once. Ticks already due when it started (a burst catching up) are left to run.
    fn after_run(&mut self, started: At, end: At, overlap: Overlap) {
        let inclusive = overlap != Overlap::Skip;
        let timeline = self.timeline;
        let overran = match &mut self.kind {
            CursorKind::Rate(grid) => {
                if slots_through(grid.due, grid.period, started) > 0 {
                    return;
                }
                if inclusive {
                    slots_through(grid.due, grid.period, end)
                } else {
                    slots_before(grid.due, grid.period, end)
                }
            }
            CursorKind::Delay { due, delay } => {
                *due = end.saturating_add(*delay);
                return;
            }
            CursorKind::Cron {
                schedule,
                clock,
                due,
            } => {
                let mut count = 0;
                let mut next = *due;
                while let Some((wall, at)) = next
                    && (at < end || (inclusive && at == end))
                    && count < MAX_COUNTED_FIRES
                {
                    count += 1;
                    next = fire_after(schedule, clock, timeline, wall);
                }
                count
            }
        };
        let dropped = if inclusive {
            overran.saturating_sub(1)
        } else {
            overran
        };
        if dropped == 0 {
            return;
        }
        if overlap == Overlap::Skip {
            tracing::debug!(
                skipped = dropped,
                "the tick ran past {dropped} due ticks; skipped (overlap: skip)"
            );
            self.skipped += dropped;
        } else {
            self.coalesced += dropped;
        }
        self.skip(dropped);
    }

    /// Passes over `count` due ticks without running them.
    fn skip(&mut self, count: u64) {
        self.next_number += count;
        let timeline = self.timeline;
        match &mut self.kind {
            CursorKind::Rate(grid) => grid.advance(count),
            CursorKind::Delay { .. } => {}
            CursorKind::Cron {
                schedule,
                clock,
                due,
            } => {
                for _ in 0..count {
                    let Some((wall, _)) = *due else { break };
                    *due = fire_after(schedule, clock, timeline, wall);
                }
            }
        }
    }
}

/// The fire time after `wall`, and where it falls on the timeline.
fn fire_after(
    schedule: &CronSchedule,
    clock: &Clock,
    timeline: Timeline,
    wall: SystemTime,
) -> Option<(SystemTime, At)> {
    let next = schedule.next_after(wall)?;
    Some((next, timeline.at(clock.instant_at(next))))
}

/// A fixed-rate schedule: tick `index` is due at `anchor + index × period`, computed from the
/// anchor so that no rounding accumulates, once per step of `index`, and read from `due` the rest
/// of the time. In nanoseconds of the timeline.
struct Grid {
    anchor: At,
    /// At least 1.
    period: u64,
    index: u64,
    /// When tick `index` is due: always `slot(anchor, period, index)`.
    due: At,
}

impl Grid {
    fn new(anchor: At, period: u64) -> Self {
        Self {
            anchor,
            period: period.max(1),
            index: 0,
            due: anchor,
        }
    }

    /// When the tick `count` after the next one is due.
    fn later(&self, count: u64) -> At {
        slot(self.anchor, self.period, self.index.saturating_add(count))
    }

    /// Moves `count` ticks on.
    fn advance(&mut self, count: u64) {
        self.index = self.index.saturating_add(count);
        self.due = slot(self.anchor, self.period, self.index);
    }

    /// Starts the grid again from `now` (`missed = "delay"`): the next tick one period later.
    fn restart(&mut self, now: At) {
        self.anchor = now;
        self.index = 1;
        self.due = slot(now, self.period, 1);
    }
}

/// When tick `index` is due: `anchor + index × period`.
fn slot(anchor: At, period: u64, index: u64) -> At {
    anchor.saturating_add(period.saturating_mul(index))
}

/// How many ticks, the first due at `first` and the others a `period` apart, are due at or
/// before `now`.
fn slots_through(first: At, period: u64, now: At) -> u64 {
    match now.checked_sub(first) {
        None => 0,
        // The usual case, without a division.
        Some(since) if since < period => 1,
        Some(since) => since / period + 1,
    }
}

/// How many ticks, the first due at `first` and the others a `period` apart, were due strictly
/// before `end`.
fn slots_before(first: At, period: u64, end: At) -> u64 {
    match end.checked_sub(first) {
        None | Some(0) => 0,
        Some(since) if since <= period => 1,
        Some(since) => since.div_ceil(period),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn slots_are_counted_on_the_grid() {
        let anchor: At = 7_000;
        let period = 5 * SECOND;
        let at = |tenths: u64| anchor + tenths * SECOND / 10;
        let first = |index| slot(anchor, period, index);
        assert_eq!(slots_through(first(0), period, at(0)), 1);
        assert_eq!(slots_through(first(0), period, at(49)), 1);
        assert_eq!(slots_through(first(0), period, at(50)), 2);
        assert_eq!(slots_through(first(0), period, at(151)), 4);
        assert_eq!(slots_through(first(2), period, at(90)), 0);
        assert_eq!(slots_before(first(1), period, at(50)), 0);
        assert_eq!(slots_before(first(1), period, at(51)), 1);
        assert_eq!(slots_before(first(1), period, at(100)), 1);
        assert_eq!(slots_before(first(1), period, at(150)), 2);
        assert_eq!(slots_before(first(1), period, at(151)), 3);
    }

    #[test]
    fn slots_do_not_drift() {
        let anchor: At = 7_000;
        let period = nanos(Duration::from_millis(100) / 3);
        assert_eq!(
            slot(anchor, period, 3_000_000) - anchor,
            nanos(Duration::from_millis(99_999_999))
        );
        // Stepped one tick at a time, the grid lands where the product puts it.
        let mut grid = Grid::new(anchor, period);
        for _ in 0..3_000_000 {
            grid.advance(1);
        }
        assert_eq!(grid.due - anchor, nanos(Duration::from_millis(99_999_999)));
        assert_eq!(grid.later(3) - anchor, 100_000_098_999_999);
    }

    #[test]
    fn a_schedule_beyond_the_timeline_saturates() {
        let grid = Grid::new(SECOND, u64::MAX / 2);
        assert_eq!(grid.later(3), u64::MAX);
        assert_eq!(slots_through(grid.due, grid.period, u64::MAX), 2);
    }
}
