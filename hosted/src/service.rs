//! What a hosted service is: the [`HostedService`] trait, the facts the host keeps about each
//! service ([`ServiceInfo`]) and the outcome types a service's code returns.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::lifetime::Lifetime;
use crate::policy::FailurePolicy;
use crate::settings::Settings;

/// The error type the host accepts from services: anything that converts into a boxed
/// [`std::error::Error`], which covers `anyhow::Error`, `thiserror` enums and
/// `Box<dyn Error + Send + Sync>` through `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// panicking is a failure handled by the service's [`FailurePolicy`]; returning `Ok` before
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
    lifetime: Lifetime,
    cancellation: CancellationToken,
}

impl ServiceContext {
    pub(crate) fn new(
        info: ServiceInfo,
        lifetime: Lifetime,
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
    pub fn lifetime(&self) -> &Lifetime {
        &self.lifetime
    }

    /// Fires when this phase must stop being graceful: during start, when startup is abandoned;
    /// during stop, when the shutdown budget has run out.
    #[must_use]
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancellation
    }
}

/// The kinds of service the host runs; shown by `--list` and in logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceKind {
    /// An `async fn` run once as the service's body (`#[hosted_service]` on a function).
    Background,
    /// A type implementing [`HostedService`] (`#[hosted_service]` on a type).
    Hosted,
    /// A function run on a schedule (`#[timed]`).
    Timed,
    /// A function run for each item of a queue (`#[queued]`).
    Queued,
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Background => "background",
            Self::Hosted => "hosted",
            Self::Timed => "timed",
            Self::Queued => "queued",
        })
    }
}

/// Where a service was declared in source code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceLocation {
    /// The file, as `file!()` gives it.
    pub file: &'static str,
    /// The line of the annotated item.
    pub line: u32,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The facts the host keeps about one service. Cheap to clone; injectable as a parameter.
#[derive(Clone)]
pub struct ServiceInfo(Arc<InfoInner>);

struct InfoInner {
    name: Cow<'static, str>,
    kind: ServiceKind,
    order: i32,
    after: Vec<Cow<'static, str>>,
    policy: FailurePolicy,
    source: Option<SourceLocation>,
    settings: Settings,
}

impl ServiceInfo {
    pub(crate) fn new(
        name: Cow<'static, str>,
        kind: ServiceKind,
        order: i32,
        after: Vec<Cow<'static, str>>,
        policy: FailurePolicy,
        source: Option<SourceLocation>,
        settings: Settings,
    ) -> Self {
        Self(Arc::new(InfoInner {
            name,
            kind,
            order,
            after,
            policy,
            source,
            settings,
        }))
    }

    /// The service's name: the `name` argument, or the item's path (`my_app::heartbeat`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// What kind of service this is.
    #[must_use]
    pub fn kind(&self) -> ServiceKind {
        self.0.kind
    }

    /// The declared `order` (lower starts first; default 0).
    #[must_use]
    pub fn order(&self) -> i32 {
        self.0.order
    }

    /// The names of the services this one starts after.
    pub fn after(&self) -> impl Iterator<Item = &str> {
        self.0.after.iter().map(AsRef::as_ref)
    }

    /// The failure policy in force: the service's own, or the host's default.
    #[must_use]
    pub fn policy(&self) -> &FailurePolicy {
        &self.0.policy
    }

    /// The service's settings, with configuration applied: what its attribute declared
    /// overridable (a period, a capacity, the failure policy), each with its effective value
    /// and where that came from.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// Where the service was declared, for services registered by an attribute.
    #[must_use]
    pub fn source(&self) -> Option<SourceLocation> {
        self.0.source
    }
}

impl fmt::Debug for ServiceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceInfo")
            .field("name", &self.0.name)
            .field("kind", &self.0.kind)
            .field("order", &self.0.order)
            .field("after", &self.0.after)
            .field("policy", &self.0.policy)
            .field("source", &self.0.source)
            .finish()
    }
}

/// The return types a hosted function may have: `()` or `Result<(), E>` where `E` converts into
/// [`BoxError`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a return type a hosted function can have",
    label = "expected `()` or `Result<(), E>`",
    note = "`E` may be any type that converts into `hosted::BoxError`: `anyhow::Error`, a `thiserror` enum, `Box<dyn Error + Send + Sync>`, ..."
)]
pub trait IntoOutcome {
    /// Converts the function's return value into the host's view of it.
    ///
    /// # Errors
    /// The function's own error, boxed.
    fn into_outcome(self) -> Result<(), BoxError>;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}
