//! Supervising a service's body under its [`FailurePolicy`], and the incidents collected for the
//! final report.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::service::{
    ApplicationLifetime, ErasedService, Failure, FailurePolicy, ServiceInfo, StopReason,
    call_caught_unbounded,
};
use crate::status::{ServiceState, ServiceStatus};
use crate::telemetry::{RunSpan, in_run};

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

/// The supervisors that have ended, in the order they did. Each reports its slot as its task
/// ends, whether the body returned, the supervisor panicked or its task was aborted, so the stop
/// waits for a whole wave on one notification instead of joining every task in turn: the waiter
/// says how many ends it needs, and only the end that brings that many wakes it.
#[derive(Debug)]
pub(crate) struct Exits {
    state: Mutex<ExitState>,
    notify: Notify,
}

#[derive(Debug)]
struct ExitState {
    /// The slots that ended since the last [`Exits::drain`].
    ended: Vec<usize>,
    /// How many supervisors have ended, ever.
    count: usize,
    /// The `count` at which the waiter wants waking; `usize::MAX` when nobody waits.
    wake_at: usize,
}

impl Default for Exits {
    fn default() -> Self {
        Self {
            state: Mutex::new(ExitState {
                ended: Vec::new(),
                count: 0,
                wake_at: usize::MAX,
            }),
            notify: Notify::new(),
        }
    }
}

impl Exits {
    /// Moves the slots that ended since the last call into `into`, and returns how many
    /// supervisors have ended so far, for [`ended`](Self::ended).
    pub(crate) fn drain(&self, into: &mut Vec<usize>) -> usize {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        into.append(&mut state.ended);
        state.count
    }

    /// Completes once `needed` more supervisors have ended than the `seen` that
    /// [`drain`](Self::drain) returned; ends before the call count, so nothing is missed
    /// between a drain and this. One waiter at a time.
    pub(crate) async fn ended(&self, seen: usize, needed: usize) {
        let target = seen.saturating_add(needed);
        loop {
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.count >= target {
                    state.wake_at = usize::MAX;
                    return;
                }
                state.wake_at = target;
            }
            // A permit left by an earlier wake-up the waiter did not wait for returns at once:
            // the count is checked again.
            self.notify.notified().await;
        }
    }
}

/// What every supervisor of one host shares: the host's lifetime, where failures are recorded,
/// and where each reports its end. One pointer in each supervisor's task.
#[derive(Debug)]
pub(crate) struct Supervision {
    pub(crate) lifetime: ApplicationLifetime,
    pub(crate) incidents: Incidents,
    pub(crate) exits: Exits,
}

impl Supervision {
    pub(crate) fn new(lifetime: ApplicationLifetime, incidents: Incidents) -> Self {
        Self {
            lifetime,
            incidents,
            exits: Exits::default(),
        }
    }
}

/// A supervisor's link to its host's [`Supervision`]; reports the supervisor's end to its
/// [`Exits`] when dropped: moved into the supervisor's task, it is dropped when the task ends,
/// however it ends.
pub(crate) struct ExitGuard {
    supervision: Arc<Supervision>,
    slot: usize,
}

impl ExitGuard {
    pub(crate) fn new(supervision: &Arc<Supervision>, slot: usize) -> Self {
        Self {
            supervision: Arc::clone(supervision),
            slot,
        }
    }

    /// What the host's supervisors share.
    pub(crate) fn supervision(&self) -> &Supervision {
        &self.supervision
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let wake = {
            let mut state = self
                .supervision
                .exits
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.ended.push(self.slot);
            state.count += 1;
            let wake = state.count >= state.wake_at;
            if wake {
                state.wake_at = usize::MAX;
            }
            wake
        };
        if wake {
            // A permit when the waiter is between its check and its wait: that wait returns at
            // once.
            self.supervision.exits.notify.notify_one();
        }
    }
}

/// What a supervisor keeps while its service runs: moved into its task once.
pub(crate) struct Supervised {
    pub(crate) service: Arc<dyn ErasedService>,
    pub(crate) stop: CancellationToken,
    /// Where its runs are recorded; the service's info with them.
    pub(crate) status: Arc<ServiceStatus>,
    /// What the host's supervisors share; reports the end, however it comes. Last, so it is
    /// dropped after the rest.
    pub(crate) exit: ExitGuard,
}

