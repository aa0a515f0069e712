//! [`HostedService`] made object-safe, so the host drives services of any type.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{BoxError, HostedService, ServiceContext};
use crate::util::BoxFuture;

/// [`HostedService`] made object-safe, so the host can drive services of any type.
pub(crate) trait ErasedService: Send + Sync + 'static {
    /// Whether every lifecycle hook is the default, doing nothing, so the host may skip them.
    fn default_hooks(&self) -> bool;
    fn starting<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>>;
    fn start<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>>;
    fn started<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>>;
    fn execute(
        self: Arc<Self>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), BoxError>>;
    fn stopping<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>>;
    fn stop<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>>;
    fn stopped<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>>;
}

impl<T: HostedService> ErasedService for T {
    fn default_hooks(&self) -> bool {
        T::__DEFAULT_HOOKS
    }
    fn starting<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(HostedService::starting(self, cx))
    }
    fn start<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(HostedService::start(self, cx))
    }
    fn started<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(HostedService::started(self, cx))
    }
    fn execute(
        self: Arc<Self>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), BoxError>> {
        Box::pin(async move { HostedService::execute(&*self, stop).await })
    }
    fn stopping<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(HostedService::stopping(self, cx))
    }
    fn stop<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(HostedService::stop(self, cx))
    }
    fn stopped<'a>(&'a self, cx: &'a ServiceContext) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(HostedService::stopped(self, cx))
    }
}
