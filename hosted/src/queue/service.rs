//! The queued service: workers taking items from the queue, each item run with retries, a
//! timeout and a dead letter, and the two-phase stop that accounts for every item.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::channel::Queued;
use super::{Counters, Queue, QueueOptions};
use crate::di::Provider;
use crate::di::RunContext;
use crate::di::ScopeExit;
use crate::registry::ServiceDescriptor;
use crate::service::Failure;
use crate::service::FailurePolicy;
use crate::service::{BoxError, HostedService, IntoOutcome, ServiceContext, ServiceKind};
use crate::service::{Caught, call_caught, call_caught_unbounded};
use crate::telemetry::{NO_SPAN, Origin, RunSpan};
use crate::util::BoxFuture;

/// What a queued service does with each item: implemented by every
/// `Fn(T, RunContext) -> impl Future<Output = ()>` (or `Result<(), E>`), as
/// [`ServiceDescriptor::queued`] takes it, and by the handler `#[queued]` generates.
pub trait QueueHandler<T>: Send + Sync + 'static {
    /// Handles one attempt at one item in the context `cx`, fresh for this attempt when the
    /// handler resolves scoped values, and shared by the attempts otherwise.
    fn handle<'a>(
        &'a self,
        item: T,
        cx: &'a RunContext,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'a;
}

impl<T, F, Fut> QueueHandler<T> for F
where
    F: Fn(T, RunContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output: IntoOutcome> + Send + 'static,
{
    fn handle<'a>(
        &'a self,
        item: T,
        cx: &'a RunContext,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'a {
        let handling = self(item, cx.clone());
        async move { handling.await.into_outcome() }
    }
}

/// Where an item goes once its last attempt has failed, so no item is lost silently.
///
/// Keeping the item for the dead letter (or for a retry) takes a copy of it while an attempt
/// runs, since the handler consumes the item: [`log`](Self::log) and [`hook`](Self::hook) need
/// `T: Clone`; [`log_without_item`](Self::log_without_item) keeps nothing and allows no retries.
pub struct DeadLetters<T> {
    kind: Kind<T>,
}

type Hook<T> = Arc<dyn Fn(DeadLetter<T>) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

enum Kind<T> {
    Log {
        keep: fn(&T) -> T,
        show: fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result,
    },
    Hook {
        keep: fn(&T) -> T,
        hook: Hook<T>,
    },
    WithoutItem,
}

impl<T: Clone + fmt::Debug> DeadLetters<T> {
    /// An error log line carrying the item's `Debug` form, its sequence number, attempts and
    /// error. The default of `#[queued]`.
    #[must_use]
    pub fn log() -> Self {
        Self {
            kind: Kind::Log {
                keep: T::clone,
                show: <T as fmt::Debug>::fmt,
            },
        }
    }
}

impl<T: Clone + Send + 'static> DeadLetters<T> {
    /// Calls `hook` with each dead letter: store it, alert, re-queue it elsewhere. A hook that
    /// fails or panics is a failure of the service, handled by its failure policy.
    #[must_use]
    pub fn hook<F, Fut>(hook: F) -> Self
    where
        F: Fn(DeadLetter<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        Self {
            kind: Kind::Hook {
                keep: T::clone,
                hook: Arc::new(move |letter| {
                    let handling = hook(letter);
                    Box::pin(async move { handling.await.into_outcome() })
                }),
            },
        }
    }
}

impl<T> DeadLetters<T> {
    /// An error log line with the item's sequence number, attempts and error, but not the item,
    /// which the handler consumed: for items that cannot be copied. No retries.
    #[must_use]
    pub fn log_without_item() -> Self {
        Self {
            kind: Kind::WithoutItem,
        }
    }

    /// How to copy an item, when the item is kept across an attempt.
    fn keep(&self) -> Option<fn(&T) -> T> {
        match &self.kind {
            Kind::Log { keep, .. } | Kind::Hook { keep, .. } => Some(*keep),
            Kind::WithoutItem => None,
        }
    }
}

impl<T> fmt::Debug for DeadLetters<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Log { .. } => "DeadLetters::log",
            Kind::Hook { .. } => "DeadLetters::hook",
            Kind::WithoutItem => "DeadLetters::log_without_item",
        })
    }
}

