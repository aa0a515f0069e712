//! The host's live status: one record per service (its state, runs, failures, restarts, last
//! error, run time), with a timer's ticks and a queue's counts beside it, and the hubs'
//! connections. The host keeps it; [`HostStatus`] is injectable (`Arc<HostStatus>`) and its
//! [`snapshot`](HostStatus::snapshot) is what the metrics and the dashboard read.
//!
//! Recording costs a few relaxed atomic operations per run and no lock or allocation: a run's
//! end is recorded where the run's scope closes (one call for every kind of run), a tick and its
//! run where the timer takes them, with the instants it read anyway (no clock read of its own),
//! a queue's counts are the queue's own, read when a snapshot is taken. The status is always
//! kept, since it can be read at any time; what it costs per item and per tick beside the other
//! hooks is in `hosted::docs::metrics`.
//!
//! | where | what |
//! |---|---|
//! | `service.rs` | [`ServiceStatus`], what one service records, and its [`ServiceState`] |
//! | `snapshot.rs` | the plain values a [`StatusSnapshot`] holds |
//! | `metrics.rs` | the same values through the `metrics` facade (feature `metrics`) |
//!
//! ```
//! use std::sync::Arc;
//! use hosted::status::HostStatus;
//!
//! #[hosted::hosted_service]
//! async fn reporter(status: Arc<HostStatus>, stop: hosted::CancellationToken) {
//!     for service in status.snapshot().services {
//!         println!("{}: {} ({} runs, {} failures)", service.name, service.state, service.runs, service.failures);
//!     }
//!     stop.cancelled().await;
//! }
//! ```

#[cfg(feature = "metrics")]
pub mod metrics;
mod service;
mod snapshot;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

pub(crate) use self::service::unix_nanos;
pub use self::service::{ServiceState, ServiceStatus, TimerStatus};
pub use self::snapshot::{
    DeadJob, HubSnapshot, LastError, QueueSnapshot, ServiceSnapshot, StatusSnapshot, TimerSnapshot,
};

use crate::service::ServiceInfo;

/// The hooks of the queues' and timers' hot paths that a benchmark left out: see [`bypass`].
static BYPASSED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
const BYPASS_METRICS: u8 = 1;
const BYPASS_RECORD: u8 = 2;

