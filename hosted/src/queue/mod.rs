//! Queued services: a bounded queue of items and the workers that handle them
//! ([`#[queued]`](crate::queued)), the [`Queue`] handle that senders inject, and the generic
//! [`WorkItem`] queue.
//!
//! Every item a queue accepts ends in exactly one of four counts, logged when the queue stops and
//! readable any time through [`Queue::stats`]: processed, dead-lettered, dropped (by a drop
//! [`FullMode`]) or left undone (still queued or running when the shutdown budget ran out). An
//! item handed back to its sender (full, closed, timed out) was never accepted.

mod channel;
pub(crate) mod generated;
mod options;
mod service;
mod work;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::di::{Dependencies, Inject, InjectError, RunContext};
use crate::telemetry::Origin;
use crate::util::BoxFuture;

pub use self::options::{FullMode, QueueOptions};
pub use self::service::{DeadLetter, DeadLetters, QueueHandler};
pub use self::work::{WorkItem, WorkQueue};

// Not public API, used by generated code: the checks `#[queued]` makes on its item and its
// dead-letter hook, public here so compile errors name them `hosted::queue::…`.
#[doc(hidden)]
pub use self::generated::{
    DeadLetterHook, KeptItem, LoggedItem, QueueItem, assert_queue_item, hook_dead_letters,
    log_dead_letters,
};

use self::channel::{Chan, Offer, Queued};

/// The sending end of a queue of `T`, injectable into any hosted function, factory or
/// `#[hosted_service]` field, and obtainable from outside the services with
/// [`RunningHost::get`](crate::host::RunningHost::get). Cheap to clone.
///
/// A queue is found by its item type: one queue per item type per host (a second one is a build
/// error naming both); give each queue its own item type, a newtype if need be.
///
/// ```
/// use hosted::Queue;
///
/// # #[derive(Debug)] struct Email;
/// async fn contact_form(outbox: Queue<Email>) -> anyhow::Result<()> {
///     outbox.send(Email).await?;          // waits while the queue is full
///     if let Err(full) = outbox.try_send(Email) {
///         let _email = full.into_item();  // handed back, never accepted
///     }
///     Ok(())
/// }
/// ```
pub struct Queue<T> {
    shared: Arc<Shared<T>>,
}

pub(crate) struct Shared<T> {
    name: String,
    options: QueueOptions,
    chan: Chan<T>,
    counters: Counters,
    drops: Mutex<DropReport>,
    /// Where the items go instead of the channel, for a queue kept outside the process.
    forward: Option<Arc<dyn Forward<T>>>,
    /// Whether sends record where they come from and items run in spans, when a subscriber would
    /// see them ([`crate::telemetry::runs_traced`]): always, but in the benchmark that measures
    /// what that costs ([`crate::telemetry::bypass_spans`]).
    pub(crate) spans: bool,
}

/// Where the items of a queue kept outside the process go (a durable store): a send returns once
/// the store holds the item.
pub(crate) trait Forward<T>: Send + Sync {
    /// Stores one item.
    fn send(&self, item: T, origin: Origin) -> BoxFuture<'_, Result<(), SendError<T>>>;
    /// The store itself, for the code that knows what it is.
    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "only the durable queues forward their items")
    )]
    fn as_any(&self) -> &(dyn Any + Send + Sync);
}

/// Per-outcome counters, updated with relaxed atomics by the workers.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) processed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) left_undone: AtomicU64,
    pub(crate) handed_back: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Drops are logged at most once a second, with how many since the last line.
#[derive(Default)]
struct DropReport {
    last: Option<Instant>,
    unreported: u64,
}

/// A snapshot of a queue's counts, from [`Queue::stats`].
///
/// Once the queue has stopped, `accepted == processed + dead_lettered + dropped + left_undone`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Items waiting in the queue.
    pub depth: usize,
    /// How many items the queue holds.
    pub capacity: usize,
    /// Items being handled right now.
    pub in_flight: u64,
    /// Items accepted so far (every successful send).
    pub accepted: u64,
    /// Items whose handler succeeded (possibly after retries).
    pub processed: u64,
    /// Failed attempts: errors, panics and timeouts, retried or not.
    pub failed: u64,
    /// Attempts made again after a failure.
    pub retried: u64,
    /// Items that failed their last attempt and went to the dead letter.
    pub dead_lettered: u64,
    /// Items discarded by a drop [`FullMode`].
    pub dropped: u64,
    /// Items still queued or running when the queue stopped for good.
    pub left_undone: u64,
    /// Sends that handed their item back: full, closed or timed out. Never accepted.
    pub handed_back: u64,
}