/// An item that failed its last attempt, as a dead-letter hook receives it.
pub struct DeadLetter<T> {
    item: T,
    seq: u64,
    attempts: u32,
    error: Failure,
    cx: RunContext,
}

impl<T> DeadLetter<T> {
    /// The item.
    pub fn item(&self) -> &T {
        &self.item
    }

    /// The item, by value.
    pub fn into_item(self) -> T {
        self.item
    }

    /// Its sequence number in the queue (1 for the first item accepted).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the last attempt failed: an error, a panic, or the per-item timeout.
    pub fn error(&self) -> &Failure {
        &self.error
    }

    /// The queue's context, to resolve what the hook needs: `letter.context().resolve::<Arc<Db>>()`.
    pub fn context(&self) -> &RunContext {
        &self.cx
    }
}

impl<T> fmt::Debug for DeadLetter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("seq", &self.seq)
            .field("attempts", &self.attempts)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Shows an item through the `Debug` function kept for it.
struct Shown<'a, T>(&'a T, fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result);

impl<T> fmt::Debug for Shown<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.1)(self.0, f)
    }
}

impl ServiceDescriptor {
    /// A queued service: a bounded queue of `T` (a [`Queue<T>`] other code injects) drained by
    /// `options.workers()` workers calling `handler` for each item, with a fresh [`RunContext`]
    /// per attempt. What `#[queued]` registers; see its documentation for the behaviour.
    ///
    /// ```
    /// use hosted::di::RunContext;
    /// use hosted::queue::{DeadLetters, QueueOptions};
    /// use hosted::registry::ServiceDescriptor;
    ///
    /// let service = ServiceDescriptor::queued(
    ///     "outbox",
    ///     QueueOptions::new(100).with_retries(3),
    ///     |email: String, _cx: RunContext| async move {
    ///         println!("sending {email}");
    ///     },
    ///     DeadLetters::log(),
    /// );
    /// # drop(service);
    /// ```
    pub fn queued<T, H>(
        name: impl Into<Cow<'static, str>>,
        options: QueueOptions,
        handler: H,
        dead_letters: DeadLetters<T>,
    ) -> Self
    where
        T: Send + 'static,
        H: QueueHandler<T>,
    {
        let name = name.into();
        let parts = Arc::new(Parts {
            handler,
            dead_letters,
        });
        let queue_name = name.to_string();
        let settings = options.settings();
        let checked = options.clone();
        // Built in the queue service's own context, whose settings carry the configuration.
        let mut provider = Provider::singleton(move |cx: RunContext| {
            let options = options.clone().configured(cx.info().settings());
            let queue = Queue::<T>::new(queue_name.clone(), options);
            async move { Ok::<_, BoxError>(Arc::new(queue)) }
        });
        provider.owner = name.to_string();
        let mut descriptor = Self::new(
            name,
            ServiceKind::Queued,
            Arc::new(move |cx: RunContext| {
                let parts = Arc::clone(&parts);
                Box::pin(async move {
                    let queue = cx.container().resolve::<Queue<T>>(&cx).await?;
                    let counted = Queue::clone(&queue);
                    cx.info()
                        .activity()
                        .count_in_flight_with(move || counted.stats().in_flight);
                    if let Some(status) = cx.status() {
                        let probe = Queue::clone(&queue);
                        status.queue(Box::new(move || snapshot_of(probe.stats())));
                    }
                    let service: Arc<dyn crate::service::ErasedService> = Arc::new(QueueService {
                        parts,
                        queue: Queue::clone(&queue),
                        cx,
                    });
                    Ok(service)
                })
            }),
        );
        descriptor.provider = Some(provider);
        settings
            .into_iter()
            .fold(descriptor, Self::setting)
            .check_settings(move |settings| {
                checked.clone().configured(settings).conflicts(settings)
            })
    }
}

/// A queue's counts as the host's status shows them.
fn snapshot_of(stats: super::QueueStats) -> crate::status::QueueSnapshot {
    let mut snapshot = crate::status::QueueSnapshot::empty();
    snapshot.depth = stats.depth as u64;
    snapshot.capacity = stats.capacity as u64;
    snapshot.in_flight = stats.in_flight;
    snapshot.accepted = stats.accepted;
    snapshot.processed = stats.processed;
    snapshot.failed = stats.failed;
    snapshot.retried = stats.retried;
    snapshot.dead_lettered = stats.dead_lettered;
    snapshot.dropped = stats.dropped;
    snapshot.handed_back = stats.handed_back;
    snapshot.left_undone = stats.left_undone;
    snapshot
}

