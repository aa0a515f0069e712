//! What one service records: [`ServiceStatus`], its [`ServiceState`], a timer's [`TimerStatus`].

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::snapshot::{LastError, QueueSnapshot, ServiceSnapshot, TimerSnapshot};
use super::{DeadLetters, QueueProbe};
use crate::service::ServiceInfo;
use crate::util::nanos;

/// Where a service is in its life, as the host last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceState {
    /// Built, not started yet.
    Pending,
    /// Its `start` is running.
    Starting,
    /// Started; its body (if it has one) runs.
    Running,
    /// Its body failed; waiting out the backoff before running it again (policy `restart`).
    Restarting,
    /// Its body returned on its own; the host keeps running.
    Completed,
    /// Its body failed and is not run again (policy `ignore`, or the failure stopped the host).
    Failed,
    /// Told to stop; its body and `stop` are finishing.
    Stopping,
    /// Stopped.
    Stopped,
}

impl ServiceState {
    const ALL: [Self; 8] = [
        Self::Pending,
        Self::Starting,
        Self::Running,
        Self::Restarting,
        Self::Completed,
        Self::Failed,
        Self::Stopping,
        Self::Stopped,
    ];

    /// The state's name, as the dashboard and the `state` label of the metrics write it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }

    /// Every state, in life order.
    #[must_use]
    pub fn all() -> &'static [Self] {
        &Self::ALL
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wall time as [`TimerStatus::tick_started`] takes it: nanoseconds since the Unix epoch, at
/// least 1 (0 stands for "never"; a time before 1970 shows as the epoch).
pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |since| nanos(since).max(1))
}

/// Nanoseconds since the Unix epoch back to a time; 0 stands for "never".
fn from_unix_nanos(nanos: u64) -> Option<SystemTime> {
    (nanos > 0).then(|| SystemTime::UNIX_EPOCH.checked_add(Duration::from_nanos(nanos)))?
}

/// The live record of one service. The host makes one per service; runs record into it where
/// they end.
pub struct ServiceStatus {
    /// The service's facts, shared with the host: its name is not copied.
    info: ServiceInfo,
    state: AtomicU8,
    runs: AtomicU64,
    failures: AtomicU64,
    restarts: AtomicU64,
    run_nanos: AtomicU64,
    last_run_nanos: AtomicU64,
    /// Written on the failure path only; boxed, so a service that never fails pays 16 bytes for
    /// it, not 48.
    last_error: Mutex<Option<Box<LastError>>>,
    /// What only a timer or only a queue records, set when the service says which it is; boxed,
    /// so a service of neither kind pays a pointer for it.
    kind: OnceLock<Box<KindRecords>>,
    /// `None` when the benchmarks leave the metrics out ([`super::bypass`]).
    #[cfg(feature = "metrics")]
    metrics: Option<super::metrics::ServiceMetrics>,
}

