//! The plain values of a [`StatusSnapshot`]: what the metrics and the dashboard show.

use std::time::{Duration, SystemTime};

use super::ServiceState;
use crate::service::ServiceKind;

/// Every service and hub of a host at one instant, from [`HostStatus::snapshot`](super::HostStatus::snapshot).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StatusSnapshot {
    /// When the snapshot was taken.
    pub taken_at: SystemTime,
    /// How long the host has existed (since it was built).
    pub uptime: Duration,
    /// Every service, in start order.
    pub services: Vec<ServiceSnapshot>,
    /// Every hub of the web host.
    pub hubs: Vec<HubSnapshot>,
}

/// One service at one instant.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServiceSnapshot {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: ServiceKind,
    /// Where it is in its life.
    pub state: ServiceState,
    /// Runs ended so far: a background body's runs, a timer's ticks, a queue's attempts at its
    /// items, the web server's requests.
    pub runs: u64,
    /// Runs that failed: an error, a panic, a timeout (a request answered 400 or above).
    pub failures: u64,
    /// Times its body was run again under the `restart` policy.
    pub restarts: u64,
    /// The last error recorded: a failed body, tick or queue item.
    pub last_error: Option<LastError>,
    /// How long the last run took.
    pub last_run_duration: Option<Duration>,
    /// The time all its runs took together.
    pub total_run_time: Duration,
    /// For a timed service, its ticks.
    pub timer: Option<TimerSnapshot>,
    /// For a queued service, its queue.
    pub queue: Option<QueueSnapshot>,
    /// Whether its dead letters can be listed, retried and discarded
    /// ([`HostStatus::dead_letters`](super::HostStatus::dead_letters)).
    pub dead_letters: bool,
}

/// The last error of a service, and when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastError {
    /// The error, as it was logged.
    pub message: String,
    /// When it was recorded.
    pub at: SystemTime,
}

/// A timed service's ticks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimerSnapshot {
    /// The schedule, as `--list` writes it.
    pub schedule: String,
    /// Ticks started.
    pub ticks: u64,
    /// Due ticks that did not run on their own: folded into a later one by the missed-tick
    /// policy, or coalesced while a tick ran long.
    pub missed: u64,
    /// Due ticks dropped because a tick was still running (`overlap = "skip"`).
    pub skipped: u64,
    /// When the last tick was due, on the wall clock.
    pub last_tick: Option<SystemTime>,
    /// When the next tick is due, on the wall clock (before jitter); `None` before the first
    /// tick and once a schedule has no fire time left.
    pub next_tick: Option<SystemTime>,
    /// How late the last tick started after it was due.
    pub last_lateness: Duration,
    /// The latest any tick started.
    pub max_lateness: Duration,
}

/// A queued service's queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueSnapshot {
    /// Items waiting.
    pub depth: u64,
    /// How many items it holds.
    pub capacity: u64,
    /// How long the oldest item waiting has waited, to within the time between two snapshots;
    /// `None` when nothing waits.
    pub oldest_waiting: Option<Duration>,
    /// Items being handled now.
    pub in_flight: u64,
    /// Items accepted.
    pub accepted: u64,
    /// Items handled successfully.
    pub processed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Attempts made again after a failure.
    pub retried: u64,
    /// Items that failed their last attempt.
    pub dead_lettered: u64,
    /// Items discarded by a drop full-mode.
    pub dropped: u64,
    /// Sends that handed their item back (full, closed, timed out).
    pub handed_back: u64,
    /// Items still queued or running when the queue stopped for good.
    pub left_undone: u64,
    /// Durable queues: claims lost to an expired lease.
    pub lease_lost: u64,
    /// Durable queues: results the store refused because the claim was no longer current.
    pub stale_results_rejected: u64,
}

/// One hub of the web host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubSnapshot {
    /// The hub's message type.
    pub name: String,
    /// `WebSocket` connections open.
    pub connections: u64,
    /// Groups with at least one member.
    pub groups: u64,
    /// Messages dropped by the overflow policy (a slow client's outbox was full).
    pub dropped: u64,
    /// Connections closed by the overflow policy.
    pub disconnected: u64,
}

impl HubSnapshot {
    /// A hub's counts.
    #[must_use]
    pub fn new(
        name: String,
        connections: u64,
        groups: u64,
        dropped: u64,
        disconnected: u64,
    ) -> Self {
        Self {
            name,
            connections,
            groups,
            dropped,
            disconnected,
        }
    }
}

/// A job in a durable queue's dead letters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadJob {
    /// The job's id.
    pub id: i64,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub error: Option<String>,
    /// When it failed for good.
    pub failed_at: Option<SystemTime>,
    /// The start of its payload, as JSON.
    pub payload: String,
}

impl DeadJob {
    /// A dead job.
    #[must_use]
    pub fn new(
        id: i64,
        attempts: u32,
        error: Option<String>,
        failed_at: Option<SystemTime>,
        payload: String,
    ) -> Self {
        Self {
            id,
            attempts,
            error,
            failed_at,
            payload,
        }
    }
}
