//! The durable queued service: a fetcher claiming jobs with leases, workers running the handler
//! with a fresh scope per attempt, a heartbeat renewing the leases held, the maintenance an
//! elected replica runs, and the stop that releases what it cannot finish.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::job::{JobRun, TransactionSlot};
use super::{Backend, DurableConfig, DurableError, Job, Lease, PgBackend, Settled};
use crate::config::Config;
use crate::di::{Inject, Provider, RunContext, ScopeExit};
use crate::queue::{Forward, Queue, QueueHandler, QueueOptions, SendError};
use crate::registry::ServiceDescriptor;
use crate::service::{
    BoxError, ErasedService, Failure, HostedService, ServiceContext, ServiceKind, call_caught,
};
use crate::telemetry::{Origin, RunSpan, in_run};
use crate::util::BoxFuture;

/// A durable queued service: a [`Queue<T>`] whose items are stored in the `[durable]` store, and
/// workers, in every replica that runs it, calling `handler` for each. What
/// `#[queued(durable)]` registers; the behaviour is in the [guide](crate::docs::durable).
pub fn durable_queued<T, H>(
    name: impl Into<Cow<'static, str>>,
    options: QueueOptions,
    handler: H,
) -> ServiceDescriptor
where
    T: Serialize + DeserializeOwned + Send + 'static,
    H: QueueHandler<T>,
{
    let name = name.into();
    let queue_name = name.to_string();
    let settings = options.settings();
    let mut provider = Provider::singleton(move |cx: RunContext| {
        let options = options.clone().configured(cx.info().settings());
        let queue_name = queue_name.clone();
        async move {
            let config = cx.resolve::<Config<DurableConfig>>().await?;
            let backend: Arc<dyn Backend> = config.backend().await?;
            let forward = Arc::new(Store::<T> {
                backend,
                queue: queue_name.clone(),
                max_attempts: options.retries().saturating_add(1),
                item: PhantomData,
            });
            Ok::<_, BoxError>(Arc::new(Queue::forwarding(queue_name, options, forward)))
        }
    })
    .needs(<Config<DurableConfig> as Inject>::declare);
    provider.owner = name.to_string();
    let parts = Arc::new(handler);
    let mut descriptor = ServiceDescriptor::new(
        name,
        ServiceKind::Queued,
        Arc::new(move |cx: RunContext| {
            let handler = Arc::clone(&parts);
            Box::pin(async move {
                let queue = cx.container().resolve::<Queue<T>>(&cx).await?;
                let config = cx.resolve::<Config<DurableConfig>>().await?;
                // The host's one store, which the queue's handle sends to as well.
                let backend = config
                    .backend()
                    .await
                    .map_err(|error| crate::di::InjectError::Custom(error.to_string()))?;
                #[cfg(feature = "web")]
                super::readiness::report(&cx, &backend).await;
                let store: Arc<dyn Backend> = backend;
                if let Some(status) = cx.status() {
                    status.durable().set_capacity(queue.capacity() as u64);
                    status.keep_dead_letters(Arc::new(StoredDeadLetters {
                        backend: Arc::clone(&store),
                        queue: queue.name().to_owned(),
                    }));
                }
                let service: Arc<dyn ErasedService> = Arc::new(DurableService {
                    handler,
                    options: queue.options().clone(),
                    queue: queue.name().to_owned(),
                    backend: store,
                    config: Arc::clone(config.shared()),
                    cx,
                    item: PhantomData,
                });
                Ok(service)
            })
        }),
    );
    descriptor.provider = Some(provider);
    descriptor.store = Some(super::STORE);
    settings
        .into_iter()
        .fold(descriptor, ServiceDescriptor::setting)
}

/// Where a durable [`Queue<T>`]'s sends go.
pub(crate) struct Store<T> {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) queue: String,
    pub(crate) max_attempts: u32,
    item: PhantomData<fn(T)>,
}