impl fmt::Debug for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceStatus")
            .field("name", &self.info.name())
            .field("state", &self.state())
            .field("runs", &self.runs.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ServiceStatus {
    pub(crate) fn new(info: &ServiceInfo) -> Self {
        Self {
            info: info.clone(),
            state: AtomicU8::new(0),
            runs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            run_nanos: AtomicU64::new(0),
            last_run_nanos: AtomicU64::new(0),
            last_error: Mutex::new(None),
            kind: OnceLock::new(),
            #[cfg(feature = "metrics")]
            metrics: super::metrics_wanted()
                .then(|| super::metrics::ServiceMetrics::new(info.name())),
        }
    }

    /// The service's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.info.name()
    }

    /// The service this status is of.
    pub(crate) fn info(&self) -> &ServiceInfo {
        &self.info
    }

    /// The service's state.
    #[must_use]
    pub fn state(&self) -> ServiceState {
        ServiceState::ALL
            .get(usize::from(self.state.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(ServiceState::Pending)
    }

    pub(crate) fn set_state(&self, state: ServiceState) {
        let index = ServiceState::ALL
            .iter()
            .position(|known| *known == state)
            .unwrap_or(0);
        self.state
            .store(u8::try_from(index).unwrap_or(0), Ordering::Relaxed);
    }

    /// Records the end of one run (a body, a tick, a queue item's attempt, a request) that began
    /// at `began`.
    pub(crate) fn run_ended(&self, began: Instant, succeeded: bool) {
        self.run_took(nanos(began.elapsed()), succeeded);
    }

    /// Records the end of one run that took `took` nanoseconds, as its runner counted them from
    /// instants it read anyway (a tick's start, and the end its schedule reads): no clock read
    /// of its own.
    pub(crate) fn run_took(&self, took: u64, succeeded: bool) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        if !succeeded {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.run_nanos.fetch_add(took, Ordering::Relaxed);
        self.last_run_nanos.store(took, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.run_ended(took, succeeded);
        }
    }

    /// Records what went wrong last: the failure path only.
    pub(crate) fn record_error(&self, error: &dyn fmt::Display) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(LastError {
            message: error.to_string(),
            at: SystemTime::now(),
        }));
    }

    /// Records how the service's body ended, as its supervisor saw it: completed, or failed with
    /// the error kept as the last one. `stopping` when its stop token had fired.
    pub(crate) fn body_ended(&self, failure: Option<&crate::service::Failure>, stopping: bool) {
        match failure {
            Some(failure) => {
                self.record_error(failure);
                self.set_state(ServiceState::Failed);
            }
            None if stopping => self.set_state(ServiceState::Stopping),
            None => self.set_state(ServiceState::Completed),
        }
    }

    /// Records a restart of the service's body under the `restart` policy.
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.set_state(ServiceState::Restarting);
    }

    /// Makes this service a timer with the given schedule (as `--list` writes it).
    ///
    /// # Panics
    /// If the service was made a queue before: a service is one or the other.
    pub(crate) fn timer(&self, schedule: String) -> &TimerStatus {
        let records = self.kind.get_or_init(|| {
            #[cfg(feature = "metrics")]
            let metrics = super::metrics_wanted()
                .then(|| super::metrics::TimerMetrics::new(self.info.name()));
            Box::new(KindRecords::Timer(TimerStatus {
                schedule,
                ticks: AtomicU64::new(0),
                missed: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                last_tick_nanos: AtomicU64::new(0),
                next_tick_nanos: AtomicU64::new(0),
                last_lateness_nanos: AtomicU64::new(0),
                max_lateness_nanos: AtomicU64::new(0),
                #[cfg(feature = "metrics")]
                metrics,
            }))
        });
        match &**records {
            KindRecords::Timer(timer) => timer,
            KindRecords::Queue(_) => unreachable!("a queue's status made a timer's"),
        }
    }

    pub(crate) fn timer_status(&self) -> Option<&TimerStatus> {
        match &**self.kind.get()? {
            KindRecords::Timer(timer) => Some(timer),
            KindRecords::Queue(_) => None,
        }
    }

    /// # Panics
    /// If the service was made a timer before: a service is one or the other.
    fn queue_records(&self) -> &QueueRecords {
        let records = self
            .kind
            .get_or_init(|| Box::new(KindRecords::Queue(QueueRecords::default())));
        match &**records {
            KindRecords::Queue(queue) => queue,
            KindRecords::Timer(_) => unreachable!("a timer's status made a queue's"),
        }
    }

    fn queue_status(&self) -> Option<&QueueRecords> {
        match &**self.kind.get()? {
            KindRecords::Queue(queue) => Some(queue),
            KindRecords::Timer(_) => None,
        }
    }

    /// Makes this service a queue, whose counts the probe reads.
    pub(crate) fn queue(&self, probe: QueueProbe) {
        let _ = self.queue_records().probe.set(probe);
    }

    /// The counts only a durable queue has.
    #[cfg_attr(
        not(feature = "postgres"),
        allow(dead_code, reason = "durable queues record here")
    )]
    pub(crate) fn durable(&self) -> &DurableCounts {
        self.queue_records()
            .durable
            .get_or_init(DurableCounts::default)
    }

    /// Lets an operator list, retry and discard this queue's dead letters.
    #[cfg_attr(
        not(feature = "postgres"),
        allow(dead_code, reason = "durable queues keep them")
    )]
    pub(crate) fn keep_dead_letters(&self, store: Arc<dyn DeadLetters>) {
        let _ = self.queue_records().dead_letters.set(store);
    }

    pub(crate) fn dead_letters(&self) -> Option<Arc<dyn DeadLetters>> {
        self.queue_status()?.dead_letters.get().cloned()
    }

    pub(crate) fn snapshot(&self) -> ServiceSnapshot {
        let runs = self.runs.load(Ordering::Relaxed);
        let last = self.last_run_nanos.load(Ordering::Relaxed);
        let records = self.queue_status();
        let durable = records.and_then(|records| records.durable.get());
        let queue = match (durable, records.and_then(|records| records.probe.get())) {
            (Some(durable), _) => Some(durable.snapshot()),
            (None, Some(probe)) => Some(probe()),
            (None, None) => None,
        };
        // An in-memory queue's attempts are its own counters' (each one succeeds, processed, or
        // fails): its hot path records nothing else.
        let (runs, failures) = match (&queue, durable) {
            (Some(queue), None) => (queue.processed + queue.failed, queue.failed),
            _ => (runs, self.failures.load(Ordering::Relaxed)),
        };
        ServiceSnapshot {
            name: self.info.name().to_owned(),
            kind: self.info.kind(),
            state: self.state(),
            runs,
            failures,
            restarts: self.restarts.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_deref()
                .cloned(),
            last_run_duration: (runs > 0).then(|| Duration::from_nanos(last)),
            total_run_time: Duration::from_nanos(self.run_nanos.load(Ordering::Relaxed)),
            timer: self.timer_status().map(TimerStatus::snapshot),
            queue,
            dead_letters: records.is_some_and(|records| records.dead_letters.get().is_some()),
        }
    }
}

