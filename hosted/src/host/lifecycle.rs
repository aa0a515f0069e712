//! The start and stop sequences: services started one at a time in start order, stopped in
//! reverse within one shutdown budget, with the lifetime events in between.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument as _;

use super::supervisor::{Incident, Incidents, supervise};
use crate::di::Container;
use crate::di::RunContext;
use crate::di::ScopeExit;
use crate::registry::MakeService;
use crate::service::Failure;
use crate::service::{ApplicationLifetime, StopReason};
use crate::service::{ErasedService, call_caught};
use crate::service::{ServiceContext, ServiceInfo};
use crate::util::BoxFuture;

/// A service the host will start: its facts, its stop token and how to build it.
pub(crate) struct Planned {
    pub(crate) info: ServiceInfo,
    pub(crate) stop: CancellationToken,
    pub(crate) make: MakeService,
    /// Whether the service's runs need a scope.
    pub(crate) needs_scope: bool,
}

/// A service that has been built, with what the host needs to drive it.
struct Built {
    info: ServiceInfo,
    stop: CancellationToken,
    service: Arc<dyn ErasedService>,
    span: tracing::Span,
}

/// A service that has started: its body, if it has one, runs under its supervisor.
pub(crate) struct Started {
    built: Built,
    supervisor: AbortOnDropHandle<()>,
}

/// What the host shares between its phases.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) lifetime: ApplicationLifetime,
    pub(crate) container: Arc<Container>,
    pub(crate) incidents: Incidents,
    pub(crate) startup_timeout: Option<Duration>,
    pub(crate) shutdown_timeout: Duration,
}

/// How a run of the host ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Outcome {
    reason: Option<StopReason>,
    incidents: Vec<Incident>,
}

impl Outcome {
    /// Why the host stopped, if it got as far as being asked to.
    #[must_use]
    pub fn reason(&self) -> Option<&StopReason> {
        self.reason.as_ref()
    }

    /// The services that failed, could not start, or were abandoned at the end of the shutdown
    /// budget.
    #[must_use]
    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    /// Whether everything started and stopped cleanly.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.incidents.is_empty() && !self.reason.as_ref().is_some_and(StopReason::is_failure)
    }

    /// The process exit code this outcome calls for: 0 on success, 1 otherwise.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.is_success())
    }
}

impl Shared {
    fn service_context(
        &self,
        info: &ServiceInfo,
        cancellation: &CancellationToken,
    ) -> ServiceContext {
        ServiceContext::new(info.clone(), self.lifetime.clone(), cancellation.clone())
    }

    /// Starts every service in order. On failure, or when a stop is requested during startup,
    /// stops what was started and returns the outcome.
    pub(crate) async fn start_all(&self, planned: Vec<Planned>) -> Result<Vec<Started>, Outcome> {
        let began = Instant::now();
        if planned.is_empty() {
            tracing::warn!(
                "no services are registered: if they live in a library crate, link it with \
                 `hosted::run!(link = [that_crate])`, or register services on the host builder"
            );
        }
        let deadline = self.startup_timeout.map(|budget| began + budget);
        let cancellation = self.lifetime.stop_requested_token().child_token();
        let _startup_timer = deadline.map(|deadline| cancel_at(deadline, cancellation.clone()));

        if !self.build_singletons(deadline).await {
            return Err(self.stop_all(Vec::new()).await);
        }
        let Ok(built) = self.build_all(planned, deadline).await else {
            return Err(self.stop_all(Vec::new()).await);
        };
        for service in &built {
            let cx = self.service_context(&service.info, &cancellation);
            let call = hook(&service.service, cx, |s, cx| s.starting(cx));
            if !self
                .start_step(service, "its `starting` hook", call, deadline)
                .await
            {
                return Err(self.stop_all(Vec::new()).await);
            }
        }
        let mut started = Vec::with_capacity(built.len());
        for service in built {
            if self.lifetime.stop_requested_token().is_cancelled() {
                return Err(self.abort_startup(started).await);
            }
            let service_began = Instant::now();
            let cx = self.service_context(&service.info, &cancellation);
            let call = hook(&service.service, cx, |s, cx| s.start(cx));
            if !self.start_step(&service, "start", call, deadline).await {
                return Err(self.abort_startup(started).await);
            }
            let supervisor = AbortOnDropHandle::new(tokio::spawn(
                supervise(
                    Arc::clone(&service.service),
                    service.info.clone(),
                    service.stop.clone(),
                    self.lifetime.clone(),
                    self.incidents.clone(),
                )
                .instrument(service.span.clone()),
            ));
            service.span.in_scope(|| {
                tracing::info!(elapsed = ?service_began.elapsed(), "started");
            });
            started.push(Started {
                built: service,
                supervisor,
            });
        }
        for service in &started {
            let cx = self.service_context(&service.built.info, &cancellation);
            let call = hook(&service.built.service, cx, |s, cx| s.started(cx));
            if !self
                .start_step(&service.built, "its `started` hook", call, deadline)
                .await
            {
                return Err(self.abort_startup(started).await);
            }
        }
        if self.lifetime.stop_requested_token().is_cancelled() {
            return Err(self.abort_startup(started).await);
        }
        tracing::info!(
            services = started.len(),
            elapsed = ?began.elapsed(),
            "application started; press Ctrl+C to shut down"
        );
        self.lifetime.mark_started();
        Ok(started)
    }