impl<T: Serialize + Send + 'static> Forward<T> for Store<T> {
    fn send(&self, item: T, origin: Origin) -> BoxFuture<'_, Result<(), SendError<T>>> {
        Box::pin(async move {
            let payload = match serde_json::to_string(&item) {
                Ok(payload) => payload,
                Err(error) => {
                    return Err(SendError::Unavailable(
                        item,
                        DurableError::Serialise(error.to_string()).into(),
                    ));
                }
            };
            match self
                .backend
                .enqueue_from(
                    &self.queue,
                    &payload,
                    self.max_attempts,
                    origin.to_stored().as_deref(),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(error) => Err(SendError::Unavailable(item, error.into())),
            }
        })
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

impl<T> Queue<T> {
    /// The PostgreSQL store of a durable queue (`#[queued(durable)]`), for its operations
    /// (counts, dead letters, through [`Backend`]) and its pool; `None` for a queue in memory.
    #[must_use]
    pub fn durable_backend(&self) -> Option<&PgBackend>
    where
        T: 'static,
    {
        self.durable_store()?.as_any().downcast_ref::<PgBackend>()
    }

    /// The store of a durable queue (`#[queued(durable)]`), whichever backend it is, for its
    /// operations: counts, dead letters; `None` for a queue in memory.
    #[must_use]
    pub fn durable_store(&self) -> Option<&Arc<dyn Backend>>
    where
        T: 'static,
    {
        self.forward()
            .and_then(|forward| forward.as_any().downcast_ref::<Store<T>>())
            .map(|store| &store.backend)
    }

    /// Sends an item through the caller's own connection, inside the caller's transaction: the
    /// job exists if and only if that transaction commits (the outbox pattern).
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct OrderConfirmed { order: i64 }
    /// # async fn confirm(pool: &sqlx_postgres::PgPool, events: hosted::Queue<OrderConfirmed>) -> anyhow::Result<()> {
    /// let mut tx = pool.begin().await?;
    /// sqlx_core::query::query("UPDATE orders SET confirmed = true WHERE id = $1")
    ///     .bind(7_i64)
    ///     .execute(&mut *tx)
    ///     .await?;
    /// events.send_in(&mut tx, OrderConfirmed { order: 7 }).await?;
    /// tx.commit().await?; // the event exists from here on, and only if this commits
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SendError::Unavailable`] for a queue that is not durable, an item that does not
    /// serialise or a statement that failed (which aborts the caller's transaction, as
    /// PostgreSQL does); the item is inside.
    pub async fn send_in(
        &self,
        connection: &mut sqlx_postgres::PgConnection,
        item: T,
    ) -> Result<super::JobId, SendError<T>>
    where
        T: Serialize + 'static,
    {
        let Some(store) = self
            .forward()
            .and_then(|forward| forward.as_any().downcast_ref::<Store<T>>())
        else {
            return Err(SendError::Unavailable(
                item,
                format!(
                    "`send_in` needs a durable queue, and `{}` keeps its items in memory: \
                     annotate it `#[queued(durable)]`",
                    self.name()
                )
                .into(),
            ));
        };
        let payload = match serde_json::to_string(&item) {
            Ok(payload) => payload,
            Err(error) => {
                return Err(SendError::Unavailable(
                    item,
                    DurableError::Serialise(error.to_string()).into(),
                ));
            }
        };
        let Some(backend) = store.backend.as_any().downcast_ref::<PgBackend>() else {
            return Err(SendError::Unavailable(
                item,
                format!(
                    "`send_in` takes a PostgreSQL transaction, and the store of `{}` is not \
                     PostgreSQL",
                    self.name()
                )
                .into(),
            ));
        };
        backend
            .enqueue_in_from(
                connection,
                &store.queue,
                &payload,
                store.max_attempts,
                Origin::capture().to_stored().as_deref(),
            )
            .await
            .map_err(|error| SendError::Unavailable(item, error.into()))
    }
}