/// Leaves out, for the services, queues and timers built from now on, the `metrics` calls
/// (`metrics`: no histogram handle taken, nothing recorded) and the status's per-tick and per-run
/// record (`record`: no tick, run or next due time recorded). Not for applications: the
/// benchmarks compare a host with and without each, in one process, to show what each costs when
/// nothing listens.
pub(crate) fn bypass(metrics: bool, record: bool) {
    let bits = if metrics { BYPASS_METRICS } else { 0 } | if record { BYPASS_RECORD } else { 0 };
    BYPASSED.store(bits, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a service records its runs' durations and a timer its lateness through the `metrics`
/// facade: read once, when it is built.
#[cfg(feature = "metrics")]
fn metrics_wanted() -> bool {
    BYPASSED.load(std::sync::atomic::Ordering::Relaxed) & BYPASS_METRICS == 0
}

/// Whether a timer records its ticks and runs in the status: read once, when it is built.
pub(crate) fn record_wanted() -> bool {
    BYPASSED.load(std::sync::atomic::Ordering::Relaxed) & BYPASS_RECORD == 0
}

/// The future a [`DeadLetters`] operation returns.
pub type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, crate::service::BoxError>> + Send + 'a>>;

/// Reads a queue's counts when a snapshot is taken; the queue keeps them itself.
pub type QueueProbe = Box<dyn Fn() -> QueueSnapshot + Send + Sync>;

/// Reads a hub's counts when a snapshot is taken.
pub type HubProbe = Box<dyn Fn() -> HubSnapshot + Send + Sync>;

/// What an operator may do with a queue's dead letters, for a queue that keeps them (a durable
/// queue): list them, run one again, or discard it.
pub trait DeadLetters: Send + Sync + 'static {
    /// The most recent dead jobs, at most `limit`.
    fn list(&self, limit: usize) -> StoreFuture<'_, Vec<DeadJob>>;
    /// Makes a dead job available again, with a fresh attempt count. `Ok(false)` when no dead
    /// job has that id.
    fn retry(&self, id: i64) -> StoreFuture<'_, bool>;
    /// Deletes a dead job. `Ok(false)` when no dead job has that id.
    fn discard(&self, id: i64) -> StoreFuture<'_, bool>;
}

/// The live status of every service of one host, and of its hubs. Injectable
/// (`Arc<HostStatus>`); see the [module docs](self).
pub struct HostStatus {
    began: Instant,
    services: RwLock<Vec<Arc<ServiceStatus>>>,
    hubs: RwLock<Vec<HubProbe>>,
    /// Per queue, when the items waiting were first seen accepted: how the oldest one's age is
    /// told without a clock read per item.
    ages: Mutex<HashMap<String, AgeTrack>>,
}

impl fmt::Debug for HostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostStatus")
            .field(
                "services",
                &read(&self.services)
                    .iter()
                    .map(|service| service.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for HostStatus {
    fn default() -> Self {
        Self::new()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

impl HostStatus {
    /// An empty status; the host makes one and adds each service to it.
    #[must_use]
    pub fn new() -> Self {
        Self {
            began: Instant::now(),
            services: RwLock::new(Vec::new()),
            hubs: RwLock::new(Vec::new()),
            ages: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a service; what it records from then on shows in every snapshot.
    pub(crate) fn add(&self, info: &ServiceInfo) -> Arc<ServiceStatus> {
        let status = Arc::new(ServiceStatus::new(info));
        self.services
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&status));
        status
    }

    /// The status record of one service, by name.
    #[must_use]
    pub fn service(&self, name: &str) -> Option<Arc<ServiceStatus>> {
        read(&self.services)
            .iter()
            .find(|service| service.name() == name)
            .cloned()
    }

    /// Adds a hub, read at each snapshot.
    pub fn add_hub(&self, probe: HubProbe) {
        self.hubs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(probe);
    }

    /// Everything, as plain values, at this instant.
    #[must_use]
    pub fn snapshot(&self) -> StatusSnapshot {
        let now = Instant::now();
        let services: Vec<ServiceSnapshot> = read(&self.services)
            .iter()
            .map(|service| service.snapshot())
            .collect();
        let mut ages = self.ages.lock().unwrap_or_else(PoisonError::into_inner);
        let services = services
            .into_iter()
            .map(|mut service| {
                if let Some(queue) = &mut service.queue {
                    let track = ages.entry(service.name.clone()).or_default();
                    queue.oldest_waiting = track.observe(now, queue.accepted, queue.depth);
                }
                service
            })
            .collect();
        drop(ages);
        StatusSnapshot {
            taken_at: SystemTime::now(),
            uptime: now.saturating_duration_since(self.began),
            services,
            hubs: read(&self.hubs).iter().map(|probe| probe()).collect(),
        }
    }

    /// Publishes a snapshot through the `metrics` facade every `period` until `stop` fires
    /// (feature `metrics`): for a recorder that does not ask for values itself. The Prometheus
    /// exporter needs none of this; it publishes at each scrape.
    #[cfg(feature = "metrics")]
    pub async fn publish_every(&self, period: Duration, stop: tokio_util::sync::CancellationToken) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = interval.tick() => metrics::publish(&self.snapshot()),
            }
        }
    }

    /// The dead letters of a queue that keeps them (a durable queue), by the queue's name.
    #[must_use]
    pub fn dead_letters(&self, queue: &str) -> Option<Arc<dyn DeadLetters>> {
        self.service(queue)?.dead_letters()
    }
}

/// Observations of a queue's accepted count over time. The oldest item waiting is the
/// `accepted - depth + 1`-th accepted; it was accepted before the first observation whose count
/// had reached that number, so its age is told to within the time between snapshots (and reads as
/// zero the first time a queue is seen).
#[derive(Debug, Default)]
struct AgeTrack {
    /// (accepted so far, when), oldest first; only those at or past the oldest waiting item.
    seen: std::collections::VecDeque<(u64, Instant)>,
}

impl AgeTrack {
    /// Observations kept at most, so a queue snapshotted often with a stuck head stays small.
    const KEEP: usize = 256;

    fn observe(&mut self, now: Instant, accepted: u64, depth: u64) -> Option<Duration> {
        let head = accepted.saturating_sub(depth) + 1;
        while self.seen.front().is_some_and(|&(count, _)| count < head) {
            self.seen.pop_front();
        }
        let age = self
            .seen
            .front()
            .map_or(Duration::ZERO, |&(_, at)| now.saturating_duration_since(at));
        if self.seen.back().is_none_or(|&(count, _)| count != accepted) {
            if self.seen.len() >= Self::KEEP {
                // Thin the middle: the first observation carries the oldest item's age.
                self.seen.remove(1);
            }
            self.seen.push_back((accepted, now));
        }
        (depth > 0).then_some(age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_waiting_age_is_told_from_observations() {
        let t0 = Instant::now();
        let mut track = AgeTrack::default();
        // Nothing waiting: no age.
        assert_eq!(track.observe(t0, 0, 0), None);
        // Items 1..=3 accepted since: first seen now, age zero.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(track.observe(t1, 3, 3), Some(Duration::ZERO));
        // Nothing taken: item 1 waits since at least t1.
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(track.observe(t2, 5, 5), Some(Duration::from_secs(2)));
        // Items 1..=4 taken: item 5 was accepted before t2.
        let t3 = t2 + Duration::from_secs(3);
        assert_eq!(track.observe(t3, 6, 2), Some(Duration::from_secs(3)));
        // All taken.
        assert_eq!(track.observe(t3, 6, 0), None);
    }
}
