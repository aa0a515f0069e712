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
/// waits for a whole wave on one notification instead of joining every task in turn.
#[derive(Debug, Default)]
pub(crate) struct Exits {
    ended: Mutex<Vec<usize>>,
    notify: Notify,
}

impl Exits {
    /// Moves the slots that ended since the last call into `into`.
    pub(crate) fn drain(&self, into: &mut Vec<usize>) {
        into.append(&mut self.ended.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Completes when a supervisor has ended since the last time this completed; one that ended
    /// before the call counts, so nothing is missed between a [`drain`](Self::drain) and this.
    pub(crate) async fn ended(&self) {
        self.notify.notified().await;
    }
}

/// Reports a supervisor's end to its [`Exits`] when dropped: moved into the supervisor's task, it
/// is dropped when the task ends, however it ends.
pub(crate) struct ExitGuard {
    exits: Arc<Exits>,
    slot: usize,
}

impl ExitGuard {
    pub(crate) fn new(exits: &Arc<Exits>, slot: usize) -> Self {
        Self {
            exits: Arc::clone(exits),
            slot,
        }
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.exits
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.slot);
        // A permit when nobody waits yet: the next wait returns at once.
        self.exits.notify.notify_one();
    }
}

/// Runs the service's body, and runs it again or stops the host when it fails, as its policy
/// says. Returns when the body has ended for good; `_exit`, dropped last, reports the end,
/// however it comes.
pub(crate) async fn supervise(
    _exit: ExitGuard,
    service: Arc<dyn ErasedService>,
    info: ServiceInfo,
    stop: CancellationToken,
    lifetime: ApplicationLifetime,
    incidents: Incidents,
    status: Arc<ServiceStatus>,
) {
    let mut consecutive_failures = 0_u32;
    for run in 1_u32.. {
        let began = Instant::now();
        status.set_state(ServiceState::Running);
        let body = Arc::clone(&service).execute(stop.clone());
        let span = RunSpan::body(info.name(), run);
        let outcome = call_caught_unbounded(in_run(span, body)).await;
        status.body_ended(outcome.as_ref().err(), stop.is_cancelled());
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
                status.restarted();
                // Boxed: a timer is large, and every idle service's task would carry its room.
                if !Box::pin(sleep_unless_stopped(delay, &stop)).await {
                    return;
                }
            }
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