struct DurableService<T, H> {
    handler: Arc<H>,
    options: QueueOptions,
    queue: String,
    backend: Arc<dyn Backend>,
    config: Arc<DurableConfig>,
    /// The service's base context; its stop token is the service's.
    cx: RunContext,
    item: PhantomData<fn(T)>,
}

/// What became of each job this process claimed, for the final line.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    claimed: u64,
    completed: u64,
    retried: u64,
    dead: u64,
    released: u64,
    stale: u64,
    /// Results the store could not be told (unreachable until the lease ran out): the job's
    /// lease expires and another attempt runs it.
    unsettled: u64,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Settled(Settled::Completed) => self.completed += 1,
            Outcome::Settled(Settled::Retrying) => self.retried += 1,
            Outcome::Settled(Settled::Dead) => self.dead += 1,
            Outcome::Settled(Settled::Released) => self.released += 1,
            Outcome::Settled(Settled::Stale) => self.stale += 1,
            Outcome::Unsettled => self.unsettled += 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Settled(Settled),
    Unsettled,
}

/// The leases this process holds, renewed by the heartbeat and released at the stop.
type Held = Arc<Mutex<HashMap<i64, Lease>>>;

impl<T, H> HostedService for DurableService<T, H>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    H: QueueHandler<T>,
{
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!(
            store = %self.config.url,
            schema = %self.config.schema,
            workers = self.options.workers(),
            retries = self.options.retries(),
            lease = ?self.config.lease,
            "durable queue: claiming jobs"
        );
        Ok(())
    }

    #[allow(
        clippy::too_many_lines,
        reason = "the claim loop reads best in one piece; the heartbeat's status argument tipped it"
    )]
    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        let item_stop = CancellationToken::new();
        let base = self.cx.with_stop_token(item_stop.clone());
        let held: Held = Arc::default();
        let background = CancellationToken::new();
        let heartbeat = tokio::spawn(
            heartbeat(
                Arc::clone(&self.backend),
                Arc::clone(&held),
                self.config.lease / 3,
                background.clone(),
                self.cx
                    .status()
                    .map(|status| (Arc::clone(status), self.queue.clone())),
            )
            .in_current_span(),
        );
        let maintenance = tokio::spawn(
            maintain(
                Arc::clone(&self.backend),
                self.config.sweep_interval,
                self.config.retention(),
                background.clone(),
            )
            .in_current_span(),
        );
        let mut tally = Tally::default();
        let mut running: JoinSet<Outcome> = JoinSet::new();
        let workers = self.options.workers();
        let permits = Arc::new(tokio::sync::Semaphore::new(workers));
        let mut backoff = Duration::from_millis(100);
        let mut unreachable = false;
        loop {
            if stop.is_cancelled() {
                break;
            }
            // Up to as many jobs again as there are workers are claimed ahead, waiting for a
            // worker under their lease, so the workers never wait for the next claim. The next
            // claim comes once those ahead have gone to workers, so each claim brings a batch
            // of at least `workers` jobs rather than one per job finished.
            let free = (2 * workers).saturating_sub(running.len());
            let claim_now = running.len() <= workers;
            // Busy: the next claim waits for jobs to finish, not for work to arrive.
            let mut idle = claim_now;
            if claim_now {
                match self
                    .backend
                    .claim(&self.queue, u32::try_from(free).unwrap_or(u32::MAX))
                    .await
                {
                    Ok(jobs) => {
                        if unreachable {
                            tracing::info!("the durable store is reachable again");
                            unreachable = false;
                        }
                        backoff = Duration::from_millis(100);
                        idle = jobs.len() < free;
                        for claimed in jobs {
                            tally.claimed += 1;
                            lock(&held).insert(claimed.lease.id, claimed.lease);
                            running.spawn(
                                run_job::<T, H>(
                                    Arc::clone(&self.handler),
                                    Arc::clone(&self.backend),
                                    base.clone(),
                                    claimed,
                                    self.options.clone(),
                                    Waiting {
                                        held: Arc::clone(&held),
                                        permits: Arc::clone(&permits),
                                        stop: stop.clone(),
                                    },
                                )
                                .in_current_span(),
                            );
                        }
                    }
                    Err(error) => {
                        if !unreachable {
                            tracing::warn!(%error, "cannot claim jobs; retrying with backoff");
                            unreachable = true;
                        }
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let full = running.len() >= 2 * workers;
            tokio::select! {
                () = stop.cancelled() => break,
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    tally.add(joined.unwrap_or(Outcome::Unsettled));
                }
                () = self.backend.wait_for_work(&self.queue, self.config.poll_interval),
                    if !full && idle => {}
            }
        }
        self.drain(running, &held, &item_stop, &mut tally).await;
        background.cancel();
        let _ = heartbeat.await;
        let _ = maintenance.await;
        log_stopped(&tally);
        Ok(())
    }
}