/// What the workers share.
struct Parts<T, H> {
    handler: H,
    dead_letters: DeadLetters<T>,
}

struct QueueService<T, H> {
    parts: Arc<Parts<T, H>>,
    queue: Queue<T>,
    /// The service's base context; its stop token is the service's.
    cx: RunContext,
}

impl<T: Send + 'static, H: QueueHandler<T>> HostedService for QueueService<T, H> {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        let options = self.queue.options();
        tracing::info!(
            capacity = options.capacity(),
            full_mode = %options.full_mode(),
            workers = options.workers(),
            retries = options.retries(),
            "accepting items"
        );
        if self.parts.dead_letters.keep().is_none() && options.retries() > 0 {
            tracing::warn!(
                retries = options.retries(),
                "items of this queue cannot be copied (dead letters are logged without the item), \
                 so they are not retried"
            );
        }
        Ok(())
    }

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        let chan = self.queue.shared().chan();
        let item_stop = CancellationToken::new();
        let base = self.cx.with_stop_token(item_stop.clone());
        chan.resume();
        let mut workers = JoinSet::new();
        for _ in 0..self.queue.options().workers() {
            workers.spawn(
                work(Arc::clone(&self.parts), self.queue.clone(), base.clone()).in_current_span(),
            );
        }
        let failure = tokio::select! {
            () = stop.cancelled() => None,
            failure = first_failure(&mut workers) => Some(failure),
        };
        if let Some(failure) = failure {
            // The other workers finish the items they hold; the queue keeps the rest, for a
            // restart or for the stop to count. A stop meanwhile bounds the wait as usual.
            chan.pause();
            let stopped = tokio::select! {
                () = join_all(&mut workers) => false,
                () = stop.cancelled() => true,
            };
            if stopped {
                drain(&self.queue, &self.cx, workers, &item_stop).await;
            } else if matches!(self.cx.info().policy(), FailurePolicy::Ignore) {
                close_for_good(&self.queue, "the service stays stopped (policy: ignore)");
            }
            return Err(failure.into());
        }
        // A dead letter that failed while draining is a failure while stopping.
        match drain(&self.queue, &self.cx, workers, &item_stop).await {
            Some(failure) => Err(failure.into()),
            None => Ok(()),
        }
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        close_for_good(&self.queue, "the service was not running to drain them");
        let stats = self.queue.stats();
        // The whole equation, so the line can be reconciled alone:
        // accepted = processed + dead_lettered + dropped + left_undone; handed_back were never
        // accepted. `unaccounted` is what does not add up, and is 0 unless there is a bug.
        let settled = stats
            .processed
            .saturating_add(stats.dead_lettered)
            .saturating_add(stats.dropped)
            .saturating_add(stats.left_undone);
        let unaccounted = i128::from(stats.accepted) - i128::from(settled);
        macro_rules! stopped_line {
            ($level:ident) => {
                tracing::$level!(
                    accepted = stats.accepted,
                    processed = stats.processed,
                    dead_lettered = stats.dead_lettered,
                    dropped = stats.dropped,
                    left_undone = stats.left_undone,
                    handed_back = stats.handed_back,
                    failed = stats.failed,
                    retried = stats.retried,
                    unaccounted,
                    "queue stopped"
                )
            };
        }
        if unaccounted != 0 {
            stopped_line!(error);
        } else if stats.left_undone > 0 || stats.dead_lettered > 0 {
            stopped_line!(warn);
        } else {
            stopped_line!(info);
        }
        Ok(())
    }
}

/// Waits for every worker to end.
async fn join_all(workers: &mut JoinSet<Result<(), Failure>>) {
    while workers.join_next().await.is_some() {}
}

/// Waits for the first worker that ends with a failure; pending forever if none does.
async fn first_failure(workers: &mut JoinSet<Result<(), Failure>>) -> Failure {
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => return failure,
            Err(error) => return Failure::Panic(error.to_string()),
        }
    }
    std::future::pending().await
}

