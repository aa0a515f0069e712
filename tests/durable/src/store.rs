//! What a backend provides the conformance suite: the [`Store`] fixture.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hosted::di::RunContext;
use hosted::durable::{Backend, JobId};
use hosted::{BoxError, Queue};
use serde::Serialize;

/// The timings a test's store runs with; the suite's defaults are short, for quick tests.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// How long a claim holds without a heartbeat.
    pub lease: Duration,
    /// How often an idle worker polls.
    pub poll_interval: Duration,
    /// How often the elected replica sweeps.
    pub sweep_interval: Duration,
    /// Whether idle workers are woken by notifications.
    pub listen: bool,
    /// How long dead jobs are kept (`None`: never pruned).
    pub dead_retention: Option<Duration>,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            sweep_interval: Duration::from_millis(200),
            listen: true,
            dead_retention: Some(Duration::from_hours(24 * 7)),
        }
    }
}

impl Tuning {
    /// With this lease.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }
}

/// Configuration as dotted keys and values (`durable.url`, ...), for a host in this process
/// ([`Settings::toml`]) or a child process ([`Settings::env`]).
#[derive(Clone, Debug, Default)]
pub struct Settings(pub Vec<(String, String)>);

impl Settings {
    /// With `key` set to `value` (replacing an earlier value).
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.retain(|(known, _)| known != key);
        self.0.push((key.to_owned(), value.into()));
        self
    }

    /// As TOML, one dotted key a line.
    #[must_use]
    pub fn toml(&self) -> String {
        let mut text = String::new();
        for (key, value) in &self.0 {
            let bare = value.parse::<i64>().is_ok() || value == "true" || value == "false";
            if bare {
                let _ = writeln!(text, "{key} = {value}");
            } else {
                let _ = writeln!(text, "{key} = {value:?}");
            }
        }
        text
    }

    /// Without `key`.
    #[must_use]
    pub fn without(mut self, key: &str) -> Self {
        self.0.retain(|(known, _)| known != key);
        self
    }

    /// As environment variables (`HOSTED_DURABLE__URL=...`).
    #[must_use]
    pub fn env(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(key, value)| (env_var(key), value.clone()))
            .collect()
    }
}

/// The environment variable that sets the configuration key `key` (`durable.url`:
/// `HOSTED_DURABLE__URL`).
#[must_use]
pub fn env_var(key: &str) -> String {
    format!("HOSTED_{}", key.to_ascii_uppercase().replace('.', "__"))
}

/// A store nobody answers at, as [`Store::unreachable`] describes it.
#[derive(Clone, Debug)]
pub struct Unreachable {
    /// The configuration a host needs to (fail to) use it.
    pub settings: Settings,
    /// The key that says where the store is (`durable.url`).
    pub key: String,
    /// A secret in that key's value that no output may show (a password).
    pub secret: String,
    /// How the value shows, the secret masked (`app:***@127.0.0.1`): a part of it that messages
    /// carry.
    pub masked: String,
}

/// Where a job is, as the store's rows say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to run (or for a retry).
    Available,
    /// Leased by a worker.
    Running,
    /// Completed.
    Completed,
    /// Dead.
    Dead,
}

/// One job's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    /// The job.
    pub id: JobId,
    /// Its state.
    pub state: JobState,
    /// The attempts counted so far.
    pub attempt: u32,
}

/// One effect a handler recorded through the job's transaction ([`Store::record_effect`]): it
/// exists if and only if that attempt's completion committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effect {
    /// The job.
    pub job: JobId,
    /// What the handler recorded (the worker binary: its item's number).
    pub n: i64,
    /// The attempt that recorded it.
    pub attempt: u32,
    /// The process that recorded it.
    pub pid: u32,
}

/// A fault that stops a connection's bytes both ways without closing anything: a live but
/// stalled peer.
pub trait Pause: Send + Sync {
    /// Stops (`true`) or lets through (`false`) the bytes.
    fn pause(&self, paused: bool);
}

/// A backend's fixture for the conformance suite. Each test gets a store of its own (a schema,
/// a database, a stream prefix: whatever isolates it) on a server the test binary shares, or on
/// a server of its own when it restarts it.
///
/// The worker binary ([`worker_binary`](Self::worker_binary)) is a durable queue `work` of items
/// `{"n": <i64>}` with 4 workers and 10 retries, whose handler waits `WORK_MS` (a random part of it
/// with `WORK_RANDOM=1`), then records an [`Effect`] through its job's transaction; with
/// `RECORD_TICKS=1` a once-per-cluster timer `ticker` of 100 ms records each tick it runs
/// ([`tick_runs`](Self::tick_runs)).
pub trait Store: Sized + Send + Sync + 'static {
    /// The fault [`stallable`](Self::stallable) hands out.
    type Stall: Pause;

    /// The schema version this build of the backend brings a store to.
    const SCHEMA_VERSION: i32;

    /// A fresh, isolated store for the test `test`; `None` (after a message) when none can be
    /// had outside CI, and the test passes as skipped.
    fn fresh(test: &str, tuning: Tuning) -> impl Future<Output = Option<Self>> + Send;

    /// As [`fresh`](Self::fresh), on a server of the test's own, which
    /// [`restart`](Self::restart) may restart.
    fn fresh_on_own_server(test: &str, tuning: Tuning)
    -> impl Future<Output = Option<Self>> + Send;

    /// A new connection to the store, as another replica would have: the backend seam.
    fn backend(&self) -> impl Future<Output = Arc<dyn Backend>> + Send;

    /// The configuration a host needs to use this store, with the tuning applied.
    fn settings(&self) -> Settings;

    /// The settings of a connection the returned fault can stall.
    fn stallable(&self) -> impl Future<Output = (Settings, Self::Stall)> + Send;

    /// Restarts the server, dropping every connection (a store from
    /// [`fresh_on_own_server`](Self::fresh_on_own_server)).
    fn restart(&self) -> impl Future<Output = ()> + Send;

    /// A store of the same kind that cannot be reached (nothing listens where it points), its
    /// location carrying a secret.
    fn unreachable(&self) -> Unreachable;

    /// Puts this store's schema at `version`, as a build of that version would have left it
    /// (0: never migrated), for `--check` to find.
    fn set_schema_version(&self, version: i32) -> impl Future<Output = ()> + Send;

    /// The worker binary of the process-level tests.
    fn worker_binary(&self) -> PathBuf;

    /// Every job's row.
    fn jobs(&self) -> impl Future<Output = Vec<JobRow>> + Send;

    /// Every effect recorded.
    fn effects(&self) -> impl Future<Output = Vec<Effect>> + Send;

    /// Every tick the worker binary's timer ran: its number and the process.
    fn tick_runs(&self) -> impl Future<Output = Vec<(i64, u32)>> + Send;

    /// Sends `item` inside a transaction of the caller's own, which then commits or rolls back.
    fn send_in<T: Serialize + Send + Sync + 'static>(
        &self,
        queue: &Queue<T>,
        item: T,
        commit: bool,
    ) -> impl Future<Output = ()> + Send;

    /// In a handler: records `n` as the job's [`Effect`] through the job's own transaction.
    fn record_effect(cx: &RunContext, n: i64) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// The jobs in `state`.
#[must_use]
pub fn in_state(jobs: &[JobRow], state: JobState) -> usize {
    jobs.iter().filter(|job| job.state == state).count()
}