/// The final line: every job this process claimed, by what became of it.
fn log_stopped(tally: &Tally) {
    let accounted = tally.completed
        + tally.retried
        + tally.dead
        + tally.released
        + tally.stale
        + tally.unsettled;
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                claimed = tally.claimed,
                completed = tally.completed,
                retried = tally.retried,
                dead = tally.dead,
                released = tally.released,
                stale = tally.stale,
                unsettled = tally.unsettled,
                "durable queue stopped"
            )
        };
    }
    if accounted != tally.claimed || tally.stale + tally.unsettled + tally.dead > 0 {
        line!(warn);
    } else {
        line!(info);
    }
}

fn lock(held: &Held) -> std::sync::MutexGuard<'_, HashMap<i64, Lease>> {
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T, H> DurableService<T, H> {
    /// The stop: no more claims; the jobs running finish while the shutdown budget allows, then
    /// are cancelled through their stop token, and those still running are abandoned and their
    /// leases released at once, so another replica takes them without waiting for expiry.
    async fn drain(
        &self,
        mut running: JoinSet<Outcome>,
        held: &Held,
        item_stop: &CancellationToken,
        tally: &mut Tally,
    ) {
        let now = Instant::now();
        let deadline = self
            .cx
            .lifetime()
            .shutdown_deadline()
            .unwrap_or(now + crate::host::DEFAULT_SHUTDOWN_TIMEOUT);
        let remaining = deadline.saturating_duration_since(now);
        let cancel_at = deadline - remaining / 5;
        let abandon_at = deadline - remaining / 10;
        tracing::info!(
            in_flight = running.len(),
            budget = ?cancel_at.saturating_duration_since(now),
            "stopping: no longer claiming; finishing the jobs running"
        );
        let mut cancelled = false;
        loop {
            let until = if cancelled { abandon_at } else { cancel_at };
            match tokio::time::timeout_at(until, running.join_next()).await {
                Ok(Some(joined)) => tally.add(joined.unwrap_or(Outcome::Unsettled)),
                Ok(None) => return,
                Err(_) if !cancelled => {
                    tracing::warn!(
                        in_flight = running.len(),
                        "the shutdown budget is running out: cancelling the jobs still running"
                    );
                    item_stop.cancel();
                    cancelled = true;
                }
                Err(_) => break,
            }
        }
        running.abort_all();
        while running.join_next().await.is_some() {}
        let leases: Vec<Lease> = lock(held).drain().map(|(_, lease)| lease).collect();
        for lease in leases {
            let outcome = match self.backend.release(&lease).await {
                Ok(settled) => Outcome::Settled(settled),
                Err(error) => {
                    tracing::warn!(job = lease.id, %error, "cannot release the lease; it will expire");
                    Outcome::Unsettled
                }
            };
            tracing::warn!(
                job = lease.id,
                attempt = lease.attempt,
                "abandoned: released for another worker"
            );
            tally.add(outcome);
        }
    }
}

/// What a claimed job waits on before it runs: a worker, unless the stop comes first; and the
/// leases held, which it leaves when settled.
struct Waiting {
    held: Held,
    permits: Arc<tokio::sync::Semaphore>,
    stop: CancellationToken,
}