/// Stops accepting items and counts those still queued as left undone.
fn close_for_good<T>(queue: &Queue<T>, why: &str) {
    let chan = queue.shared().chan();
    chan.close();
    let left = chan.halt();
    if !left.is_empty() {
        Counters::add(&queue.shared().counters().left_undone, left.len() as u64);
        tracing::warn!(
            left_undone = left.len(),
            first_seq = left.first().map(|queued| queued.seq),
            last_seq = left.last().map(|queued| queued.seq),
            "items still queued are left undone: {why}"
        );
    }
    // Items a worker held when the host abandoned the service (its body dropped before the
    // drain could count them) are the stop's, like those the drain abandons itself.
    let abandoned = chan.seal_once();
    if abandoned > 0 {
        Counters::add(&queue.shared().counters().left_undone, abandoned);
        tracing::warn!(
            left_undone = abandoned,
            "items in flight are left undone: {why}"
        );
    }
}

/// The stop: no more sends, then the accepted items are handled while the shutdown budget
/// allows; then the items still running are cancelled through their stop token, and those
/// that do not end in time are abandoned. Every item is counted. Returns the first failure of
/// a worker (a dead letter that failed), if any.
async fn drain<T>(
    queue: &Queue<T>,
    cx: &RunContext,
    workers: JoinSet<Result<(), Failure>>,
    item_stop: &CancellationToken,
) -> Option<Failure> {
    let shared = queue.shared();
    let chan = shared.chan();
    chan.close();
    let now = Instant::now();
    let deadline = cx
        .lifetime()
        .shutdown_deadline()
        .unwrap_or(now + crate::host::DEFAULT_SHUTDOWN_TIMEOUT);
    let remaining = deadline.saturating_duration_since(now);
    // Four fifths of what is left for the drain, a tenth for cancelled items to wind down,
    // and a tenth for the services that stop after this one.
    let cancel_at = deadline - remaining / 5;
    let abandon_at = deadline - remaining / 10;
    let stats = queue.stats();
    tracing::info!(
        queued = stats.depth,
        in_flight = stats.in_flight,
        budget = ?cancel_at.saturating_duration_since(now),
        "stopping: no longer accepting items; draining the accepted ones"
    );
    let mut draining = std::pin::pin!(join_reporting(workers));
    let failure = 'drained: {
        if let Ok(failure) = tokio::time::timeout_at(cancel_at, &mut draining).await {
            break 'drained failure;
        }
        let left = chan.halt();
        item_stop.cancel();
        tracing::warn!(
            left_undone = left.len(),
            in_flight = queue.stats().in_flight,
            "the shutdown budget is running out: items still queued are left undone, \
             items in flight are cancelled"
        );
        Counters::add(&shared.counters().left_undone, left.len() as u64);
        drop(left);
        if let Ok(failure) = tokio::time::timeout_at(abandon_at, &mut draining).await {
            break 'drained failure;
        }
        // The worker tasks are aborted when the drain future is dropped.
        let abandoned = chan.seal();
        Counters::add(&shared.counters().left_undone, abandoned);
        tracing::error!(
            left_undone = abandoned,
            "items still running after their cancellation are abandoned"
        );
        None
    };
    // Workers that stopped early (a failed dead letter) may have left items behind.
    close_for_good(queue, "no worker was left to handle them");
    failure
}

/// Waits for every worker to end; returns the first failure.
async fn join_reporting(mut workers: JoinSet<Result<(), Failure>>) -> Option<Failure> {
    let mut first = None;
    while let Some(joined) = workers.join_next().await {
        let failure = match joined {
            Ok(Ok(())) => continue,
            Ok(Err(failure)) => failure,
            Err(error) => Failure::Panic(error.to_string()),
        };
        first.get_or_insert(failure);
    }
    first
}