/// Why an item was not accepted; the item is inside, [`into_item`](Self::into_item) hands it
/// back.
///
/// It is a [`std::error::Error`] whatever the item, so for any item that is `Send + Sync` (plain
/// data, and every [`WorkItem`]) it converts with `?` into
/// `anyhow::Error` or [`BoxError`](crate::BoxError), dropping the item with the error:
///
/// ```
/// async fn notify(outbox: hosted::Queue<String>) -> anyhow::Result<()> {
///     outbox.send("hello".to_owned()).await?;
///     Ok(())
/// }
/// ```
#[non_exhaustive]
pub enum SendError<T> {
    /// The queue is full ([`Queue::try_send`], or [`FullMode::Reject`]).
    Full(T),
    /// The queue has stopped accepting items: the host is stopping.
    Closed(T),
    /// The queue stayed full for the whole wait of [`Queue::send_timeout`].
    TimedOut(T),
    /// A durable queue's store did not take the item (unreachable, or the item did not
    /// serialise); the error says why.
    Unavailable(T, crate::service::BoxError),
}

impl<T> SendError<T> {
    /// The item that was not accepted.
    pub fn into_item(self) -> T {
        match self {
            Self::Full(item)
            | Self::Closed(item)
            | Self::TimedOut(item)
            | Self::Unavailable(item, _) => item,
        }
    }

    /// A reference to the item that was not accepted.
    pub fn item(&self) -> &T {
        match self {
            Self::Full(item)
            | Self::Closed(item)
            | Self::TimedOut(item)
            | Self::Unavailable(item, _) => item,
        }
    }

    /// Whether the queue had stopped accepting items.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "Full(..)",
            Self::Closed(_) => "Closed(..)",
            Self::TimedOut(_) => "TimedOut(..)",
            Self::Unavailable(_, _) => "Unavailable(..)",
        })
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Self::Unavailable(_, error) = self {
            return write!(
                f,
                "the durable store did not take the item: {error}; the item was handed back"
            );
        }
        f.write_str(match self {
            Self::Full(_) => "the queue is full; the item was handed back",
            Self::Closed(_) => {
                "the queue is closed because the host is stopping; the item was handed back"
            }
            Self::TimedOut(_) => {
                "the queue stayed full for the whole timeout; the item was handed back"
            }
            Self::Unavailable(_, _) => unreachable!("written above"),
        })
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.shared.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<T: Send + 'static> Queue<T> {
    /// A queue that no host drains yet; the queued service built with
    /// [`ServiceDescriptor::queued`](crate::registry::ServiceDescriptor::queued) creates its own.
    pub(crate) fn new(name: impl Into<String>, options: QueueOptions) -> Self {
        let chan = Chan::new(options.capacity(), options.full_mode());
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                options,
                chan,
                counters: Counters::default(),
                drops: Mutex::new(DropReport::default()),
                forward: None,
                spans: crate::telemetry::spans_wanted(),
            }),
        }
    }

    /// A queue whose items go to `forward` (a durable store) instead of a channel.
    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "only the durable queues forward their items")
    )]
    pub(crate) fn forwarding(
        name: impl Into<String>,
        options: QueueOptions,
        forward: Arc<dyn Forward<T>>,
    ) -> Self {
        let mut queue = Self::new(name, options);
        if let Some(shared) = Arc::get_mut(&mut queue.shared) {
            shared.forward = Some(forward);
        }
        queue
    }
}

impl<T> Queue<T> {
    /// Sends an item. In [`FullMode::Wait`] (the default) waits while the queue is full:
    /// backpressure. In [`FullMode::Reject`] a full queue hands the item back at once; in the drop
    /// modes the send always succeeds and an item is dropped instead (counted and logged).
    ///
    /// Dropping the returned future while it waits drops the item, which was never accepted;
    /// use [`send_timeout`](Self::send_timeout) to bound the wait and get the item back.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the queue has stopped accepting items (the host is stopping),
    /// [`SendError::Full`] under [`FullMode::Reject`]; the item is inside.
    pub async fn send(&self, item: T) -> Result<(), SendError<T>> {
        if let Some(forward) = &self.shared.forward {
            return forward
                .send(item, Origin::capture())
                .await
                .map_err(|error| self.handed_back(error));
        }
        if self.shared.chan.full_mode() != FullMode::Wait {
            return self.try_send(item);
        }
        self.shared
            .chan
            .send(item, self.origin())
            .await
            .map_err(|item| self.handed_back(SendError::Closed(item)))
    }

    /// Sends an item without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] when the queue is full (in the drop modes it never is: an item is
    /// dropped instead), [`SendError::Closed`] once it has stopped accepting items; the item is
    /// inside.
    pub fn try_send(&self, item: T) -> Result<(), SendError<T>> {
        if self.shared.forward.is_some() {
            return Err(self.handed_back(SendError::Unavailable(
                item,
                "a durable queue cannot store an item without waiting for its database: use `send`"
                    .into(),
            )));
        }
        match self.shared.chan.offer(item, self.origin()) {
            Offer::Accepted { dropped: None } => Ok(()),
            Offer::Accepted {
                dropped: Some(dropped),
            } => {
                self.dropped(&dropped);
                drop(dropped);
                Ok(())
            }
            Offer::Full(item) => Err(self.handed_back(SendError::Full(item))),
            Offer::Closed(item) => Err(self.handed_back(SendError::Closed(item))),
        }
    }

