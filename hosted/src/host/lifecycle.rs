//! The start and stop sequences: services started one at a time in start order, stopped in
//! reverse within one shutdown budget, with the lifetime events in between.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument as _;

use super::supervisor::{
    ExitGuard, Exits, Incident, Incidents, Supervised, Supervision, supervise,
};
use crate::di::Container;
use crate::di::RunContext;
use crate::di::ScopeExit;
use crate::registry::MakeService;
use crate::service::Failure;
use crate::service::{ApplicationLifetime, StopReason};
use crate::service::{ErasedService, call_caught};
use crate::service::{ServiceContext, ServiceInfo};
use crate::status::{ServiceState, ServiceStatus};
use crate::telemetry::{ServiceSpan, in_service_span};
use crate::util::BoxFuture;

/// A service the host will start: its facts, its stop token and how to build it.
pub(crate) struct Planned {
    pub(crate) info: ServiceInfo,
    pub(crate) stop: CancellationToken,
    pub(crate) make: MakeService,
    /// Whether the service's runs need a scope.
    pub(crate) needs_scope: bool,
    /// What the service resolves, when known: for `--list`.
    pub(crate) declare: Option<fn(&mut crate::di::Dependencies)>,
    /// Where the service keeps its work, when not in memory.
    #[cfg_attr(
        not(feature = "postgres"),
        expect(
            dead_code,
            reason = "read by the hooks of the features that keep work elsewhere"
        )
    )]
    pub(crate) store: Option<&'static str>,
    /// Where its runs are recorded.
    pub(crate) status: Arc<ServiceStatus>,
}

/// A service that has been built, with what the host needs to drive it.
pub(crate) struct Built {
    stop: CancellationToken,
    service: Arc<dyn ErasedService>,
    span: ServiceSpan,
    status: Arc<ServiceStatus>,
}

impl Built {
    /// The service's facts, as its status keeps them.
    fn info(&self) -> &ServiceInfo {
        self.status.info()
    }
}

/// A service that has started: its body, if it has one, runs under its supervisor.
pub(crate) struct Started {
    built: Built,
    supervisor: AbortOnDropHandle<()>,
    /// Its position in start order, which its supervisor reports to [`Exits`] as it ends.
    slot: usize,
}

/// What the host shares between its phases.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    /// The host's lifetime and incidents, which the supervisors share, and where they report
    /// that they ended.
    pub(crate) supervision: Arc<Supervision>,
    pub(crate) container: Arc<Container>,
    pub(crate) startup_timeout: Option<Duration>,
    pub(crate) shutdown_timeout: Duration,
}

/// How a run of the host ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Outcome {
    reason: Option<StopReason>,
    incidents: Vec<Incident>,
    /// Whether a step overran the shutdown budget, so something may still be stuck.
    overran: bool,
}

impl Outcome {
    /// The outcome of a stop that could not finish: its task was cancelled by the runtime
    /// shutting down, or panicked.
    pub(crate) fn interrupted(reason: Option<StopReason>, what: String) -> Self {
        Self {
            reason,
            incidents: vec![Incident {
                service: "hosted::host".to_owned(),
                what,
            }],
            overran: true,
        }
    }

    /// Whether a step overran the shutdown budget: a task may still be stuck, so the runtime
    /// should not wait for it.
    pub(crate) fn overran_budget(&self) -> bool {
        self.overran
    }

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
    /// The host's lifetime.
    pub(crate) fn lifetime(&self) -> &ApplicationLifetime {
        &self.supervision.lifetime
    }

    /// Where the host records what went wrong.
    pub(crate) fn incidents(&self) -> &Incidents {
        &self.supervision.incidents
    }

    fn service_context(
        &self,
        info: &ServiceInfo,
        cancellation: &CancellationToken,
    ) -> ServiceContext {
        ServiceContext::new(info.clone(), self.lifetime().clone(), cancellation.clone())
    }