/// One worker: takes items until the queue is closed and empty, or halted.
///
/// An item without a scope or a span, which succeeds, is the common case and runs inline: its
/// attempt polled in this loop, its count taken here. An item that runs in a scope or a span
/// goes through [`run_item`]; a failed attempt goes to the boxed [`after_failure`], then to
/// [`run_item`] for its retries.
async fn work<T: Send + 'static, H: QueueHandler<T>>(
    parts: Arc<Parts<T, H>>,
    queue: Queue<T>,
    base: RunContext,
) -> Result<(), Failure> {
    let shared = queue.shared();
    let (chan, counters, options) = (shared.chan(), shared.counters(), shared.options());
    let keep = parts.dead_letters.keep();
    let attempts = attempts_of(keep, options);
    let scoped = base.runs_scoped();
    while let Some(Queued { seq, item, origin }) = chan.recv().await {
        if scoped || (shared.spans && crate::telemetry::runs_traced()) {
            run_item(&parts, &queue, &base, seq, item, &origin, 1).await?;
            continue;
        }
        // The handler consumes the item: keep a copy for a retry or the dead letter.
        let copy = keep.map(|keep| keep(&item));
        let failure = match Attempt::new(
            || parts.handler.handle(item, &base),
            options.timeout(),
            None,
        )
        .await
        {
            Ok(()) => {
                if chan.finish() {
                    Counters::add(&counters.processed, 1);
                }
                continue;
            }
            Err(failure) => failure,
        };
        let after = after_failure(
            &parts, &queue, &base, seq, 1, attempts, failure, copy, &NO_SPAN,
        );
        match Box::pin(after).await {
            AfterFailure::Retry(copy) => {
                Box::pin(run_item(&parts, &queue, &base, seq, copy, &origin, 2)).await?;
            }
            AfterFailure::Done(result) => result?,
        }
    }
    Ok(())
}

/// How many attempts an item gets: one, plus its retries when it can be copied for them.
fn attempts_of<T>(keep: Option<fn(&T) -> T>, options: &QueueOptions) -> u32 {
    match keep {
        Some(_) => options.retries().saturating_add(1),
        None => 1,
    }
}

/// Runs the attempts at one item from `attempt` on, each in its scope and span when it has
/// them, and records how the item ended. Errs only when its dead letter failed: a failure of
/// the service.
async fn run_item<T: Send + 'static, H: QueueHandler<T>>(
    parts: &Parts<T, H>,
    queue: &Queue<T>,
    base: &RunContext,
    seq: u64,
    mut item: T,
    origin: &Origin,
    mut attempt: u32,
) -> Result<(), Failure> {
    let shared = queue.shared();
    let chan = shared.chan();
    let counters = shared.counters();
    let options = shared.options();
    let keep = parts.dead_letters.keep();
    let attempts = attempts_of(keep, options);
    loop {
        // The handler consumes the item: keep a copy for a retry or the dead letter.
        let copy = keep.map(|keep| keep(&item));
        // No span built when no subscriber would see it: one relaxed load per attempt, and
        // nothing to enter or drop.
        let mut run = (shared.spans && crate::telemetry::runs_traced())
            .then(|| RunSpan::item(base.info().name(), seq, attempt, origin));
        let outcome = if base.runs_scoped() {
            let (cx, end) = base.begin_run();
            let call = || parts.handler.handle(item, &cx);
            let outcome = Attempt::new(call, options.timeout(), run.as_mut()).await;
            drop(cx);
            let exit = ScopeExit::of(&outcome);
            let disposed = end.finish(exit, base.status()).await;
            outcome.and(disposed)
        } else {
            // Nothing scoped to resolve: the attempts share the base context. The status counts
            // them from the queue's own counters, so this path reads no clock.
            let call = || parts.handler.handle(item, base);
            Attempt::new(call, options.timeout(), run.as_mut()).await
        };
        let failure = match outcome {
            Ok(()) => {
                if chan.finish() {
                    Counters::add(&counters.processed, 1);
                }
                return Ok(());
            }
            Err(failure) => failure,
        };
        // The rare paths are boxed, so the future of every item stays small.
        match Box::pin(after_failure(
            parts,
            queue,
            base,
            seq,
            attempt,
            attempts,
            failure,
            copy,
            run.as_ref().map_or(&NO_SPAN, RunSpan::span),
        ))
        .await
        {
            AfterFailure::Retry(copy) => {
                item = copy;
                attempt += 1;
            }
            AfterFailure::Done(result) => return result,
        }
    }
}

/// What to do once an attempt failed.
enum AfterFailure<T> {
    /// Try again with this copy of the item.
    Retry(T),
    /// The item is finished: left undone or dead-lettered (`Err` when its dead letter failed).
    Done(Result<(), Failure>),
}