/// One attempt at one job, settled in the store.
async fn run_job<T, H>(
    handler: Arc<H>,
    backend: Arc<dyn Backend>,
    base: RunContext,
    claimed: super::Claimed,
    options: QueueOptions,
    waiting: Waiting,
) -> Outcome
where
    T: DeserializeOwned + Send + 'static,
    H: QueueHandler<T>,
{
    let Waiting {
        held,
        permits,
        stop,
    } = waiting;
    let lease = claimed.lease;
    // A job claimed ahead waits for a worker; if the stop comes first, it goes back at once.
    let permit = tokio::select! {
        biased;
        permit = permits.acquire_owned() => permit.ok(),
        () = stop.cancelled() => None,
    };
    if permit.is_none() {
        let outcome = settle(None, || backend.release(&lease)).await;
        lock(&held).remove(&lease.id);
        return outcome;
    }
    let origin = Origin::from_stored(claimed.origin.as_deref());
    let span = RunSpan::job(base.info().name(), lease.id, lease.attempt, &origin);
    let outcome = in_run(span, async {
        let item: T = match serde_json::from_str(&claimed.payload) {
            Ok(item) => item,
            Err(error) => {
                let reason = format!(
                    "the payload no longer deserialises as `{}`: {error}",
                    std::any::type_name::<T>()
                );
                tracing::error!(payload = %claimed.payload, "dead-lettered: {reason}");
                return settle(options.timeout(), || {
                    backend.fail(&lease, &reason, None)
                })
                .await;
            }
        };
        let slot = transaction_slot(&*backend);
        let job = Job {
            id: lease.id,
            attempt: lease.attempt,
            max_attempts: claimed.max_attempts,
        };
        let (cx, end) = base.begin_run();
        let cx = cx.with_extension(JobRun {
            job,
            transaction: slot.clone(),
        });
        let deadline = options.timeout().map(|timeout| Instant::now() + timeout);
        // Boxed, as the completion below: a handler's future is as large as its deepest await,
        // and inline it would make every job's task that large, copied whole at each spawn.
        let result = call_caught(|| Box::pin(handler.handle(item, &cx)), deadline).await;
        let exit = ScopeExit::of(&result);
        let disposed = end.finish(exit, base.status()).await;
        // A `dispose` that panicked fails the attempt, as in an in-memory queue.
        let result = result.and(disposed);
        drop(cx);
        match result {
            Ok(()) => Box::pin(completed(&*backend, slot.as_deref(), &lease)).await,
            Err(failure) if base.stop_token().is_cancelled() => {
                drop(slot);
                tracing::warn!(error = %failure, "cancelled by the stop: released for another worker");
                settle(None, || backend.release(&lease)).await
            }
            Err(failure) => {
                drop(slot);
                let message = describe(&failure);
                if let Some(status) = base.status() {
                    status.record_error(&format_args!("job {}, attempt {}: {message}", lease.id, lease.attempt));
                }
                let retry_in = (lease.attempt < claimed.max_attempts)
                    .then(|| options.retry_delay(lease.attempt));
                let outcome =
                    settle(None, || backend.fail(&lease, &message, retry_in)).await;
                match outcome {
                    Outcome::Settled(Settled::Dead) => tracing::error!(
                        error = %message,
                        attempts = lease.attempt,
                        "dead-lettered: the job failed its last attempt"
                    ),
                    Outcome::Settled(Settled::Retrying) => tracing::warn!(
                        error = %message,
                        delay = ?retry_in,
                        "attempt {} of {} failed; retrying after a backoff",
                        lease.attempt,
                        claimed.max_attempts
                    ),
                    Outcome::Settled(settled) => report_stale(settled),
                    Outcome::Unsettled => {}
                }
                outcome
            }
        }
    })
    .await;
    lock(&held).remove(&lease.id);
    if let Some(status) = base.status() {
        record_settled(status, outcome);
    }
    outcome
}