    /// Starts every service in order. On failure, or when a stop is requested during startup,
    /// stops what was started and returns the outcome.
    ///
    /// A stop requested before startup begins starts nothing and runs no hook at all, as in .NET.
    /// Once a service's `starting` hook has run, it gets its `stopping` and `stopped` hooks too,
    /// whether or not it got as far as `start`.
    pub(crate) async fn start_all(&self, planned: Vec<Planned>) -> Result<Vec<Started>, Outcome> {
        let began = Instant::now();
        if self.lifetime().stop_requested_token().is_cancelled() {
            tracing::info!("a stop was requested before startup: nothing starts");
            return Err(self.stop_all(Vec::new(), Vec::new()).await);
        }
        if planned.is_empty() {
            tracing::warn!(
                "no services are registered: if they live in a library crate, link it with \
                 `hosted::run!(link = [that_crate])`, or register services on the host builder"
            );
        }
        let deadline = self
            .startup_timeout
            .map(|budget| saturating_after(began, budget));
        let cancellation = self.lifetime().stop_requested_token().child_token();
        let _startup_timer = deadline.map(|deadline| cancel_at(deadline, cancellation.clone()));

        if !self.build_singletons(deadline).await {
            return Err(self.stop_all(Vec::new(), Vec::new()).await);
        }
        let Ok(built) = self.build_all(planned, deadline).await else {
            return Err(self.stop_all(Vec::new(), Vec::new()).await);
        };
        let mut hooked: Vec<Built> = Vec::with_capacity(built.len());
        for service in built {
            if self.lifetime().stop_requested_token().is_cancelled() {
                return Err(self.stop_all(Vec::new(), hooked).await);
            }
            if service.service.default_hooks() {
                hooked.push(service);
                continue;
            }
            let cx = self.service_context(service.info(), &cancellation);
            let call = hook(&service.service, cx, |s, cx| s.starting(cx));
            let ok = self
                .start_step(&service, "its `starting` hook", call, deadline)
                .await;
            hooked.push(service);
            if !ok {
                return Err(self.stop_all(Vec::new(), hooked).await);
            }
        }
        let mut started = Vec::with_capacity(hooked.len());
        let mut waiting = hooked.into_iter();
        while let Some(service) = waiting.next() {
            if self.lifetime().stop_requested_token().is_cancelled() {
                let rest = std::iter::once(service).chain(waiting).collect();
                return Err(self.abort_startup(started, rest).await);
            }
            let service_began = Instant::now();
            service.status.set_state(ServiceState::Starting);
            if !service.service.default_hooks() {
                let cx = self.service_context(service.info(), &cancellation);
                let call = hook(&service.service, cx, |s, cx| s.start(cx));
                if !self.start_step(&service, "start", call, deadline).await {
                    let rest = std::iter::once(service).chain(waiting).collect();
                    return Err(self.abort_startup(started, rest).await);
                }
            }
            let slot = started.len();
            started.push(self.launch(service, slot, service_began));
        }
        for service in &started {
            if service.built.service.default_hooks() {
                continue;
            }
            let cx = self.service_context(service.built.info(), &cancellation);
            let call = hook(&service.built.service, cx, |s, cx| s.started(cx));
            if !self
                .start_step(&service.built, "its `started` hook", call, deadline)
                .await
            {
                return Err(self.abort_startup(started, Vec::new()).await);
            }
        }
        if self.lifetime().stop_requested_token().is_cancelled() {
            return Err(self.abort_startup(started, Vec::new()).await);
        }
        tracing::info!(
            services = started.len(),
            elapsed = ?began.elapsed(),
            "application started; press Ctrl+C to shut down"
        );
        self.lifetime().mark_started();
        Ok(started)
    }

    /// Spawns the supervisor of a service whose start returned: from now on it runs.
    fn launch(&self, service: Built, slot: usize, began: Instant) -> Started {
        let supervisor = AbortOnDropHandle::new(tokio::spawn(in_service_span(
            service.span.clone(),
            supervise(Supervised {
                service: Arc::clone(&service.service),
                stop: service.stop.clone(),
                status: Arc::clone(&service.status),
                exit: ExitGuard::new(&self.supervision, slot),
            }),
        )));
        service.info().activity().set_running(true);
        service.span.span().in_scope(|| {
            tracing::info!(elapsed = ?began.elapsed(), "started");
        });
        Started {
            built: service,
            supervisor,
            slot,
        }
    }

