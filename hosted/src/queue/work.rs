//! The generic work-item queue: async closures that receive the stop token (.NET's
//! `IBackgroundTaskQueue`).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio_util::sync::CancellationToken;

use super::service::{DeadLetters, QueueHandler};
use super::{Queue, QueueOptions, SendError};
use crate::di::RunContext;
use crate::registry::ServiceDescriptor;
use crate::service::{BoxError, IntoOutcome};
use crate::util::BoxFuture;

/// A queue of [`WorkItem`]s: inject it to enqueue closures.
pub type WorkQueue = Queue<WorkItem>;

/// `Sync` so that a [`SendError<WorkItem>`] is an error `anyhow` and `?` accept: nothing ever
/// shares a job, so the bound costs nothing at run time.
type Job =
    Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// A unit of background work: an async closure that receives a stop token, which fires if the
/// host gives up on it while stopping.
///
/// Its `Debug` form is the closure's type name, the only thing known about it.
pub struct WorkItem {
    job: Job,
    name: &'static str,
}

impl WorkItem {
    /// Wraps an async closure that returns `()` or `Result<(), E>`. The closure must be `Sync`
    /// (what it captures, not the future it returns), so that a [`SendError`] holding it works
    /// with `?` and `anyhow`.
    pub fn new<F, Fut>(work: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        let name = std::any::type_name::<F>();
        Self {
            // The closure is named in its error inside the one boxed future, so running an item
            // wraps it in nothing more.
            job: Box::new(move |stop| {
                Box::pin(Named {
                    running: work(stop),
                    name,
                })
            }),
            name,
        }
    }

    /// Runs the work.
    ///
    /// # Errors
    /// The closure's own error, with the closure named.
    pub fn run(
        self,
        stop: CancellationToken,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'static {
        (self.job)(stop)
    }
}

pin_project_lite::pin_project! {
    /// A work item's future: the closure's, its outcome named after the closure when it fails.
    /// Polled in place of an `async` block around it, which would add a state of its own.
    struct Named<Fut> {
        #[pin]
        running: Fut,
        name: &'static str,
    }
}

impl<Fut: Future<Output: IntoOutcome>> Future for Named<Fut> {
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.running.poll(cx)).into_outcome();
        let name = *this.name;
        Poll::Ready(outcome.map_err(|error| format!("work item `{name}` failed: {error}").into()))
    }
}

impl fmt::Debug for WorkItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WorkItem").field(&self.name).finish()
    }
}

impl Queue<WorkItem> {
    /// Enqueues an async closure as a [`WorkItem`], as [`send`](Self::send) does.
    ///
    /// # Errors
    /// As [`send`](Self::send); the work item is inside.
    pub async fn enqueue<F, Fut>(&self, work: F) -> Result<(), SendError<WorkItem>>
    where
        F: FnOnce(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        self.send(WorkItem::new(work)).await
    }
}

/// Runs each work item with the item's stop token, borrowing the context.
struct RunWork;

impl QueueHandler<WorkItem> for RunWork {
    fn handle<'a>(
        &'a self,
        work: WorkItem,
        cx: &'a RunContext,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'a {
        work.run(cx.stop_token().clone())
    }
}

impl ServiceDescriptor {
    /// The generic work-item queue: a [`WorkQueue`] (inject it, or get it from the running host)
    /// whose workers run each [`WorkItem`] with the item's stop token. A failing item is logged
    /// with its closure's name; work items cannot be copied, so they are not retried.
    ///
    /// ```
    /// use hosted::Host;
    /// use hosted::queue::QueueOptions;
    /// use hosted::registry::ServiceDescriptor;
    ///
    /// let host = Host::builder()
    ///     .add_service(ServiceDescriptor::work_queue("background_tasks", QueueOptions::new(100)))
    ///     .build()
    ///     .unwrap();
    /// # drop(host);
    /// ```
    pub fn work_queue(name: impl Into<Cow<'static, str>>, options: QueueOptions) -> Self {
        let mut descriptor = Self::queued(name, options, RunWork, DeadLetters::log_without_item());
        // The handler resolves nothing, so items run without a scope; a work item that needs
        // one opens it with `ScopeFactory`.
        descriptor.declare = Some(|_| {});
        descriptor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_item_names_its_closure() {
        let item = WorkItem::new(|_stop| async { Err::<(), BoxError>("boom".into()) });
        let shown = format!("{item:?}");
        let error = item.run(CancellationToken::new()).await.unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("work item `hosted::queue::work::tests::"),
            "{error}"
        );
        assert!(
            error.to_string().ends_with("{{closure}}` failed: boom"),
            "{error}"
        );
        assert!(shown.contains("{{closure}}"), "{shown}");
    }

    #[tokio::test]
    async fn an_item_gets_its_stop_token() {
        let stop = CancellationToken::new();
        stop.cancel();
        let item = WorkItem::new(|stop: CancellationToken| async move {
            if stop.is_cancelled() {
                Ok(())
            } else {
                Err("not the token given")
            }
        });
        item.run(stop).await.unwrap();
    }
}
