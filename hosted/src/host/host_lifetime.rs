//! The host-lifetime seam (.NET's `IHostLifetime`): what runs before the first service starts
//! and after the last one stopped, and may ask the host to stop on its own signal. The console's
//! signals ([`SignalLifetime`](super::SignalLifetime)) are one; systemd's notifications are
//! another.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Outcome;
use super::lifecycle::SHUTDOWN_GRACE;
use super::options::HostOptions;
use crate::service::{ApplicationLifetime, BoxError, ServiceInfo, StopReason};
use crate::util::BoxFuture;

/// Something that supervises the host from outside its services: the console (signals), systemd,
/// a Windows service manager, an orchestrator's agent. .NET's `IHostLifetime`.
///
/// The host calls each registered lifetime, in the order the builder got them:
///
/// 1. [`starting`](Self::starting) before the first service is built (`WaitForStartAsync`): set
///    up, start listening for the supervisor's stop signal; an error aborts startup with exit 1;
/// 2. [`started`](Self::started) once every service's `start` returned (systemd's `READY=1`);
/// 3. [`stopping`](Self::stopping) as soon as the shutdown begins, before the drain delay and the
///    services' stop (`STOPPING=1`);
/// 4. [`stopped`](Self::stopped) after the last service stopped and the singletons were disposed
///    (`StopAsync`), in reverse order, with the outcome.
///
/// A startup that fails still gets `stopping` and `stopped`. A lifetime asks the host to stop
/// with [`LifetimeContext::request_stop`], from any task it spawned. Every method has a default
/// and should return quickly: the host waits for each.
///
/// [`Host::run`](crate::Host::run) puts the [`SignalLifetime`](super::SignalLifetime) first
/// (unless [`HostBuilder::handle_signals`](super::HostBuilder::handle_signals) turned it off);
/// [`HostBuilder::lifetime`](super::HostBuilder::lifetime) adds more.
///
/// ```
/// use std::time::Duration;
/// use hosted::BoxError;
/// use hosted::host::{HostLifetime, LifetimeContext, Outcome};
/// use hosted::service::StopReason;
///
/// /// Stops the host when a file appears: a supervisor that speaks through the file system.
/// struct StopFile(&'static str);
///
/// impl HostLifetime for StopFile {
///     async fn starting(&self, cx: &LifetimeContext) -> Result<(), BoxError> {
///         let (path, cx) = (self.0, cx.clone());
///         tokio::spawn(async move {
///             while !std::path::Path::new(path).exists() {
///                 tokio::time::sleep(Duration::from_millis(20)).await;
///             }
///             cx.request_stop(StopReason::Requested);
///         });
///         Ok(())
///     }
///
///     async fn stopped(&self, _cx: &LifetimeContext, outcome: &Outcome) {
///         println!("stopped: {:?}", outcome.reason());
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let path = std::env::temp_dir().join(format!("hosted-doc-stop-{}", std::process::id()));
/// let path: &'static str = Box::leak(path.to_string_lossy().into_owned().into_boxed_str());
/// let host = hosted::Host::builder()
///     .handle_signals(false)
///     .lifetime(StopFile(path))
///     .build()
///     .unwrap();
/// let touch = tokio::spawn(async move {
///     tokio::time::sleep(Duration::from_millis(50)).await;
///     std::fs::write(path, b"").unwrap();
/// });
/// let outcome = host.run().await;
/// touch.await.unwrap();
/// std::fs::remove_file(path).unwrap();
/// assert_eq!(outcome.reason(), Some(&StopReason::Requested));
/// assert!(outcome.is_success());
/// # }
/// ```
pub trait HostLifetime: Send + Sync + 'static {
    /// Before the first service is built. An error aborts startup: nothing starts, the lifetimes
    /// already past `starting` get `stopping` and `stopped`, and the exit code is 1.
    fn starting(&self, cx: &LifetimeContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = cx;
        async { Ok(()) }
    }

    /// Once every service's `start` (and `started` hook) returned.
    fn started(&self, cx: &LifetimeContext) -> impl Future<Output = ()> + Send {
        let _ = cx;
        async {}
    }

    /// As soon as the shutdown begins, before the drain delay and the services' stop.
    fn stopping(&self, cx: &LifetimeContext) -> impl Future<Output = ()> + Send {
        let _ = cx;
        async {}
    }

    /// After the last service stopped, with how the run ended.
    fn stopped(&self, cx: &LifetimeContext, outcome: &Outcome) -> impl Future<Output = ()> + Send {
        let _ = (cx, outcome);
        async {}
    }
}

/// What a [`HostLifetime`] gets: the application's lifetime, its own way to stop the host, the
/// services and the host's stop budgets. Cheap to clone, to move into a task the lifetime spawns.
#[derive(Clone, Debug)]
pub struct LifetimeContext {
    lifetime: ApplicationLifetime,
    services: Arc<[ServiceInfo]>,
    shutdown_timeout: Duration,
    drain_delay: Duration,
}

