//! Durable queues on PostgreSQL: `#[queued(durable)]` keeps its items in a table, so they
//! survive a restart and are shared by every replica. The contract, the configuration and the
//! operations are in the [guide](crate::docs::durable).
//!
//! The engine sits behind one seam, [`Backend`]: claiming with a lease, renewing it, settling an
//! attempt fenced on its claim, releasing, and the maintenance an elected replica runs. The
//! PostgreSQL implementation is [`PgBackend`]; the conformance tests run against the seam.

#[cfg(feature = "web")]
mod backplane;
mod cluster_timer;
mod commands;
mod config;
mod job;
pub(crate) mod postgres;
#[cfg(feature = "web")]
mod readiness;
mod service;

use std::fmt;
use std::time::Duration;

use crate::util::BoxFuture;

#[cfg(feature = "web")]
pub(crate) use self::backplane::register as register_backplane;
#[cfg(feature = "web")]
pub use self::backplane::{BackplaneStats, MAX_MESSAGE, PgBackplane};
pub use self::cluster_timer::cluster_timed;
pub use self::config::{DatabaseUrl, DurableConfig, Migrate};
pub use self::job::{Job, JobTransaction};
pub use self::postgres::{Migrated, PgBackend, SCHEMA_VERSION};
pub use self::service::durable_queued;
#[doc(hidden)]
pub use self::service::{DurableItem, durable_item};

pub(crate) use self::commands::COMMAND_HOOK;
pub use self::commands::{EXIT_SCHEMA_VERSION, EXIT_UNREACHABLE};

/// The store the durable services are marked with, for the command-line hooks.
pub(crate) const STORE: &str = "postgres";

/// A job's id in its store.
pub type JobId = i64;

/// What went wrong talking to the store. The database's own message is kept; a URL in it never
/// carries the password.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DurableError {
    /// The database could not be reached, or the connection dropped.
    #[error("the database at {url} is unreachable: {message}")]
    Unreachable {
        /// The URL, password masked.
        url: String,
        /// The driver's message.
        message: String,
    },
    /// The schema's version is not one this build knows.
    #[error(
        "the schema `{schema}` is at version {found}, and this build of hosted knows version {expected}: {hint}"
    )]
    SchemaVersion {
        /// The schema.
        schema: String,
        /// The version found in the database (0: none yet).
        found: i32,
        /// The version this build needs.
        expected: i32,
        /// What to do.
        hint: &'static str,
    },
    /// A statement failed.
    #[error("the database refused a statement: {0}")]
    Database(String),
    /// An item could not be serialised.
    #[error("the item does not serialise as JSON: {0}")]
    Serialise(String),
}

/// A job claimed by this worker: its id, the claim that fences its results, and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The job and the claim its results are fenced on.
    pub lease: Lease,
    /// How many attempts the job may have in all.
    pub max_attempts: u32,
    /// The item, as JSON.
    pub payload: String,
    /// Where the job was sent from, as [`Backend::enqueue_from`] stored it.
    pub origin: Option<String>,
}

/// One claim of one job: its results apply only while this claim is the job's current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The job.
    pub id: JobId,
    /// The claim's number: every claim of the job increments it, so a result carrying an older
    /// one is stale.
    pub claim: i64,
    /// The attempt this claim is (1 for the first); a graceful release does not count one.
    pub attempt: u32,
}

/// What became of a result the worker reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// Completed.
    Completed,
    /// Failed, to be tried again at the persisted run-after time.
    Retrying,
    /// Failed its last attempt: the job is dead, with the error kept.
    Dead,
    /// Put back for another worker, the attempt not counted.
    Released,
    /// Rejected: the claim is no longer the job's current one (its lease expired and the job was
    /// rescued or claimed again), so the result was not applied.
    Stale,
}

/// What one round of maintenance did, on the replica that holds the maintenance lease.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Maintenance {
    /// The leadership term this replica holds; `None` when another replica leads.
    pub term: Option<i64>,
    /// Jobs whose lease had expired, put back (or dead-lettered when out of attempts).
    pub rescued: u64,
    /// Completed jobs deleted after [`Retention::completed`].
    pub pruned: u64,
    /// Dead jobs deleted after [`Retention::dead`].
    pub pruned_dead: u64,
}

/// How long finished jobs are kept before the maintenance deletes them: the `durable.retention`
/// and `durable.dead_retention` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// How long a completed job is kept.
    pub completed: Duration,
    /// How long a dead job is kept (counted from its last attempt); `None`: until it is retried
    /// or discarded.
    pub dead: Option<Duration>,
}

impl Retention {
    /// Keeps completed jobs for `completed`, dead ones for `dead` (`None`: until retried or
    /// discarded).
    #[must_use]
    pub const fn new(completed: Duration, dead: Option<Duration>) -> Self {
        Self { completed, dead }
    }
}

/// A queue's counts in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueCounts {
    /// Jobs waiting to run (available, including those waiting for a retry).
    pub waiting: u64,
    /// Jobs running now (leased).
    pub running: u64,
    /// Completed jobs not yet pruned.
    pub completed: u64,
    /// Dead jobs.
    pub dead: u64,
    /// How long the oldest job that could run now has waited.
    pub oldest_waiting: Option<Duration>,
}

/// A dead job, as [`Backend::dead_letters`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadJob {
    /// The job.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// The item, as JSON.
    pub payload: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why the last one failed.
    pub error: String,
}