    /// Builds every singleton before any service starts, so a failing factory stops startup
    /// with the registration named. Returns whether startup may go on.
    async fn build_singletons(&self, deadline: Option<Instant>) -> bool {
        let container = Arc::clone(&self.container);
        let built = call_caught(async move { container.build_singletons().await }, deadline).await;
        let Err(failure) = built else {
            return true;
        };
        let culprit = match &failure {
            Failure::Error(error) => match error.downcast_ref::<crate::di::InjectError>() {
                Some(crate::di::InjectError::Failed { type_name, .. }) => (*type_name).to_owned(),
                _ => "a singleton".to_owned(),
            },
            _ => "a singleton".to_owned(),
        };
        tracing::error!(registration = %culprit, error = %failure, "could not build a singleton; aborting startup");
        self.incidents
            .record_named(&culprit, format!("could not be built: {failure}"));
        self.lifetime
            .request_stop(StopReason::StartFailed { service: culprit });
        false
    }

    /// Builds every service (and so every registered type it needs) before any starts.
    async fn build_all(
        &self,
        planned: Vec<Planned>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Built>, ()> {
        let mut built = Vec::with_capacity(planned.len());
        for Planned {
            info,
            stop,
            make,
            needs_scope,
        } in planned
        {
            // Not `name`: the JSON format writes the span's own name under that key as well.
            let span = tracing::info_span!("service", service = %info.name());
            let cx = RunContext::new(
                info.clone(),
                stop.clone(),
                self.lifetime.clone(),
                Arc::clone(&self.container),
                needs_scope,
            );
            let made = call_caught(make(cx).instrument(span.clone()), deadline).await;
            match made {
                Ok(service) => built.push(Built {
                    info,
                    stop,
                    service,
                    span,
                }),
                Err(failure) => {
                    span.in_scope(|| tracing::error!(error = %failure, "could not be built"));
                    self.incidents
                        .record(&info, format!("could not be built: {failure}"));
                    self.lifetime.request_stop(StopReason::StartFailed {
                        service: info.name().to_owned(),
                    });
                    return Err(());
                }
            }
        }
        Ok(built)
    }

    /// Runs one step of a service's startup; on failure records it and requests the stop.
    /// Returns whether startup may go on.
    async fn start_step(
        &self,
        service: &Built,
        step: &str,
        call: BoxFuture<'static, Result<(), crate::service::BoxError>>,
        deadline: Option<Instant>,
    ) -> bool {
        let result = call_caught(call.instrument(service.span.clone()), deadline).await;
        let _entered = service.span.enter();
        match result {
            Ok(()) => true,
            Err(failure)
                if self.lifetime.stop_requested_token().is_cancelled()
                    && !matches!(failure, Failure::TimedOut) =>
            {
                // The step saw the stop request (a signal during startup) and gave up: not a failure.
                tracing::warn!(error = %failure, "{step} was interrupted by the stop request");
                false
            }
            Err(failure) => {
                let what = match failure {
                    Failure::TimedOut => format!("{step} did not finish within the startup budget"),
                    failure => format!("{step} failed: {failure}"),
                };
                tracing::error!("{what}; aborting startup");
                self.incidents.record(&service.info, what);
                self.lifetime.request_stop(StopReason::StartFailed {
                    service: service.info.name().to_owned(),
                });
                false
            }
        }
    }

    async fn abort_startup(&self, started: Vec<Started>) -> Outcome {
        if !started.is_empty() {
            tracing::info!(
                services = started.len(),
                "stopping the services already started"
            );
        }
        self.stop_all(started).await
    }

    /// Stops every started service in reverse order within the shutdown budget.
    pub(crate) async fn stop_all(&self, started: Vec<Started>) -> Outcome {
        self.lifetime.mark_stopping();
        let reason = self.lifetime.stop_reason();
        if let Some(reason) = &reason {
            tracing::info!(%reason, "application is shutting down");
        } else {
            tracing::info!("application is shutting down");
        }
        let began = Instant::now();
        let deadline = began + self.shutdown_timeout;
        self.lifetime.set_shutdown_deadline(deadline);
        let cancellation = CancellationToken::new();
        let _budget_timer = cancel_at(deadline, cancellation.clone());

        for service in started.iter().rev() {
            let cx = self.service_context(&service.built.info, &cancellation);
            let call = hook(&service.built.service, cx, |s, cx| s.stopping(cx));
            self.stop_step(&service.built, "its `stopping` hook", call, deadline)
                .await;
        }
        let mut stopped = Vec::with_capacity(started.len());
        let mut remaining = started;
        while let Some(Started {
            built,
            mut supervisor,
        }) = remaining.pop()
        {
            let service_began = Instant::now();
            built.stop.cancel();
            if tokio::time::timeout_at(deadline, &mut supervisor)
                .await
                .is_err()
            {
                remaining.push(Started { built, supervisor });
                self.abandon(remaining);
                break;
            }
            let cx = self.service_context(&built.info, &cancellation);
            let call = hook(&built.service, cx, |s, cx| s.stop(cx));
            if !self.stop_step(&built, "stop", call, deadline).await {
                remaining.push(Started { built, supervisor });
                self.abandon(remaining);
                break;
            }
            built.span.in_scope(|| {
                tracing::info!(elapsed = ?service_began.elapsed(), "stopped");
            });
            stopped.push(built);
        }
        for service in &stopped {
            let cx = self.service_context(&service.info, &cancellation);
            let call = hook(&service.service, cx, |s, cx| s.stopped(cx));
            self.stop_step(service, "its `stopped` hook", call, deadline)
                .await;
        }
        self.dispose_singletons(deadline).await;
        self.lifetime.mark_stopped();
        let outcome = Outcome {
            reason,
            incidents: self.incidents.take(),
        };
        if outcome.is_success() {
            tracing::info!(elapsed = ?began.elapsed(), "application stopped");
        } else {
            tracing::error!(
                elapsed = ?began.elapsed(),
                failed = %outcome.incidents.iter().map(|incident| incident.service.as_str()).collect::<Vec<_>>().join(", "),
                "application stopped after failures"
            );
        }
        outcome
    }

    /// Disposes the singletons once every service has stopped, within what is left of the
    /// budget; they learn whether the host ends cleanly.
    async fn dispose_singletons(&self, deadline: Instant) {
        if !self.container.has_disposables() {
            return;
        }
        let clean = self.incidents.is_empty()
            && !self
                .lifetime
                .stop_reason()
                .is_some_and(|reason| reason.is_failure());
        let exit = if clean {
            ScopeExit::Succeeded
        } else {
            ScopeExit::Failed
        };
        let container = Arc::clone(&self.container);
        let disposed = call_caught(
            async move {
                container
                    .dispose_singletons(exit)
                    .await
                    .map_err(crate::service::BoxError::from)
            },
            Some(deadline),
        )
        .await;
        if let Err(failure) = disposed {
            tracing::error!(error = %failure, "disposing the singletons failed");
            self.incidents
                .record_named("singletons", format!("disposal failed: {failure}"));
        }
    }

    /// Runs one step of a service's stop. Returns `false` only when the budget ran out.
    async fn stop_step(
        &self,
        service: &Built,
        step: &str,
        call: BoxFuture<'static, Result<(), crate::service::BoxError>>,
        deadline: Instant,
    ) -> bool {
        let result = call_caught(call.instrument(service.span.clone()), Some(deadline)).await;
        let _entered = service.span.enter();
        match result {
            Ok(()) => true,
            Err(Failure::TimedOut) => false,
            Err(failure) => {
                tracing::error!(error = %failure, "{step} failed");
                self.incidents
                    .record(&service.info, format!("{step} failed: {failure}"));
                true
            }
        }
    }

    /// Gives up on services still running when the shutdown budget ends: their tokens fire,
    /// their tasks are aborted, and each is named in the log and the outcome. The last of
    /// `remaining` is the service the host was waiting for; the others never got their turn.
    fn abandon(&self, remaining: Vec<Started>) {
        let budget = self.shutdown_timeout;
        for (position, Started { built, supervisor }) in remaining.into_iter().rev().enumerate() {
            built.stop.cancel();
            drop(supervisor);
            let what = if position == 0 {
                format!("abandoned: still running when the shutdown budget of {budget:?} ran out")
            } else {
                format!(
                    "abandoned: the shutdown budget of {budget:?} ran out before its turn to stop \
                     (its stop token fired; `stop` was not called)"
                )
            };
            built.span.in_scope(|| tracing::error!("{what}"));
            self.incidents.record(&built.info, what);
        }
    }
}

/// Calls one of a service's methods on an owned copy of the service and context, so the call
/// can run on its own task.
fn hook(
    service: &Arc<dyn ErasedService>,
    cx: ServiceContext,
    method: for<'a> fn(
        &'a dyn ErasedService,
        &'a ServiceContext,
    ) -> BoxFuture<'a, Result<(), crate::service::BoxError>>,
) -> BoxFuture<'static, Result<(), crate::service::BoxError>> {
    let service = Arc::clone(service);
    Box::pin(async move { method(&*service, &cx).await })
}

/// Cancels `token` at `deadline`, unless the returned handle is dropped first.
fn cancel_at(deadline: Instant, token: CancellationToken) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        token.cancel();
    }))
}