/// Where an attempt's [`JobTransaction`](super::JobTransaction) is begun: a PostgreSQL
/// transaction, so on another store none.
fn transaction_slot(backend: &dyn Backend) -> Option<Arc<TransactionSlot>> {
    backend
        .as_any()
        .downcast_ref::<PgBackend>()
        .map(|pg| Arc::new(TransactionSlot::new(pg.pool().clone())))
}

/// Counts a job's end in the host's status: a result refused as stale means the claim was lost.
fn record_settled(status: &crate::status::ServiceStatus, outcome: Outcome) {
    let counts = status.durable();
    match outcome {
        Outcome::Settled(Settled::Completed) => counts.completed(),
        Outcome::Settled(Settled::Retrying) => counts.retried(),
        Outcome::Settled(Settled::Dead) => counts.dead_lettered(),
        Outcome::Settled(Settled::Stale) => counts.stale_rejected(),
        Outcome::Settled(Settled::Released) | Outcome::Unsettled => {}
    }
}

/// Completes a job whose handler succeeded: inside the handler's transaction when it began
/// one, so its writes and the completion commit together or not at all.
async fn completed(
    backend: &dyn Backend,
    slot: Option<&TransactionSlot>,
    lease: &Lease,
) -> Outcome {
    let transaction = match slot {
        Some(slot) => slot.take().await,
        None => None,
    };
    // A slot is only made for a PostgreSQL store.
    let pg = backend.as_any().downcast_ref::<PgBackend>();
    let (Some(mut transaction), Some(pg)) = (transaction, pg) else {
        let outcome = settle(None, || backend.complete(lease)).await;
        if let Outcome::Settled(settled) = outcome {
            report_stale(settled);
        }
        return outcome;
    };
    match pg.complete_in(&mut transaction, lease).await {
        Ok(Settled::Completed) => match transaction.commit().await {
            Ok(()) => Outcome::Settled(Settled::Completed),
            Err(error) => {
                tracing::warn!(%error, "the job's transaction did not commit; its lease will expire and the job run again");
                Outcome::Unsettled
            }
        },
        // Dropping the transaction rolls the handler's writes back.
        Ok(settled) => {
            report_stale(settled);
            Outcome::Settled(settled)
        }
        Err(error) => {
            tracing::warn!(%error, "the job's transaction failed; its lease will expire and the job run again");
            Outcome::Unsettled
        }
    }
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::TimedOut => "the attempt timed out".to_owned(),
        other => other.to_string(),
    }
}

fn report_stale(settled: Settled) {
    if settled == Settled::Stale {
        tracing::warn!(
            "the result was rejected: the job's lease had expired and it was taken back (this \
             attempt is stale; another attempt runs or ran it)"
        );
    }
}