    /// Builds every singleton before any service starts, so a failing factory stops startup
    /// with the registration named. Returns whether startup may go on.
    async fn build_singletons(&self, deadline: Option<Instant>) -> bool {
        let container = Arc::clone(&self.container);
        let built = call_caught(
            move || async move { container.build_singletons().await },
            deadline,
        )
        .await;
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
        self.incidents()
            .record_named(&culprit, format!("could not be built: {failure}"));
        self.lifetime()
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
            status,
            ..
        } in planned
        {
            let span = ServiceSpan::new(info.name());
            let cx = RunContext::with_status(
                info.clone(),
                stop.clone(),
                Arc::clone(&self.container),
                needs_scope,
                Some(Arc::clone(&status)),
            );
            let made = call_caught(|| make(cx).instrument(span.span().clone()), deadline).await;
            match made {
                Ok(service) => built.push(Built {
                    stop,
                    service,
                    span,
                    status,
                }),
                Err(failure) => {
                    span.span()
                        .in_scope(|| tracing::error!(error = %failure, "could not be built"));
                    self.incidents()
                        .record(&info, format!("could not be built: {failure}"));
                    self.lifetime().request_stop(StopReason::StartFailed {
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
        let result = call_caught(|| call.instrument(service.span.span().clone()), deadline).await;
        let _entered = service.span.span().enter();
        match result {
            Ok(()) => true,
            Err(failure)
                if self.lifetime().stop_requested_token().is_cancelled()
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
                self.incidents().record(service.info(), what);
                self.lifetime().request_stop(StopReason::StartFailed {
                    service: service.info().name().to_owned(),
                });
                false
            }
        }
    }

    async fn abort_startup(&self, started: Vec<Started>, unstarted: Vec<Built>) -> Outcome {
        if !started.is_empty() {
            tracing::info!(
                services = started.len(),
                "stopping the services already started"
            );
        }
        self.stop_all(started, unstarted).await
    }

    /// Stops every started service in reverse order within the shutdown budget. `unstarted` are
    /// the services after them in start order whose `starting` hook ran but whose `start` did
    /// not: they get their `stopping` and `stopped` hooks, nothing else.
    ///
    /// Every service gets every step, as .NET calls every `StopAsync`: once a step overruns the
    /// budget, the steps still due run with a cancelled token within one short grace
    /// ([`SHUTDOWN_GRACE`]) they all share, so a stubborn service costs the others their time, not
    /// their stop, and the process never outlives the budget by more than the grace.
    pub(crate) async fn stop_all(&self, started: Vec<Started>, unstarted: Vec<Built>) -> Outcome {
        let reason = self.lifetime().stop_reason();
        if let Some(reason) = &reason {
            tracing::info!(%reason, "application is shutting down");
        } else {
            tracing::info!("application is shutting down");
        }
        let began = Instant::now();
        let mut budget = Budget::new(began, self.shutdown_timeout);
        self.lifetime().set_shutdown_deadline(budget.deadline);
        let cancellation = CancellationToken::new();
        let _budget_timer = cancel_at(budget.deadline, cancellation.clone());

        // .NET 8 order: the `stopping` hooks, then `ApplicationStopping` (already fired when the
        // stop came from a signal, a failure or `stop_application`), then each `stop`.
        let hooked: Vec<&Built> = unstarted
            .iter()
            .rev()
            .chain(started.iter().rev().map(|started| &started.built))
            .collect();
        // Services whose hooks are all defaults have none to call: no waves to plan for them.
        let any_hooks = hooked
            .iter()
            .any(|service| !service.service.default_hooks());
        for wave in any_hooks.then(|| stop_waves(&hooked)).into_iter().flatten() {
            let wave: Vec<&Built> = wave.into_iter().map(|index| hooked[index]).collect();
            self.hook_wave(
                &wave,
                "its `stopping` hook",
                &cancellation,
                &mut budget,
                |s, cx| s.stopping(cx),
            )
            .await;
        }
        drop(hooked);
        self.lifetime().mark_stopping();

        let mut stopped = Vec::with_capacity(started.len() + unstarted.len());
        // Those whose `start` never ran come last in start order, so first here; they have no
        // body or `stop` to wait for.
        stopped.extend(unstarted.into_iter().rev());
        let mut held_up = Vec::new();
        let mut ends = Ends::new(started.len());
        let mut remaining: Vec<Option<Started>> = started.into_iter().rev().map(Some).collect();
        let waves = {
            let built: Vec<&Built> = remaining
                .iter()
                .flatten()
                .map(|started| &started.built)
                .collect();
            stop_waves(&built)
        };
        for wave in waves {
            let wave: Vec<Started> = wave
                .into_iter()
                .filter_map(|index| remaining[index].take())
                .collect();
            self.stop_wave(
                wave,
                &mut ends,
                &cancellation,
                &mut budget,
                &mut held_up,
                &mut stopped,
            )
            .await;
        }
        let stopped_refs: Vec<&Built> = stopped.iter().collect();
        let waves = any_hooks.then(|| stop_waves(&stopped_refs));
        for wave in waves.into_iter().flatten() {
            let wave: Vec<&Built> = wave.into_iter().map(|index| stopped_refs[index]).collect();
            self.hook_wave(
                &wave,
                "its `stopped` hook",
                &cancellation,
                &mut budget,
                |s, cx| s.stopped(cx),
            )
            .await;
        }
        drop(stopped_refs);
        self.dispose_singletons(&mut budget).await;
        self.lifetime().mark_stopped();
        self.finish(began, reason, &held_up, budget.overrun_by.is_some())
    }

    /// Stops one wave of services that nothing orders among themselves: every body is told to
    /// stop at once, the wave waits for all of them together, then each `stop` is called, all
    /// within the budget.
    async fn stop_wave(
        &self,
        wave: Vec<Started>,
        ends: &mut Ends,
        cancellation: &CancellationToken,
        budget: &mut Budget,
        held_up: &mut Vec<String>,
        stopped: &mut Vec<Built>,
    ) {
        let began = Instant::now();
        // Who overran before this wave's turn came: its members were held up by that one.
        let late = budget.overrun_by.clone();
        for member in &wave {
            member.built.status.set_state(ServiceState::Stopping);
            member.built.stop.cancel();
        }
        let slots: Vec<usize> = wave.iter().map(|member| member.slot).collect();
        let mut ended = vec![true; wave.len()];
        let mut cursor = 0;
        // Bodies end as their tokens fire, side by side: the wave waits for the last of them, and
        // when the budget runs out, gives up on them one at a time in the wave's order, as each
        // later one then gets the grace.
        while let Some(position) = self
            .wait_for(ends, &slots, &mut cursor, budget.limit())
            .await
        {
            let Started {
                built, supervisor, ..
            } = &wave[position];
            supervisor.abort();
            ends.give_up(slots[position]);
            ended[position] = false;
            let what = match &late {
                None => format!(
                    "abandoned: still running when the shutdown budget of {:?} ran out",
                    self.shutdown_timeout
                ),
                Some(offender) => format!(
                    "abandoned: held up by `{offender}`, its turn to stop came after the \
                     shutdown budget of {:?} ran out and it was still running {SHUTDOWN_GRACE:?} \
                     later",
                    self.shutdown_timeout
                ),
            };
            built.span.span().in_scope(|| tracing::error!("{what}"));
            self.incidents().record(built.info(), what);
            budget.overrun(built.info().name());
        }
        let members: Vec<Built> = wave.into_iter().map(|member| member.built).collect();
        let refs: Vec<&Built> = members.iter().collect();
        let cleanly = self
            .hook_wave(&refs, "stop", cancellation, budget, |s, cx| s.stop(cx))
            .await;
        drop(refs);
        for ((built, finished), stopped_cleanly) in members.into_iter().zip(ended).zip(cleanly) {
            built.info().activity().set_running(false);
            if let Some(offender) = &late {
                built.span.span().in_scope(|| {
                    tracing::warn!(
                        held_up_by = %offender,
                        "its turn to stop came after the shutdown budget ran out: stopped with a \
                         cancelled token"
                    );
                });
                held_up.push(built.info().name().to_owned());
            }
            if finished && stopped_cleanly {
                built.span.span().in_scope(|| {
                    tracing::info!(elapsed = ?began.elapsed(), "stopped");
                });
            }
            built.status.set_state(ServiceState::Stopped);
            stopped.push(built);
        }
    }

    /// Waits until every supervisor of `slots` from `cursor` on has ended, or `limit`: then
    /// returns the position in `slots` of the first still running. The stop is woken only once
    /// as many supervisors have ended as the wave has still running (one wake-up for a wave
    /// whose bodies all return when told), and `cursor` only moves forward: each wake-up's count
    /// of those still running is paid for by as many ends, so a stop costs `O(n)` however the
    /// ends are spread over wake-ups.
    async fn wait_for(
        &self,
        ends: &mut Ends,
        slots: &[usize],
        cursor: &mut usize,
        limit: Instant,
    ) -> Option<usize> {
        // Registered with the timer only if the first check finds a body still running.
        let mut timer = std::pin::pin!(tokio::time::sleep_until(limit));
        loop {
            let seen = ends.collect(&self.supervision.exits);
            while slots.get(*cursor).is_some_and(|&slot| ends.ended(slot)) {
                *cursor += 1;
            }
            if *cursor == slots.len() {
                return None;
            }
            // Woken only once as many supervisors have ended as this wave still has running:
            // not once per end.
            let running = slots[*cursor..]
                .iter()
                .filter(|&&slot| !ends.ended(slot))
                .count();
            tokio::select! {
                biased;
                () = self.supervision.exits.ended(seen, running) => {}
                () = timer.as_mut() => {
                    ends.collect(&self.supervision.exits);
                    while slots.get(*cursor).is_some_and(|&slot| ends.ended(slot)) {
                        *cursor += 1;
                    }
                    return (*cursor < slots.len()).then_some(*cursor);
                }
            }
        }
    }

    /// Runs one hook of every service of a wave concurrently, each bounded by the budget, then
    /// reports each outcome in the wave's order. Returns, per service, whether its hook finished
    /// in time without failing.
    async fn hook_wave(
        &self,
        wave: &[&Built],
        step: &str,
        cancellation: &CancellationToken,
        budget: &mut Budget,
        method: for<'a> fn(
            &'a dyn ErasedService,
            &'a ServiceContext,
        ) -> BoxFuture<'a, Result<(), crate::service::BoxError>>,
    ) -> Vec<bool> {
        let limit = budget.limit();
        // A default hook does nothing and cannot fail: it is not called at all.
        let calls = wave
            .iter()
            .filter(|service| !service.service.default_hooks())
            .map(|service| {
                let cx = self.service_context(service.info(), cancellation);
                let call =
                    || hook(&service.service, cx, method).instrument(service.span.span().clone());
                call_caught(call, Some(limit))
            });
        let mut results = join_all(calls.collect()).await.into_iter();
        wave.iter()
            .map(|service| {
                if service.service.default_hooks() {
                    return true;
                }
                results
                    .next()
                    .is_none_or(|result| self.report_stop_step(service, step, result, budget))
            })
            .collect()
    }

    /// The outcome, and the final line that tells the offenders from the services they held up.
    fn finish(
        &self,
        began: Instant,
        reason: Option<StopReason>,
        held_up: &[String],
        overran: bool,
    ) -> Outcome {
        let outcome = Outcome {
            reason,
            incidents: self.incidents().take(),
            overran,
        };
        if outcome.is_success() {
            tracing::info!(elapsed = ?began.elapsed(), "application stopped");
        } else {
            let failed = outcome
                .incidents
                .iter()
                .map(|incident| incident.service.as_str())
                .filter(|service| !held_up.iter().any(|held| held == service));
            let mut names: Vec<&str> = Vec::new();
            for name in failed {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            if held_up.is_empty() {
                tracing::error!(
                    elapsed = ?began.elapsed(),
                    failed = %names.join(", "),
                    "application stopped after failures"
                );
            } else {
                tracing::error!(
                    elapsed = ?began.elapsed(),
                    failed = %names.join(", "),
                    held_up = %held_up.join(", "),
                    "application stopped after failures"
                );
            }
        }
        outcome
    }

    /// Disposes the singletons once every service has stopped, within what is left of the
    /// budget; they learn whether the host ends cleanly.
    async fn dispose_singletons(&self, budget: &mut Budget) {
        if !self.container.has_disposables() {
            return;
        }
        let clean = self.incidents().is_empty()
            && !self
                .lifetime()
                .stop_reason()
                .is_some_and(|reason| reason.is_failure());
        let exit = if clean {
            ScopeExit::Succeeded
        } else {
            ScopeExit::Failed
        };
        let container = Arc::clone(&self.container);
        let disposed = call_caught(
            move || async move {
                container
                    .dispose_singletons(exit)
                    .await
                    .map_err(crate::service::BoxError::from)
            },
            Some(budget.limit()),
        )
        .await;
        match disposed {
            Ok(()) => {}
            Err(Failure::TimedOut) => {
                let what = budget.overran("disposal");
                tracing::error!("{what}");
                self.incidents().record_named("singletons", what);
                budget.overrun("singletons");
            }
            Err(failure) => {
                tracing::error!(error = %failure, "disposing the singletons failed");
                self.incidents()
                    .record_named("singletons", format!("disposal failed: {failure}"));
            }
        }
    }

    /// Reports how one step of a service's stop went; a step that overran the budget is an
    /// incident like a failing one, whatever the phase. Returns whether the step finished in
    /// time without failing.
    fn report_stop_step(
        &self,
        service: &Built,
        step: &str,
        result: Result<(), Failure>,
        budget: &mut Budget,
    ) -> bool {
        let _entered = service.span.span().enter();
        match result {
            Ok(()) => true,
            Err(Failure::TimedOut) => {
                let what = budget.overran(step);
                tracing::error!("{what}");
                self.incidents().record(service.info(), what);
                budget.overrun(service.info().name());
                false
            }
            Err(failure) => {
                tracing::error!(error = %failure, "{step} failed");
                self.incidents()
                    .record(service.info(), format!("{step} failed: {failure}"));
                false
            }
        }
    }
}

/// Which supervisors have ended, by slot, as the stop learns it from [`Exits`]; one the stop
/// gave up on counts as ended.
struct Ends {
    ended: Vec<bool>,
    fresh: Vec<usize>,
}

impl Ends {
    fn new(count: usize) -> Self {
        Self {
            ended: vec![false; count],
            fresh: Vec::new(),
        }
    }

    /// Learns the ends reported since the last call; returns how many supervisors have ended
    /// so far, as [`Exits::drain`] does.
    fn collect(&mut self, exits: &Exits) -> usize {
        let seen = exits.drain(&mut self.fresh);
        for slot in self.fresh.drain(..) {
            if let Some(ended) = self.ended.get_mut(slot) {
                *ended = true;
            }
        }
        seen
    }

    fn ended(&self, slot: usize) -> bool {
        self.ended.get(slot).copied().unwrap_or(true)
    }

    fn give_up(&mut self, slot: usize) {
        if let Some(ended) = self.ended.get_mut(slot) {
            *ended = true;
        }
    }
}

/// How long the steps still due once the shutdown budget has run out get, all together: each
/// runs with a cancelled token, so a well-behaved one returns at once.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// The shutdown budget, and who overran it first.
struct Budget {
    span: Duration,
    deadline: Instant,
    late: Instant,
    overrun_by: Option<String>,
}

impl Budget {
    fn new(began: Instant, span: Duration) -> Self {
        let deadline = saturating_after(began, span);
        Self {
            span,
            deadline,
            late: saturating_after(deadline, SHUTDOWN_GRACE),
            overrun_by: None,
        }
    }

    /// Until when the next step may run.
    fn limit(&self) -> Instant {
        if self.overrun_by.is_some() {
            self.late
        } else {
            self.deadline
        }
    }

    /// Records that `name` overran; the first one is the offender.
    fn overrun(&mut self, name: &str) {
        if self.overrun_by.is_none() {
            self.overrun_by = Some(name.to_owned());
        }
    }

    /// What to say of a step that did not finish in time.
    fn overran(&self, step: &str) -> String {
        match &self.overrun_by {
            None => format!(
                "{step} did not finish within the shutdown budget of {:?}",
                self.span
            ),
            Some(offender) => format!(
                "{step} did not finish: held up by `{offender}`, it ran after the shutdown budget \
                 of {:?} and was still running {SHUTDOWN_GRACE:?} later",
                self.span
            ),
        }
    }
}

/// `began + span`, or a point decades away when that does not fit: `Duration::MAX` means no
/// limit.
pub(crate) fn saturating_after(began: Instant, span: Duration) -> Instant {
    const FAR: Duration = Duration::from_hours(24 * 365 * 30);
    began
        .checked_add(span)
        .or_else(|| began.checked_add(FAR))
        .unwrap_or(began)
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

/// Splits services into the waves in which they stop, each a list of indexes into `services`
/// (given in reverse start order, which each wave keeps). A service stops once every service
/// that declared `after` it has stopped; of the services free to stop, those of the highest
/// `order` go first, together. Nothing else orders a stop, so what nothing orders stops at once.
fn stop_waves(services: &[&Built]) -> Vec<Vec<usize>> {
    if services
        .iter()
        .all(|service| service.info().after().next().is_none())
    {
        // Only `order` orders this stop: a wave per level, highest first, no names to look up.
        let mut levels: std::collections::BTreeMap<i32, Vec<usize>> =
            std::collections::BTreeMap::new();
        for (index, service) in services.iter().enumerate() {
            levels
                .entry(service.info().order())
                .or_default()
                .push(index);
        }
        return levels.into_values().rev().collect();
    }
    let position: std::collections::HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(index, service)| (service.info().name(), index))
        .collect();
    // How many services still to stop declared `after` each one.
    let mut waiting_on = vec![0_usize; services.len()];
    for service in services {
        for name in service.info().after() {
            if let Some(&index) = position.get(name) {
                waiting_on[index] += 1;
            }
        }
    }
    // The services free to stop, by `order`.
    let mut free: std::collections::BTreeMap<i32, Vec<usize>> = std::collections::BTreeMap::new();
    for (index, service) in services.iter().enumerate() {
        if waiting_on[index] == 0 {
            free.entry(service.info().order()).or_default().push(index);
        }
    }
    let mut waves = Vec::new();
    let mut placed = 0;
    while let Some((_, mut wave)) = free.pop_last() {
        wave.sort_unstable();
        for &index in &wave {
            for name in services[index].info().after() {
                if let Some(&awaited) = position.get(name) {
                    waiting_on[awaited] -= 1;
                    if waiting_on[awaited] == 0 {
                        let order = services[awaited].info().order();
                        free.entry(order).or_default().push(awaited);
                    }
                }
            }
        }
        placed += wave.len();
        waves.push(wave);
    }
    if placed < services.len() {
        // A circle, which the checks before start refuse: the rest stop in reverse order.
        let placed: std::collections::HashSet<usize> = waves.iter().flatten().copied().collect();
        waves.push(
            (0..services.len())
                .filter(|index| !placed.contains(index))
                .collect(),
        );
    }
    waves
}

/// Polls every future until all are ready, and returns their outputs in order.
async fn join_all<T>(futures: Vec<impl Future<Output = T>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<T>> = std::iter::repeat_with(|| None)
        .take(futures.len())
        .collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