    /// Sends an item, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendError::TimedOut`] when the queue stayed full, [`SendError::Closed`] once it has
    /// stopped accepting items, [`SendError::Full`] under [`FullMode::Reject`]; the item is
    /// inside.
    pub async fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), SendError<T>> {
        if self.shared.forward.is_some() {
            // The item moves into the store's future; past the timeout it cannot come back, so
            // the store bounds its own wait (its connection timeout) instead.
            return self.send(item).await;
        }
        if self.shared.chan.full_mode() != FullMode::Wait {
            return self.try_send(item);
        }
        let mut send = self.shared.chan.send(item, self.origin());
        let sleep = tokio::time::sleep(timeout);
        let mut sleep = std::pin::pin!(sleep);
        std::future::poll_fn(|cx: &mut Context<'_>| {
            if let Poll::Ready(sent) = Pin::new(&mut send).poll(cx) {
                return Poll::Ready(sent.map_err(SendError::Closed));
            }
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(match send.cancel() {
                    Some(item) => Err(SendError::TimedOut(item)),
                    None => Ok(()),
                });
            }
            Poll::Pending
        })
        .await
        .map_err(|error| self.handed_back(error))
    }

    /// The queue's name: the name of the service that drains it.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The options the queue runs with.
    #[must_use]
    pub fn options(&self) -> &QueueOptions {
        &self.shared.options
    }

    /// How many items the queue holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.chan.capacity()
    }

    /// How many items wait in the queue now.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.shared.chan.depth_and_accepted().0
    }

    /// Whether the queue has stopped accepting items.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.chan.is_closed()
    }

    /// The queue's counts now.
    #[must_use]
    pub fn stats(&self) -> QueueStats {
        let counters = &self.shared.counters;
        let (depth, accepted) = self.shared.chan.depth_and_accepted();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        QueueStats {
            depth,
            capacity: self.capacity(),
            // Once sealed, the items still out were counted as left undone.
            in_flight: match load(&self.shared.chan.in_flight) {
                sealed if sealed & channel::SEALED != 0 => 0,
                in_flight => in_flight,
            },
            accepted,
            processed: load(&counters.processed),
            failed: load(&counters.failed),
            retried: load(&counters.retried),
            dead_lettered: load(&counters.dead_lettered),
            dropped: load(&counters.dropped),
            left_undone: load(&counters.left_undone),
            handed_back: load(&counters.handed_back),
        }
    }

    pub(crate) fn shared(&self) -> &Shared<T> {
        &self.shared
    }

    /// The store a durable queue's items go to.
    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "only the durable queues forward their items")
    )]
    pub(crate) fn forward(&self) -> Option<&Arc<dyn Forward<T>>> {
        self.shared.forward.as_ref()
    }

    /// Where a send comes from, for the item's run to show: nothing to record (no clock, no
    /// thread-local, no span looked up) when no subscriber would see the item's span.
    fn origin(&self) -> Origin {
        if self.shared.spans && crate::telemetry::runs_traced() {
            Origin::capture()
        } else {
            Origin::default()
        }
    }

    fn handed_back(&self, error: SendError<T>) -> SendError<T> {
        Counters::add(&self.shared.counters.handed_back, 1);
        error
    }

    /// Counts and logs an item a drop mode discarded.
    fn dropped(&self, dropped: &Queued<T>) {
        Counters::add(&self.shared.counters.dropped, 1);
        tracing::debug!(queue = %self.shared.name, seq = dropped.seq, mode = %self.shared.chan.full_mode(), "dropped an item: the queue is full");
        let now = Instant::now();
        let mut report = self
            .shared
            .drops
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        report.unreported += 1;
        if report
            .last
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1))
        {
            let since_last = std::mem::take(&mut report.unreported);
            report.last = Some(now);
            drop(report);
            tracing::warn!(
                queue = %self.shared.name,
                mode = %self.shared.chan.full_mode(),
                dropped = since_last,
                total = self.shared.counters.dropped.load(Ordering::Relaxed),
                last_seq = dropped.seq,
                "the queue is full: dropped items"
            );
        }
    }
}

impl<T> Shared<T> {
    pub(crate) fn options(&self) -> &QueueOptions {
        &self.options
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// A queue's handle, as a parameter or field: the queue whose items are `T`.
#[diagnostic::do_not_recommend]
impl<T: Send + 'static> Inject for Queue<T> {
    fn declare(needs: &mut Dependencies) {
        needs.require::<Self>();
    }

    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        let queue = cx.container().resolve::<Self>(cx).await?;
        Ok(Queue::clone(&queue))
    }
}
