//! The host's lifetime as services see it: the started / stopping / stopped events and the stop
//! request (`IHostApplicationLifetime`).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

/// Why the host stopped running.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// SIGINT, or Ctrl+C on Windows.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// A service or other code called [`ApplicationLifetime::stop_application`].
    Requested,
    /// A service failed and its policy stops the host.
    ServiceFailed {
        /// The failed service's name.
        service: String,
    },
    /// A service failed to start (or a `starting` / `started` hook failed).
    StartFailed {
        /// The failed service's name.
        service: String,
    },
}

impl StopReason {
    /// Whether this reason means something went wrong.
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::ServiceFailed { .. } | Self::StartFailed { .. })
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Interrupt => f.write_str("interrupt signal"),
            Self::Terminate => f.write_str("terminate signal"),
            Self::Requested => f.write_str("stop requested"),
            Self::ServiceFailed { service } => write!(f, "service `{service}` failed"),
            Self::StartFailed { service } => write!(f, "service `{service}` failed to start"),
        }
    }
}

/// A handle on the host's lifetime, injectable into any service: await its events or request a
/// stop. Cheap to clone.
///
/// ```
/// # async fn demo(lifetime: hosted::ApplicationLifetime) {
/// lifetime.started().await;              // every service has started
/// lifetime.stop_application();           // ask the host to stop, as Ctrl+C would
/// lifetime.stopping().await;             // the host is stopping its services
/// # }
/// ```
#[derive(Clone)]
pub struct ApplicationLifetime(Arc<Inner>);

struct Inner {
    started: CancellationToken,
    stopping: CancellationToken,
    stopped: CancellationToken,
    stop_requested: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    /// When the shutdown budget ends, once the stop has begun: a queue drains until then.
    shutdown_deadline: Mutex<Option<tokio::time::Instant>>,
}

impl ApplicationLifetime {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Inner {
            started: CancellationToken::new(),
            stopping: CancellationToken::new(),
            stopped: CancellationToken::new(),
            stop_requested: CancellationToken::new(),
            reason: Mutex::new(None),
            shutdown_deadline: Mutex::new(None),
        }))
    }

    /// Completes once every service has started (`ApplicationStarted`). Never completes if
    /// startup fails.
    pub async fn started(&self) {
        self.0.started.cancelled().await;
    }

    /// Completes as soon as the host is asked to stop (`ApplicationStopping`): a signal,
    /// [`stop_application`](Self::stop_application), a failure whose policy stops the host, or
    /// [`RunningHost::stop`](crate::host::RunningHost::stop) (there after the services'
    /// `stopping` hooks, as .NET's `StopAsync` does).
    pub async fn stopping(&self) {
        self.0.stopping.cancelled().await;
    }

    /// Completes once every service has stopped (`ApplicationStopped`).
    pub async fn stopped(&self) {
        self.0.stopped.cancelled().await;
    }

    /// Whether every service has started.
    #[must_use]
    pub fn is_started(&self) -> bool {
        self.0.started.is_cancelled()
    }

    /// Whether the host has been asked to stop.
    #[must_use]
    pub fn is_stopping(&self) -> bool {
        self.0.stopping.is_cancelled()
    }

    /// Whether every service has stopped.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.is_cancelled()
    }

    /// A token that fires when the host is asked to stop, for APIs that take a
    /// [`CancellationToken`].
    #[must_use]
    pub fn stopping_token(&self) -> CancellationToken {
        self.0.stopping.child_token()
    }

    /// Asks the host to stop gracefully, as Ctrl+C would (`StopApplication`). Returns at once;
    /// await [`stopped`](Self::stopped) to wait for the stop itself.
    pub fn stop_application(&self) {
        self.request_stop(StopReason::Requested);
    }

    /// Records why the host stops, wakes the host and fires the stopping event, as .NET's
    /// `StopApplication` fires `ApplicationStopping` at once. A later reason does not replace an
    /// earlier one, except that a failure replaces a non-failure so the exit code tells the truth.
    pub(crate) fn request_stop(&self, reason: StopReason) {
        self.record_stop(reason);
        self.0.stopping.cancel();
    }

    /// Records why the host stops and wakes the host, without firing the stopping event yet:
    /// [`RunningHost::stop`](crate::host::RunningHost::stop) runs the `stopping` hooks first.
    pub(crate) fn record_stop(&self, reason: StopReason) {
        {
            let mut current = self.0.reason.lock().unwrap_or_else(PoisonError::into_inner);
            let replace = match &*current {
                None => true,
                Some(previous) => reason.is_failure() && !previous.is_failure(),
            };
            if replace {
                *current = Some(reason);
            }
        }
        self.0.stop_requested.cancel();
    }

    pub(crate) fn stop_reason(&self) -> Option<StopReason> {
        self.0
            .reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records when the shutdown budget ends; called as the stop begins.
    pub(crate) fn set_shutdown_deadline(&self, deadline: tokio::time::Instant) {
        *self
            .0
            .shutdown_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(deadline);
    }

    /// When the shutdown budget ends, once the stop has begun.
    pub(crate) fn shutdown_deadline(&self) -> Option<tokio::time::Instant> {
        *self
            .0
            .shutdown_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stop_requested_token(&self) -> &CancellationToken {
        &self.0.stop_requested
    }

    pub(crate) fn mark_started(&self) {
        self.0.started.cancel();
    }

    pub(crate) fn mark_stopping(&self) {
        self.0.stopping.cancel();
    }

    pub(crate) fn mark_stopped(&self) {
        self.0.stopped.cancel();
    }
}

impl fmt::Debug for ApplicationLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplicationLifetime")
            .field("started", &self.is_started())
            .field("stopping", &self.is_stopping())
            .field("stopped", &self.is_stopped())
            .field("stop_reason", &self.stop_reason())
            .finish()
    }
}
