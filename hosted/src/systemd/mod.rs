//! systemd integration (feature `systemd`): the [`Systemd`] host lifetime tells the service
//! manager when the host is ready and when it stops, keeps a live status line, extends the stop
//! timeout while a drain runs, and pings the watchdog only while the runtime and every service
//! are alive. Without `NOTIFY_SOCKET` (not started by systemd) it does nothing.
//!
//! | where | what |
//! |---|---|
//! | `mod.rs` | the lifetime: `READY=1`, `STOPPING=1`, `STATUS=`, `EXTEND_TIMEOUT_USEC=` |
//! | `status.rs` | the `STATUS=` line, from the services' activity |
//! | `notifier.rs` | the thread every notification goes through, and `WATCHDOG=1`, gated on a probe the runtime must answer and on no service stuck |
//!
//! See the operations guide, [`hosted::docs::operations`](crate::docs::operations).

mod notifier;
mod status;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::task::AbortOnDropHandle;

use crate::host::{HostLifetime, LifetimeContext, Outcome};
use crate::service::BoxError;

/// How often the status line is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// How long the stop waits for the last notifications to be sent.
const FLUSH_WAIT: Duration = Duration::from_millis(500);

/// Slack added to the stop bound sent as `EXTEND_TIMEOUT_USEC`, for the process's own exit.
const EXIT_SLACK: Duration = Duration::from_secs(1);

/// The systemd [`HostLifetime`]: what `hosted::run!()` adds when the `systemd` feature is on;
/// add it yourself to a host you run with [`Host::run`](crate::Host::run):
/// `Host::builder().discover().lifetime(Systemd::new())`.
///
/// With `NOTIFY_SOCKET` set (a unit with `Type=notify`), it sends:
///
/// * `READY=1` once every service's `start` returned, not at process start;
/// * `STATUS=` every second while something changed: services running, queue items in flight,
///   the next tick (`3/3 services running; 2 queue items in flight; next tick in 4s
///   (app::report)`);
/// * `STOPPING=1` and `EXTEND_TIMEOUT_USEC=` as the shutdown begins: the drain delay, the
///   shutdown budget and its grace, so a stop longer than `TimeoutStopSec=` is not killed half
///   way;
/// * `WATCHDOG=1` at half of `WATCHDOG_USEC` (`WatchdogSec=`), from a thread of its own, only
///   while a probe task spawned on the runtime answers within that half (a runtime whose worker
///   threads are all blocked does not) and no service has
///   [declared itself stuck](crate::service::Activity::declare_stuck): then the pings stop,
///   the reason is logged, and systemd restarts the unit.
///
/// A failed send is logged once and the host carries on. Every message goes through a thread of
/// its own, in order; the last step of the stop waits for it to send what is queued, at most
/// 500 ms.
#[derive(Debug, Default)]
pub struct Systemd {
    tasks: Mutex<Tasks>,
}

#[derive(Debug, Default)]
struct Tasks {
    /// Set while `NOTIFY_SOCKET` is.
    notifier: Option<Arc<notifier::Notifier>>,
    status: Option<AbortOnDropHandle<()>>,
}

impl Systemd {
    /// The lifetime; it reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` when the host starts.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HostLifetime for Systemd {
    async fn starting(&self, cx: &LifetimeContext) -> Result<(), BoxError> {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Ok(());
        }
        let notifier = notifier::Notifier::start(
            sd_notify::watchdog_enabled(),
            cx.clone(),
            tokio::runtime::Handle::current(),
        )?;
        self.tasks().notifier = Some(Arc::new(notifier));
        tracing::debug!("notifying systemd");
        Ok(())
    }

    async fn started(&self, cx: &LifetimeContext) {
        let mut tasks = self.tasks();
        let Some(notifier) = tasks.notifier.clone() else {
            return;
        };
        let line = status::line(cx);
        notifier.send(&[NotifyState::Ready, NotifyState::Status(&line)]);
        let cx = cx.clone();
        tasks.status = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            let mut last = line;
            let mut every = tokio::time::interval(STATUS_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                let line = status::line(&cx);
                if line != last {
                    notifier.send(&[NotifyState::Status(&line)]);
                    last = line;
                }
            }
        })));
    }

    async fn stopping(&self, cx: &LifetimeContext) {
        let Some(notifier) = self.tasks().notifier.clone() else {
            return;
        };
        let bound = cx.stop_bound().saturating_add(EXIT_SLACK);
        let micros = u32::try_from(bound.as_micros()).unwrap_or(u32::MAX);
        let line = status::line(cx);
        notifier.send(&[
            NotifyState::Stopping,
            NotifyState::Status(&line),
            NotifyState::ExtendTimeoutUsec(micros),
        ]);
    }

    async fn stopped(&self, _cx: &LifetimeContext, outcome: &Outcome) {
        let notifier = {
            let mut tasks = self.tasks();
            tasks.status = None;
            tasks.notifier.take()
        };
        let Some(notifier) = notifier else {
            return;
        };
        let line = if outcome.is_success() {
            "stopped".to_owned()
        } else {
            format!("stopped after failures (exit {})", outcome.exit_code())
        };
        notifier.send(&[NotifyState::Status(&line)]);
        notifier.stop(FLUSH_WAIT).await;
    }
}