/// What only a timer or only a queue records.
enum KindRecords {
    Timer(TimerStatus),
    Queue(QueueRecords),
}

/// What only a queue has: how its counts are read (an in-memory queue's probe, or a durable
/// queue's own counts) and its dead letters, if it keeps them.
#[derive(Default)]
struct QueueRecords {
    probe: OnceLock<QueueProbe>,
    durable: OnceLock<DurableCounts>,
    dead_letters: OnceLock<Arc<dyn DeadLetters>>,
}

/// What a timer records per tick, beside its service's runs.
pub struct TimerStatus {
    schedule: String,
    ticks: AtomicU64,
    missed: AtomicU64,
    skipped: AtomicU64,
    /// When the last tick was due, in nanoseconds since the Unix epoch; 0 for never.
    last_tick_nanos: AtomicU64,
    /// When the next one is due, the same way.
    next_tick_nanos: AtomicU64,
    last_lateness_nanos: AtomicU64,
    max_lateness_nanos: AtomicU64,
    /// `None` when the benchmarks leave the metrics out ([`super::bypass`]).
    #[cfg(feature = "metrics")]
    metrics: Option<super::metrics::TimerMetrics>,
}

impl fmt::Debug for TimerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerStatus")
            .field("schedule", &self.schedule)
            .field("ticks", &self.ticks.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TimerStatus {
    /// Records a tick as it starts: when it was due on the wall clock, in nanoseconds since the
    /// Unix epoch (see [`unix_nanos`]), how late it started, the due ticks it stands for
    /// (`missed`), the ticks skipped since the last one, and how long after this one's due time
    /// the next one is due (the wall time is derived from this one's, with no second conversion
    /// between the clocks). No clock read, no lock, no 128-bit arithmetic: the times are kept as
    /// nanoseconds, converted back when a snapshot is taken.
    pub(crate) fn tick_started(
        &self,
        scheduled_at: u64,
        late: u64,
        missed: u64,
        skipped: u64,
        next_after: Option<u64>,
    ) {
        let last = scheduled_at.max(1);
        self.ticks.fetch_add(1, Ordering::Relaxed);
        if missed > 0 {
            self.missed.fetch_add(missed, Ordering::Relaxed);
        }
        if skipped > 0 {
            self.skipped.fetch_add(skipped, Ordering::Relaxed);
        }
        self.last_tick_nanos.store(last, Ordering::Relaxed);
        self.next_tick_nanos.store(
            next_after.map_or(0, |after| last.saturating_add(after)),
            Ordering::Relaxed,
        );
        self.last_lateness_nanos.store(late, Ordering::Relaxed);
        // A load first: the maximum rarely moves, and a compare-and-swap loop costs more.
        if late > self.max_lateness_nanos.load(Ordering::Relaxed) {
            self.max_lateness_nanos.fetch_max(late, Ordering::Relaxed);
        }
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.tick_started(late, missed);
        }
    }

    fn snapshot(&self) -> TimerSnapshot {
        TimerSnapshot {
            schedule: self.schedule.clone(),
            ticks: self.ticks.load(Ordering::Relaxed),
            missed: self.missed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            last_tick: from_unix_nanos(self.last_tick_nanos.load(Ordering::Relaxed)),
            next_tick: from_unix_nanos(self.next_tick_nanos.load(Ordering::Relaxed)),
            last_lateness: Duration::from_nanos(self.last_lateness_nanos.load(Ordering::Relaxed)),
            max_lateness: Duration::from_nanos(self.max_lateness_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// A durable queue's counts: the outcomes of the jobs this process ran, the claims it lost,
/// the results the store refused because the claim had passed on, and the store's own counts as
/// the last heartbeat read them.
#[derive(Default)]
pub(crate) struct DurableCounts {
    completed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    lease_lost: AtomicU64,
    stale_rejected: AtomicU64,
    capacity: AtomicU64,
    waiting: AtomicU64,
    running: AtomicU64,
    /// Nanoseconds plus one; 0 when nothing waits.
    oldest_waiting: AtomicU64,
}

#[cfg_attr(
    not(feature = "postgres"),
    allow(dead_code, reason = "durable queues record here")
)]
impl DurableCounts {
    pub(crate) fn completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    /// Claims found gone (the lease ran out and the job was taken back).
    pub(crate) fn lease_lost(&self, count: u64) {
        self.lease_lost.fetch_add(count, Ordering::Relaxed);
    }

    /// The store refused a result because it came from a claim no longer current.
    pub(crate) fn stale_rejected(&self) {
        self.stale_rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_capacity(&self, capacity: u64) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    /// The store's counts, as a heartbeat read them.
    pub(crate) fn store_counts(&self, waiting: u64, running: u64, oldest: Option<Duration>) {
        self.waiting.store(waiting, Ordering::Relaxed);
        self.running.store(running, Ordering::Relaxed);
        self.oldest_waiting.store(
            oldest.map_or(0, |age| nanos(age).saturating_add(1)),
            Ordering::Relaxed,
        );
    }

    fn snapshot(&self) -> QueueSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (retried, dead) = (load(&self.retried), load(&self.dead_lettered));
        QueueSnapshot {
            depth: load(&self.waiting),
            capacity: load(&self.capacity),
            oldest_waiting: match load(&self.oldest_waiting) {
                0 => None,
                nanos => Some(Duration::from_nanos(nanos - 1)),
            },
            in_flight: load(&self.running),
            processed: load(&self.completed),
            failed: retried + dead,
            retried,
            dead_lettered: dead,
            lease_lost: load(&self.lease_lost),
            stale_results_rejected: load(&self.stale_rejected),
            ..QueueSnapshot::default()
        }
    }
}

impl QueueSnapshot {
    /// A snapshot with every count zero, for a probe to fill in.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }
}
