//! The [`HostedService`] trait a type implements to be driven by the host, and the
//! [`ServiceContext`] its methods receive.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use super::{ApplicationLifetime, BoxError, ServiceInfo};

/// A service whose start and stop the host drives: the `IHostedService` of .NET, with the
/// `BackgroundService` body and the `IHostedLifecycleService` hooks in one trait.
///
/// Every method has a default, so a type implements only the shape it needs:
///
/// * `start` / `stop` alone: a service that sets something up and tears it down
///   (`IHostedService`). The host waits for each `start` before starting the next service, so
///   keep it short.
/// * `execute` alone: a long-running body (`BackgroundService.ExecuteAsync`). It runs on its own
///   task once `start` has returned, so it never delays the next service, and it receives the
///   service's stop token.
/// * both, and the four lifecycle hooks, when a service needs them.
///
/// Register the type with [`#[hosted_service]`](crate::hosted_service); the host builds one
/// instance, drives it, and injects the same instance (`Arc<T>`) into any other service that asks.
///
/// ```
/// use hosted::{BoxError, CancellationToken, HostedService, ServiceContext};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[hosted::hosted_service]
/// struct Counter {
///     #[hosted(default)]
///     ticks: AtomicU64,
/// }
///
/// impl HostedService for Counter {
///     async fn start(&self, cx: &ServiceContext) -> Result<(), BoxError> {
///         tracing::info!(service = cx.info().name(), "counter ready");
///         Ok(())
///     }
///
///     async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
///         while !stop.is_cancelled() {
///             self.ticks.fetch_add(1, Ordering::Relaxed);
///             tokio::select! {
///                 () = stop.cancelled() => {}
///                 () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `HostedService`",
    label = "`#[hosted_service]` types must implement `hosted::HostedService`",
    note = "add `impl hosted::HostedService for {Self} {{}}`, then override `start`/`stop` for setup and teardown or `execute` for a long-running body; every method has a default"
)]
pub trait HostedService: Send + Sync + 'static {
    /// Not public API: `true` only on the host's own services whose lifecycle hooks
    /// (`starting`, `start`, `started`, `stopping`, `stop`, `stopped`) are all the defaults,
    /// which the host then does not call: they would do nothing.
    #[doc(hidden)]
    const __DEFAULT_HOOKS: bool = false;

    /// Called once, in start order, before the next service starts (`StartAsync`).
    ///
    /// An error or a panic here aborts startup: the services already started are stopped in
    /// reverse order and the host exits non-zero. `cx.cancellation()` fires when startup is
    /// abandoned (a stop was requested or the startup budget ran out).
    fn start(&self, cx: &ServiceContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = cx;
        async { Ok(()) }
    }

    /// The long-running body (`ExecuteAsync`), spawned on its own task right after `start`.
    ///
    /// `stop` fires when the host stops this service; return promptly then. Returning an error or
    /// panicking is a failure handled by the service's [`FailurePolicy`](super::FailurePolicy); returning `Ok` before
    /// `stop` fired just ends the body, and the host keeps running. The default waits for `stop`.
    fn execute(
        &self,
        stop: CancellationToken,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        async move {
            stop.cancelled().await;
            Ok(())
        }
    }

    /// Called once, in reverse start order, after the body has ended (`StopAsync`).
    ///
    /// `cx.cancellation()` fires when the shutdown budget runs out: stop being graceful then.
    fn stop(&self, cx: &ServiceContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = cx;
        async { Ok(()) }
    }

    /// Called on every service, in start order, before the first service starts
    /// (`StartingAsync`). An error aborts startup.
    fn starting(&self, cx: &ServiceContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = cx;
        async { Ok(()) }
    }

    /// Called on every service, in start order, once all services have started
    /// (`StartedAsync`). An error aborts startup.
    fn started(&self, cx: &ServiceContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = cx;
        async { Ok(()) }
    }

    /// Called on every started service, in reverse start order, before the first one stops
    /// (`StoppingAsync`). An error is logged and makes the exit code non-zero.
    fn stopping(&self, cx: &ServiceContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = cx;
        async { Ok(()) }
    }

    /// Called on every started service, in reverse start order, once all have stopped
    /// (`StoppedAsync`). An error is logged and makes the exit code non-zero.
    fn stopped(&self, cx: &ServiceContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = cx;
        async { Ok(()) }
    }
}

/// What a [`HostedService`] method gets to know about its call.
#[derive(Clone, Debug)]
pub struct ServiceContext {
    info: ServiceInfo,
    lifetime: ApplicationLifetime,
    cancellation: CancellationToken,
}

impl ServiceContext {
    pub(crate) fn new(
        info: ServiceInfo,
        lifetime: ApplicationLifetime,
        cancellation: CancellationToken,
    ) -> Self {
        Self {
            info,
            lifetime,
            cancellation,
        }
    }

    /// The service being started or stopped.
    #[must_use]
    pub fn info(&self) -> &ServiceInfo {
        &self.info
    }

    /// The host's lifetime: its events, and a way to request a stop.
    #[must_use]
    pub fn lifetime(&self) -> &ApplicationLifetime {
        &self.lifetime
    }

    /// Fires when this phase must stop being graceful: during start, when startup is abandoned;
    /// during stop, when the shutdown budget has run out.
    #[must_use]
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancellation
    }
}

/// Not public API, used by generated code: checks, at a `#[hosted_service]` type's name, that
/// the type implements [`HostedService`]. Public here so a compile error names it
/// `hosted::service::implements_hosted_service`.
#[doc(hidden)]
pub const fn implements_hosted_service<T: HostedService>() {}
