//! A background function adapted to a hosted service: its body runs with a fresh
//! [`RunContext`] per run.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::di::{RunContext, ScopeExit};
use crate::service::{BoxError, HostedService};
use crate::util::BoxFuture;

/// The body of a function service: called with a fresh context per run.
pub(crate) type BodyFn =
    Arc<dyn Fn(RunContext) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// A background service made from a function: its body runs with a fresh [`RunContext`] per run.
pub(crate) struct FnService {
    body: BodyFn,
    cx: RunContext,
}

impl FnService {
    pub(crate) fn new(body: BodyFn, cx: RunContext) -> Self {
        Self { body, cx }
    }
}

impl HostedService for FnService {
    const __DEFAULT_HOOKS: bool = true;

    async fn execute(&self, _stop: CancellationToken) -> Result<(), BoxError> {
        let (cx, end) = self.cx.begin_run();
        let result = (self.body)(cx).await;
        let disposed = end
            .finish(if result.is_ok() {
                ScopeExit::Succeeded
            } else {
                ScopeExit::Failed
            })
            .await;
        result.and(disposed.map_err(BoxError::from))
    }
}