impl LifetimeContext {
    pub(crate) fn new(
        lifetime: ApplicationLifetime,
        services: Arc<[ServiceInfo]>,
        options: &HostOptions,
    ) -> Self {
        Self {
            lifetime,
            services,
            shutdown_timeout: options.shutdown_timeout(),
            drain_delay: options.drain_delay(),
        }
    }

    /// The application's lifetime: its started / stopping / stopped events.
    #[must_use]
    pub fn lifetime(&self) -> &ApplicationLifetime {
        &self.lifetime
    }

    /// Asks the host to stop gracefully, for `reason`: the lifetime's own stop signal (a SIGTERM,
    /// a service manager's stop request). A later reason does not replace an earlier one.
    pub fn request_stop(&self, reason: StopReason) {
        self.lifetime.request_stop(reason);
    }

    /// The services the host runs, in start order; each one's
    /// [`activity`](ServiceInfo::activity) tells whether it runs, is stuck, has work in flight or
    /// a tick due.
    #[must_use]
    pub fn services(&self) -> &[ServiceInfo] {
        &self.services
    }

    /// The shutdown budget (`host.shutdown_timeout`).
    #[must_use]
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// The drain delay (`host.drain_delay`): how long the host waits, readiness already failing,
    /// between the stop request and the services' stop.
    #[must_use]
    pub fn drain_delay(&self) -> Duration {
        self.drain_delay
    }

    /// The longest a stop takes from its request to the last service stopped: the drain delay,
    /// the shutdown budget and the grace after it. What a supervisor's stop timeout must allow.
    #[must_use]
    pub fn stop_bound(&self) -> Duration {
        self.drain_delay
            .saturating_add(self.shutdown_timeout)
            .saturating_add(SHUTDOWN_GRACE)
    }
}

/// A [`HostLifetime`] behind a pointer.
pub(crate) trait ErasedLifetime: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn starting<'a>(&'a self, cx: &'a LifetimeContext) -> BoxFuture<'a, Result<(), BoxError>>;
    fn started<'a>(&'a self, cx: &'a LifetimeContext) -> BoxFuture<'a, ()>;
    fn stopping<'a>(&'a self, cx: &'a LifetimeContext) -> BoxFuture<'a, ()>;
    fn stopped<'a>(&'a self, cx: &'a LifetimeContext, outcome: &'a Outcome) -> BoxFuture<'a, ()>;
}

impl<L: HostLifetime> ErasedLifetime for L {
    fn name(&self) -> &'static str {
        std::any::type_name::<L>()
    }

    fn starting<'a>(&'a self, cx: &'a LifetimeContext) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(HostLifetime::starting(self, cx))
    }

    fn started<'a>(&'a self, cx: &'a LifetimeContext) -> BoxFuture<'a, ()> {
        Box::pin(HostLifetime::started(self, cx))
    }

    fn stopping<'a>(&'a self, cx: &'a LifetimeContext) -> BoxFuture<'a, ()> {
        Box::pin(HostLifetime::stopping(self, cx))
    }

    fn stopped<'a>(&'a self, cx: &'a LifetimeContext, outcome: &'a Outcome) -> BoxFuture<'a, ()> {
        Box::pin(HostLifetime::stopped(self, cx, outcome))
    }
}

/// The lifetimes of one host, and the context they share.
#[derive(Clone)]
pub(crate) struct Lifetimes {
    pub(crate) all: Vec<Arc<dyn ErasedLifetime>>,
    pub(crate) cx: LifetimeContext,
}

impl std::fmt::Debug for Lifetimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.all.iter().map(|lifetime| lifetime.name()))
            .finish()
    }
}

impl Lifetimes {
    pub(crate) fn new(all: Vec<Arc<dyn ErasedLifetime>>, cx: LifetimeContext) -> Self {
        Self { all, cx }
    }

    /// Runs every `starting`; on an error, returns how many got past it, the failed one's name
    /// and the error.
    pub(crate) async fn starting(&self) -> Result<(), (usize, &'static str, String)> {
        for (index, lifetime) in self.all.iter().enumerate() {
            if let Err(error) = lifetime.starting(&self.cx).await {
                return Err((index, lifetime.name(), crate::util::error_chain(&*error)));
            }
        }
        Ok(())
    }

    pub(crate) async fn started(&self) {
        for lifetime in &self.all {
            lifetime.started(&self.cx).await;
        }
    }

    /// `stopping` of the first `count` lifetimes, in order.
    pub(crate) async fn stopping(&self, count: usize) {
        for lifetime in self.all.iter().take(count) {
            lifetime.stopping(&self.cx).await;
        }
    }

    /// `stopped` of the first `count` lifetimes, in reverse order.
    pub(crate) async fn stopped(&self, count: usize, outcome: &Outcome) {
        for lifetime in self.all.iter().take(count).rev() {
            lifetime.stopped(&self.cx, outcome).await;
        }
    }
}