/// Reports a result, retrying with backoff while the store is unreachable, for at most `limit`
/// (30 s by default): past it the lease has long expired and the job runs again anyway.
async fn settle<'a, F>(limit: Option<Duration>, mut report: F) -> Outcome
where
    F: FnMut() -> BoxFuture<'a, Result<Settled, DurableError>>,
{
    let give_up = Instant::now() + limit.unwrap_or(Duration::from_secs(30));
    let mut backoff = Duration::from_millis(50);
    loop {
        match report().await {
            Ok(settled) => return Outcome::Settled(settled),
            Err(error) if Instant::now() + backoff < give_up => {
                tracing::debug!(%error, "cannot report the job's result yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                tracing::warn!(%error, "cannot report the job's result; its lease will expire and the job run again");
                return Outcome::Unsettled;
            }
        }
    }
}

/// Renews the leases this process holds, every third of the lease.
/// Each beat also refreshes the queue's counts in the host's status, and counts the claims it
/// found gone (their lease ran out and the maintenance or another replica took them back) that
/// are still held, so not settled meanwhile: each lost claim once, however many beats find it
/// gone before its attempt ends.
async fn heartbeat(
    backend: Arc<dyn Backend>,
    held: Held,
    every: Duration,
    stop: CancellationToken,
    status: Option<(Arc<crate::status::ServiceStatus>, String)>,
) {
    let mut lost_before: HashSet<Lease> = HashSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let leases: Vec<Lease> = lock(&held).values().copied().collect();
        let renewed = match backend.heartbeat(&leases).await {
            Ok(renewed) => Some(renewed),
            Err(error) => {
                tracing::warn!(%error, held = leases.len(), "cannot renew the leases held");
                None
            }
        };
        if let Some(renewed) = renewed {
            let lost: Vec<Lease> = {
                let held = lock(&held);
                leases
                    .iter()
                    .filter(|lease| held.get(&lease.id) == Some(*lease))
                    .filter(|lease| !renewed.contains(&lease.id))
                    .copied()
                    .collect()
            };
            lost_before.retain(|lease| lost.contains(lease));
            let newly: Vec<Lease> = lost
                .into_iter()
                .filter(|lease| lost_before.insert(*lease))
                .collect();
            if !newly.is_empty() {
                tracing::warn!(
                    lost = newly.len(),
                    jobs = ?newly.iter().map(|lease| lease.id).collect::<Vec<_>>(),
                    "claims found gone at the heartbeat: their lease ran out"
                );
                if let Some((status, _)) = &status {
                    status.durable().lease_lost(newly.len() as u64);
                }
            }
        }
        let Some((status, queue)) = &status else {
            continue;
        };
        if let Ok(counts) = backend.counts(queue).await {
            status
                .durable()
                .store_counts(counts.waiting, counts.running, counts.oldest_waiting);
        }
    }
}

/// A durable queue's dead letters, for the dashboard.
struct StoredDeadLetters {
    backend: Arc<dyn Backend>,
    queue: String,
}

impl crate::status::DeadLetters for StoredDeadLetters {
    fn list(&self, limit: usize) -> BoxFuture<'_, Result<Vec<crate::status::DeadJob>, BoxError>> {
        Box::pin(async move {
            let dead = self
                .backend
                .dead_letters(&self.queue, u32::try_from(limit).unwrap_or(u32::MAX))
                .await?;
            Ok(dead
                .into_iter()
                .map(|job| {
                    crate::status::DeadJob::new(
                        job.id,
                        job.attempts,
                        Some(job.error),
                        None,
                        job.payload,
                    )
                })
                .collect())
        })
    }

    fn retry(&self, id: i64) -> BoxFuture<'_, Result<bool, BoxError>> {
        Box::pin(async move { Ok(self.backend.retry_dead(id).await?) })
    }

    fn discard(&self, id: i64) -> BoxFuture<'_, Result<bool, BoxError>> {
        Box::pin(async move { Ok(self.backend.discard_dead(id).await?) })
    }
}

/// Maintenance, on whichever replica holds the maintenance lease.
async fn maintain(
    backend: Arc<dyn Backend>,
    every: Duration,
    retention: super::Retention,
    stop: CancellationToken,
) {
    loop {
        match backend.maintain(retention).await {
            Ok(done) if done.rescued > 0 || done.pruned > 0 || done.pruned_dead > 0 => {
                tracing::info!(
                    term = done.term,
                    rescued = done.rescued,
                    pruned = done.pruned,
                    pruned_dead = done.pruned_dead,
                    "maintenance: rescued jobs whose lease expired, pruned finished ones"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "maintenance skipped: the store is unreachable"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Not public API, used by generated code: what a durable queue's item must be. Public here so
/// a compile error names it `hosted::durable::DurableItem`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a durable queue's item: it must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    label = "the durable queue's item type",
    note = "a durable queue stores each item in PostgreSQL as JSON: derive `serde::Serialize` and `serde::Deserialize` (without borrowed fields)"
)]
pub trait DurableItem: Serialize + DeserializeOwned + Send + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> DurableItem for T {}

/// Not public API, used by generated code: checks, at the item's type, that it can be stored.
#[doc(hidden)]
pub const fn durable_item<T: DurableItem>() {}