/// The seam between the durable queues and their store. [`PgBackend`] implements it; a NATS or
/// SQLite backend would, and would pass the same conformance suite.
///
/// Every result a worker reports is fenced on its [`Lease`]: applied only while that claim is
/// the job's current one, [`Settled::Stale`] otherwise.
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Stores a job; returns once it is durable.
    fn enqueue<'a>(
        &'a self,
        queue: &'a str,
        payload: &'a str,
        max_attempts: u32,
    ) -> BoxFuture<'a, Result<JobId, DurableError>>;

    /// Stores a job with where it was sent from (`origin`: a JSON object with the sender's run
    /// and trace context, see [`hosted::telemetry`](crate::telemetry)), which its claim hands
    /// back in [`Claimed::origin`]. By default the origin is not kept.
    fn enqueue_from<'a>(
        &'a self,
        queue: &'a str,
        payload: &'a str,
        max_attempts: u32,
        origin: Option<&'a str>,
    ) -> BoxFuture<'a, Result<JobId, DurableError>> {
        let _ = origin;
        self.enqueue(queue, payload, max_attempts)
    }

    /// Claims up to `limit` jobs of `queue` that may run now, oldest first, each with a lease
    /// for this worker, skipping jobs another worker is claiming.
    fn claim<'a>(
        &'a self,
        queue: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, DurableError>>;

    /// Renews the leases this worker holds on `leases`; returns the jobs whose lease it still
    /// holds (a lease missing was lost: it expired and the job was taken back).
    fn heartbeat<'a>(
        &'a self,
        leases: &'a [Lease],
    ) -> BoxFuture<'a, Result<Vec<JobId>, DurableError>>;

    /// Completes the job.
    fn complete<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Settled, DurableError>>;

    /// Records a failed attempt: the job runs again after `retry_in`, or is dead when `retry_in`
    /// is `None` or its attempts are exhausted.
    fn fail<'a>(
        &'a self,
        lease: &'a Lease,
        error: &'a str,
        retry_in: Option<Duration>,
    ) -> BoxFuture<'a, Result<Settled, DurableError>>;

    /// Gives the job back at once for another worker, the attempt not counted.
    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Settled, DurableError>>;

    /// One round of maintenance if this replica holds (or wins) the maintenance lease: rescues
    /// jobs whose lease expired, prunes completed and dead jobs kept longer than `retention`
    /// says.
    fn maintain(&self, retention: Retention) -> BoxFuture<'_, Result<Maintenance, DurableError>>;

    /// Waits until a job of `queue` may be ready (a notification) or `poll` has passed.
    fn wait_for_work<'a>(&'a self, queue: &'a str, poll: Duration) -> BoxFuture<'a, ()>;

    /// The queue's counts.
    fn counts<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueCounts, DurableError>>;

    /// Up to `limit` dead jobs of `queue`, most recent first.
    fn dead_letters<'a>(
        &'a self,
        queue: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<DeadJob>, DurableError>>;

    /// Puts a dead job back to run again, with a fresh count of attempts; `false` when no dead
    /// job has that id.
    fn retry_dead(&self, id: JobId) -> BoxFuture<'_, Result<bool, DurableError>>;

    /// Deletes a dead job; `false` when no dead job has that id.
    fn discard_dead(&self, id: JobId) -> BoxFuture<'_, Result<bool, DurableError>>;

    /// The store's clock now, in microseconds since the Unix epoch.
    ///
    /// A once-per-cluster timer computes its ticks from this clock, so it must be one clock for
    /// every replica: the store's own (the database server's, say), read through the store,
    /// never the calling process's. A replica whose clock is off must still read the same time
    /// as the others, give or take a round trip.
    fn clock_us(&self) -> BoxFuture<'_, Result<i64, DurableError>>;

    /// Claims the tick of `schedule` due at `due_us` (microseconds on [`clock_us`]'s clock) for
    /// this replica: `Ok(true)` means it runs the tick.
    ///
    /// At most one claim per (schedule, tick): of every call for the same `schedule` and
    /// `due_us`, across every replica and connection, however they race, at most one returns
    /// `Ok(true)` for as long as the tick is kept (until [`prune_ticks`] forgets it), and the
    /// claim is durable before it returns. A call whose outcome is unknown (the connection
    /// dropped) returns an error and the tick is not run by that replica: a tick may be lost to
    /// an outage, never run twice.
    ///
    /// [`clock_us`]: Backend::clock_us
    /// [`prune_ticks`]: Backend::prune_ticks
    fn claim_tick<'a>(
        &'a self,
        schedule: &'a str,
        due_us: i64,
    ) -> BoxFuture<'a, Result<bool, DurableError>>;

    /// The latest tick of `schedule` that any replica claimed, among those kept; `None` when
    /// none is. A timer with a back-fill window starts from it.
    fn last_tick<'a>(
        &'a self,
        schedule: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, DurableError>>;

    /// Forgets the ticks of `schedule` due before `before_us`; returns how many. The timer
    /// asks only for ticks it never claims again (older than its back-fill window, and than a
    /// day), so the claims stay at most once.
    fn prune_ticks<'a>(
        &'a self,
        schedule: &'a str,
        before_us: i64,
    ) -> BoxFuture<'a, Result<u64, DurableError>>;

    /// The backend itself, for code that knows its type (a transactional send, a transactional
    /// completion).
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync);
}

/// A URL with its password replaced by `***`, for messages and logs.
#[must_use]
pub fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::masked_url;

    #[test]
    fn passwords_never_show_in_urls() {
        assert_eq!(
            masked_url("postgres://app:hunter2@db:5432/orders?sslmode=require"),
            "postgres://app:***@db:5432/orders?sslmode=require"
        );
        assert_eq!(
            masked_url("postgres://app@db/orders"),
            "postgres://app@db/orders"
        );
        assert_eq!(masked_url("postgres://a:b:c@db"), "postgres://a:***@db");
        assert_eq!(masked_url("not a url"), "not a url");
    }
}
