//! Running one service's code: each call caught for panics, and the body supervised under the
//! service's [`FailurePolicy`].

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::error::Failure;
use crate::inject::RunContext;
use crate::lifetime::{Lifetime, StopReason};
use crate::policy::FailurePolicy;
use crate::scope::ScopeExit;
use crate::service::{BoxError, HostedService, ServiceContext, ServiceInfo};
use crate::util::{BoxFuture, CatchUnwind, panic_message};

/// The body of a function service: called with a fresh context per run.
pub(crate) type BodyFn =
    Arc<dyn Fn(RunContext) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// [`HostedService`] made object-safe, so the host can drive services of any type.
pub(crate) trait ErasedService: Send + Sync + 'static {
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
    async fn execute(&self, _stop: CancellationToken) -> Result<(), BoxError> {
        let (cx, end) = self.cx.begin_run();
        let result = (self.body)(cx).await;
        end.finish(if result.is_ok() {
            ScopeExit::Succeeded
        } else {
            ScopeExit::Failed
        })
        .await;
        result
    }
}

/// Runs `call` where it is, catching a panic, bounded by `deadline` when there is one; the call
/// is dropped if the deadline passes.
///
/// Not spawned: the host must make progress even when every worker thread is blocked by a
/// service's body, so its own steps never wait for a worker.
pub(crate) async fn call_caught<T, E, F>(call: F, deadline: Option<Instant>) -> Result<T, Failure>
where
    E: Into<BoxError>,
    F: Future<Output = Result<T, E>> + Send,
{
    let outcome = if let Some(deadline) = deadline {
        match tokio::time::timeout_at(deadline, CatchUnwind::new(call)).await {
            Ok(outcome) => outcome,
            Err(_) => return Err(Failure::TimedOut),
        }
    } else {
        // Pinned where it is rather than boxed: timers call this once per tick.
        let mut call = std::pin::pin!(call);
        std::future::poll_fn(|cx| {
            // A call that panicked is never polled again: this future is then ready.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.as_mut().poll(cx)))
            {
                Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
                Ok(std::task::Poll::Ready(value)) => std::task::Poll::Ready(Ok(value)),
                Err(payload) => std::task::Poll::Ready(Err(payload)),
            }
        })
        .await
    };
    match outcome {
        Ok(result) => result.map_err(|error| Failure::Error(error.into())),
        Err(payload) => Err(Failure::Panic(panic_message(payload.as_ref()))),
    }
}

/// What went wrong with which service, collected for the final report and the exit code.
#[derive(Clone, Debug, Default)]
pub(crate) struct Incidents(Arc<Mutex<Vec<Incident>>>);

/// One service that did not end cleanly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    /// The service's name.
    pub service: String,
    /// What happened, in words.
    pub what: String,
}

impl Incidents {
    pub(crate) fn record(&self, service: &ServiceInfo, what: impl Into<String>) {
        self.record_named(service.name(), what);
    }

    /// Records an incident of something that is not a service, such as a registered type.
    pub(crate) fn record_named(&self, name: &str, what: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Incident {
                service: name.to_owned(),
                what: what.into(),
            });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    pub(crate) fn take(&self) -> Vec<Incident> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Runs the service's body, and runs it again or stops the host when it fails, as its policy
/// says. Returns when the body has ended for good.
pub(crate) async fn supervise(
    service: Arc<dyn ErasedService>,
    info: ServiceInfo,
    stop: CancellationToken,
    lifetime: Lifetime,
    incidents: Incidents,
) {
    let mut consecutive_failures = 0_u32;
    for run in 1_u32.. {
        let began = Instant::now();
        let body = Arc::clone(&service).execute(stop.clone());
        let outcome = call_caught(body.instrument(tracing::info_span!("run", run)), None).await;
        let failure = match outcome {
            Ok(()) if stop.is_cancelled() || lifetime.stop_requested_token().is_cancelled() => {
                return;
            }
            Ok(()) => {
                tracing::info!(ran_for = ?began.elapsed(), "body completed; the host keeps running");
                return;
            }
            Err(failure) => failure,
        };
        if stop.is_cancelled() {
            tracing::error!(run, error = %failure, "failed while stopping");
            incidents.record(&info, format!("failed while stopping: {failure}"));
            return;
        }
        match info.policy() {
            FailurePolicy::StopHost => {
                tracing::error!(run, error = %failure, "failed; stopping the host (policy: stop)");
                fail_host(&info, &lifetime, &incidents, &failure);
                return;
            }
            FailurePolicy::Ignore => {
                tracing::error!(
                    run,
                    error = %failure,
                    "failed; the service stays stopped and the host keeps running (policy: ignore)"
                );
                return;
            }
            FailurePolicy::Restart(restart) => {
                if began.elapsed() >= restart.max_backoff() {
                    consecutive_failures = 0;
                }
                consecutive_failures += 1;
                if consecutive_failures > restart.max_restarts() {
                    tracing::error!(
                        run,
                        error = %failure,
                        restarts = restart.max_restarts(),
                        "failed again after its last restart; stopping the host (policy: restart)"
                    );
                    fail_host(&info, &lifetime, &incidents, &failure);
                    return;
                }
                let delay = restart.jittered_delay(consecutive_failures);
                tracing::warn!(
                    run,
                    error = %failure,
                    restart = consecutive_failures,
                    of = restart.max_restarts(),
                    ?delay,
                    "failed; restarting after a backoff (policy: restart)"
                );
                if !sleep_unless_stopped(delay, &stop).await {
                    return;
                }
            }
        }
    }
}

fn fail_host(info: &ServiceInfo, lifetime: &Lifetime, incidents: &Incidents, failure: &Failure) {
    incidents.record(info, format!("failed: {failure}"));
    lifetime.request_stop(StopReason::ServiceFailed {
        service: info.name().to_owned(),
    });
}

/// Sleeps for `delay`; returns `false` early if `stop` fires.
async fn sleep_unless_stopped(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}