/// Runs the service's body, and runs it again or stops the host when it fails, as its policy
/// says. Completes when the body has ended for good; `exit`, dropped last, reports the end,
/// however it comes.
///
/// An `async` block that uses what it holds in place, rather than an `async fn` whose
/// parameters the compiler keeps twice (as arguments and as locals): the supervisor's task is
/// held by every running service.
#[allow(
    clippy::manual_async_fn,
    reason = "an `async fn` keeps its parameter twice, and the task must stay within 256 bytes"
)]
pub(crate) fn supervise(supervised: Supervised) -> impl Future<Output = ()> + Send + 'static {
    async move {
        // The block must hold `supervised` whole, `exit` included: it would capture only the
        // fields it reads otherwise, and `exit` would report the end at once. Its fields are
        // read through this one reference at each use, not bound to locals: each reference
        // kept across an await is one more word in the task.
        let supervised = &supervised;
        let mut consecutive_failures = 0_u32;
        for run in 1_u32.. {
            let began = Instant::now();
            supervised.status.set_state(ServiceState::Running);
            let span = RunSpan::body(supervised.status.name(), run);
            let body = || {
                in_run(
                    span,
                    Arc::clone(&supervised.service).execute(supervised.stop.clone()),
                )
            };
            let outcome = call_caught_unbounded(body).await;
            let (stop, lifetime) = (&supervised.stop, &supervised.exit.supervision().lifetime);
            supervised
                .status
                .body_ended(outcome.as_ref().err(), stop.is_cancelled());
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
            if !Box::pin(after_failure(
                supervised.status.info(),
                &supervised.stop,
                &supervised.exit.supervision().lifetime,
                &supervised.exit.supervision().incidents,
                &supervised.status,
                run,
                began,
                &mut consecutive_failures,
                failure,
            ))
            .await
            {
                return;
            }
        }
    }
}

/// What a failed run leads to, as the policy says; `true` to run the body again. Boxed by
/// the supervisor: failures are rare, and its task stays small.
#[allow(
    clippy::too_many_arguments,
    reason = "the supervisor's state, lent for the one failure"
)]
async fn after_failure(
    info: &ServiceInfo,
    stop: &CancellationToken,
    lifetime: &ApplicationLifetime,
    incidents: &Incidents,
    status: &ServiceStatus,
    run: u32,
    began: Instant,
    consecutive_failures: &mut u32,
    failure: Failure,
) -> bool {
    if stop.is_cancelled() {
        tracing::error!(run, error = %failure, "failed while stopping");
        incidents.record(info, format!("failed while stopping: {failure}"));
        return false;
    }
    match info.policy() {
        FailurePolicy::StopHost => {
            tracing::error!(run, error = %failure, "failed; stopping the host (policy: stop)");
            fail_host(info, lifetime, incidents, &failure);
            false
        }
        FailurePolicy::Ignore => {
            tracing::error!(
                run,
                error = %failure,
                "failed; the service stays stopped and the host keeps running (policy: ignore)"
            );
            false
        }
        FailurePolicy::Restart(restart) => {
            if began.elapsed() >= restart.max_backoff() {
                *consecutive_failures = 0;
            }
            *consecutive_failures += 1;
            if *consecutive_failures > restart.max_restarts() {
                tracing::error!(
                    run,
                    error = %failure,
                    restarts = restart.max_restarts(),
                    "failed again after its last restart; stopping the host (policy: restart)"
                );
                fail_host(info, lifetime, incidents, &failure);
                return false;
            }
            let delay = restart.jittered_delay(*consecutive_failures);
            tracing::warn!(
                run,
                error = %failure,
                restart = *consecutive_failures,
                of = restart.max_restarts(),
                ?delay,
                "failed; restarting after a backoff (policy: restart)"
            );
            status.restarted();
            sleep_unless_stopped(delay, stop).await
        }
    }
}

fn fail_host(
    info: &ServiceInfo,
    lifetime: &ApplicationLifetime,
    incidents: &Incidents,
    failure: &Failure,
) {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;

    use super::{ExitGuard, Incidents, Supervised, Supervision, supervise};
    use crate::service::{
        ApplicationLifetime, ErasedService, FailurePolicy, HostedService, ServiceInfo, ServiceKind,
        Settings,
    };
    use crate::status::ServiceStatus;
    use crate::telemetry::{ServiceSpan, in_service_span};

    struct Idle;

    impl HostedService for Idle {}

    /// tokio's task is a 32-byte header, the scheduler and task id (16), the future in a stage
    /// (8 more) and a 48-byte trailer, aligned to 128: a future of 152 bytes or less makes a
    /// 256-byte task, one byte more a 384-byte one, in every running service.
    #[test]
    fn a_supervisors_future_fits_tokios_256_byte_task() {
        let info = ServiceInfo::new(
            "app::idle".into(),
            ServiceKind::Hosted,
            0,
            Vec::new(),
            Arc::new(FailurePolicy::StopHost),
            None,
            Settings::default(),
        );
        let supervision = Arc::new(Supervision::new(
            ApplicationLifetime::new(),
            Incidents::default(),
        ));
        let task = in_service_span(
            ServiceSpan::new(info.name()),
            supervise(Supervised {
                service: Arc::new(Idle) as Arc<dyn ErasedService>,
                stop: CancellationToken::new(),
                status: Arc::new(ServiceStatus::new(&info)),
                exit: ExitGuard::new(&supervision, 0),
            }),
        );
        let size = size_of_val(&task);
        assert!(size <= 152, "the supervisor's future is {size} bytes");
    }
}