/// Counts a failed attempt, then waits for the retry, or hands the item to the dead letter.
#[allow(
    clippy::too_many_arguments,
    reason = "the state of one item's run, passed on from `run_item`"
)]
async fn after_failure<T: Send + 'static, H: QueueHandler<T>>(
    parts: &Parts<T, H>,
    queue: &Queue<T>,
    base: &RunContext,
    seq: u64,
    attempt: u32,
    attempts: u32,
    failure: Failure,
    copy: Option<T>,
    span: &tracing::Span,
) -> AfterFailure<T> {
    let shared = queue.shared();
    let (chan, counters, options) = (shared.chan(), shared.counters(), shared.options());
    Counters::add(&counters.failed, 1);
    if let Some(status) = base.status() {
        status.record_error(&format_args!("item {seq}, attempt {attempt}: {failure}"));
    }
    if base.stop_token().is_cancelled() {
        if chan.finish() {
            Counters::add(&counters.left_undone, 1);
        }
        span.in_scope(|| tracing::warn!(error = %failure, "left undone: cancelled by the stop"));
        return AfterFailure::Done(Ok(()));
    }
    match copy {
        Some(copy) if attempt < attempts => {
            let delay = options.retry_delay(attempt);
            span.in_scope(|| {
                tracing::warn!(error = %failure, ?delay, "attempt {attempt} of {attempts} failed; retrying after a backoff");
            });
            if !sleep_unless_stopped(delay, base.stop_token()).await {
                if chan.finish() {
                    Counters::add(&counters.left_undone, 1);
                }
                span.in_scope(|| tracing::warn!("left undone: the stop came before its retry"));
                return AfterFailure::Done(Ok(()));
            }
            Counters::add(&counters.retried, 1);
            AfterFailure::Retry(copy)
        }
        copy => {
            let dead = dead_letter(parts, base, seq, attempt, failure, copy)
                .instrument(span.clone())
                .await;
            if chan.finish() {
                Counters::add(&counters.dead_lettered, 1);
            }
            AfterFailure::Done(dead)
        }
    }
}

/// Hands a failed item to the dead letter.
async fn dead_letter<T: Send + 'static, H>(
    parts: &Parts<T, H>,
    base: &RunContext,
    seq: u64,
    attempts: u32,
    error: Failure,
    item: Option<T>,
) -> Result<(), Failure> {
    match (&parts.dead_letters.kind, item) {
        (Kind::Log { show, .. }, Some(item)) => {
            tracing::error!(item = ?Shown(&item, *show), attempts, error = %error, "dead-lettered: the item failed its last attempt");
            Ok(())
        }
        (Kind::Hook { hook, .. }, Some(item)) => {
            let letter = DeadLetter {
                item,
                seq,
                attempts,
                error,
                cx: base.clone(),
            };
            let handled = call_caught(|| hook(letter), None).await;
            if let Err(failure) = &handled {
                tracing::error!(error = %failure, "the dead-letter hook failed: the item is lost");
            }
            handled
        }
        _ => {
            tracing::error!(attempts, error = %error, "dead-lettered: the item failed its last attempt (the item itself is not kept)");
            Ok(())
        }
    }
}

pin_project_lite::pin_project! {
    /// One attempt at an item, polled in place: the handler called and its future polled inside
    /// the panic catch ([`call_caught_unbounded`]) and the item's run (when it has a span),
    /// bounded by the per-item timeout. A future of its own rather than an `async fn`, and
    /// nothing boxed or moved: this runs for every item.
    struct Attempt<'a, M, F> {
        #[pin]
        handling: Caught<M, F>,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        run: Option<&'a mut RunSpan>,
    }
}

impl<'a, M, F> Attempt<'a, M, F>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<(), BoxError>>,
{
    fn new(call: M, timeout: Option<Duration>, run: Option<&'a mut RunSpan>) -> Self {
        Self {
            handling: call_caught_unbounded(call),
            deadline: timeout.map(tokio::time::sleep),
            run,
        }
    }
}

impl<M, F> Future for Attempt<'_, M, F>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<(), BoxError>>,
{
    type Output = Result<(), Failure>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.run.as_deref_mut() {
            Some(run) => {
                let _entered = run.enter();
                this.handling.poll(task)
            }
            None => this.handling.poll(task),
        };
        if polled.is_ready() {
            return polled;
        }
        match this.deadline.as_pin_mut().map(|sleep| sleep.poll(task)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Failure::TimedOut)),
            _ => Poll::Pending,
        }
    }
}

/// Sleeps for `delay`; returns `false` early if `stop` fires.
async fn sleep_unless_stopped(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}
