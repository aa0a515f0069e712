//! A background function adapted to a hosted service: its body runs with a fresh
//! [`RunContext`] per run.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::di::{RunContext, ScopeExit};
use crate::service::{BoxError, HostedService, IntoOutcome};

/// A background service made from a function: its body runs with a fresh [`RunContext`] per run.
///
/// Generic over the function, so a run's future holds the body's future inline: one allocation
/// per run (the host boxes the run once to drive it), not one for the run and one for the body.
pub(crate) struct FnService<F> {
    body: Arc<F>,
    cx: RunContext,
}

impl<F> FnService<F> {
    pub(crate) fn new(body: Arc<F>, cx: RunContext) -> Self {
        Self { body, cx }
    }
}

impl<F, Fut> HostedService for FnService<F>
where
    F: Fn(RunContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output: IntoOutcome> + Send + 'static,
{
    const __DEFAULT_HOOKS: bool = true;

    /// A plain `fn` returning the run's future: the body reads its stop token through its
    /// context, and an `async fn` would keep the unused token twice (as argument and as local)
    /// in the future every running service holds.
    fn execute(
        &self,
        stop: CancellationToken,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        drop(stop);
        async move {
            let (cx, end) = self.cx.begin_run();
            let result = (self.body)(cx).await.into_outcome();
            let exit = ScopeExit::of(&result);
            let disposed = end.finish(exit, self.cx.status()).await;
            result.and(disposed.map_err(BoxError::from))
        }
    }
}
