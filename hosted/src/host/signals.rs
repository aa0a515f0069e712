//! Signals: the first SIGINT, SIGTERM or SIGQUIT (Ctrl+C on Windows) asks the host to stop
//! gracefully; a second one while it stops ends the process at once.
//!
//! SIGQUIT (Ctrl+\\) is handled like SIGTERM, as .NET's console lifetime does: its default action
//! (a core dump, no stop) would skip every service's stop.

use std::sync::{Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use super::host_lifetime::{HostLifetime, LifetimeContext};
use super::lifecycle::Outcome;
use crate::service::BoxError;

/// Exit code after a second SIGINT: 128 + 2, as shells report death by that signal.
pub const EXIT_SECOND_INTERRUPT: i32 = 130;
/// Exit code after a second SIGTERM: 128 + 15.
pub const EXIT_SECOND_TERMINATE: i32 = 143;
/// Exit code after a second SIGQUIT: 128 + 3.
pub const EXIT_SECOND_QUIT: i32 = 131;

/// The console's [`HostLifetime`] (.NET's `ConsoleLifetime`): the first SIGINT, SIGTERM or
/// SIGQUIT (Ctrl+C on Windows) asks the host to stop gracefully, with
/// [`StopReason::Interrupt`](crate::service::StopReason::Interrupt), `Terminate` or `Quit`; a
/// second one while it stops ends the process at once with [`EXIT_SECOND_INTERRUPT`],
/// [`EXIT_SECOND_TERMINATE`] or [`EXIT_SECOND_QUIT`].
///
/// [`Host::run`](crate::Host::run) puts it first among the lifetimes unless
/// [`HostBuilder::handle_signals`](super::HostBuilder::handle_signals) turned it off; a host
/// driven by hand with [`Host::start`](crate::Host::start) gets it with
/// `.lifetime(SignalLifetime::new())`. The handlers are installed in
/// [`starting`](HostLifetime::starting), before any service is built, and listened to until
/// [`stopped`](HostLifetime::stopped), on a thread of their own (`hosted-signals`), so a service
/// that blocks a worker thread cannot keep a signal from reaching the host (see the
/// [lifecycle guide](crate::docs::lifecycle#signals)).
#[derive(Debug, Default)]
pub struct SignalLifetime {
    watcher: Mutex<Option<Watcher>>,
}

impl SignalLifetime {
    /// The console lifetime, not yet listening.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl HostLifetime for SignalLifetime {
    async fn starting(&self, cx: &LifetimeContext) -> Result<(), BoxError> {
        let watcher = Watcher::start(cx.clone()).await;
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = watcher;
        Ok(())
    }

    async fn stopped(&self, _cx: &LifetimeContext, _outcome: &Outcome) {
        drop(
            self.watcher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
}

/// Listens for signals on a thread of its own until dropped.
///
/// Not a task of the host's runtime: tokio delivers a signal through a runtime's driver, which
/// a worker thread polls when it has nothing to run. A service that blocks a worker thread
/// forever (the case the shutdown budget exists for) can leave the runtime's other worker
/// parked where it does not poll the driver, and the signal would wait for good. This thread's
/// own single-threaded runtime polls a driver of its own whenever it waits, and the stop it
/// requests wakes the host from outside, which a blocked worker cannot prevent.
#[derive(Debug)]
struct Watcher {
    /// Cancelled when the lifetime stops listening; the thread then ends.
    done: CancellationToken,
}

impl Watcher {
    /// Starts the thread; returns once its handlers are installed, so a signal that arrives
    /// right after is never met by the default disposition (which would kill the process without
    /// a stop). `None` (with a warning) when no thread or no handler could be had.
    async fn start(cx: LifetimeContext) -> Option<Self> {
        let done = CancellationToken::new();
        let (installed, listening) = tokio::sync::oneshot::channel();
        let until = done.clone();
        let thread = std::thread::Builder::new()
            .name("hosted-signals".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        cannot_listen(&error);
                        let _ = installed.send(false);
                        return;
                    }
                };
                runtime.block_on(async move {
                    let signals = Signals::install();
                    let _ = installed.send(signals.is_some());
                    if let Some(signals) = signals {
                        tokio::select! {
                            () = until.cancelled() => {}
                            () = watch(signals, &cx) => {}
                        }
                    }
                });
            });
        if let Err(error) = thread {
            cannot_listen(&error);
            return None;
        }
        listening.await.unwrap_or(false).then_some(Self { done })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.done.cancel();
    }
}

/// Says that the host will not hear signals, and why.
fn cannot_listen(error: &dyn std::fmt::Display) {
    tracing::warn!(%error, "cannot listen for signals; stop the host another way");
}

/// The first signal requests the stop; a second one ends the process at once.
async fn watch(mut signals: Signals, cx: &LifetimeContext) {
    let Some(first) = signals.next().await else {
        return;
    };
    tracing::info!(
        signal = first.name(),
        "received {}; stopping gracefully (send it again to exit at once)",
        first.name()
    );
    cx.request_stop(first.reason());
    if let Some(second) = signals.next().await {
        tracing::warn!(
            signal = second.name(),
            code = second.exit_code(),
            "received {} during shutdown; exiting at once",
            second.name()
        );
        super::logging::report_dropped_lines();
        std::process::exit(second.exit_code());
    }
}

#[derive(Clone, Copy, Debug)]
enum Signal {
    Interrupt,
    #[cfg_attr(windows, allow(dead_code, reason = "SIGTERM exists on Unix only"))]
    Terminate,
    #[cfg_attr(windows, allow(dead_code, reason = "SIGQUIT exists on Unix only"))]
    Quit,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
            Self::Quit => "SIGQUIT",
        }
    }

    fn reason(self) -> crate::service::StopReason {
        use crate::service::StopReason;
        match self {
            Self::Interrupt => StopReason::Interrupt,
            Self::Terminate => StopReason::Terminate,
            Self::Quit => StopReason::Quit,
        }
    }

    fn exit_code(self) -> i32 {
        match self {
            Self::Interrupt => EXIT_SECOND_INTERRUPT,
            Self::Terminate => EXIT_SECOND_TERMINATE,
            Self::Quit => EXIT_SECOND_QUIT,
        }
    }
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Option<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::quit()),
        ) {
            (Ok(interrupt), Ok(terminate), Ok(quit)) => Some(Self {
                interrupt,
                terminate,
                quit,
            }),
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                cannot_listen(&error);
                None
            }
        }
    }

    async fn next(&mut self) -> Option<Signal> {
        tokio::select! {
            received = self.interrupt.recv() => received.map(|()| Signal::Interrupt),
            received = self.terminate.recv() => received.map(|()| Signal::Terminate),
            received = self.quit.recv() => received.map(|()| Signal::Quit),
        }
    }
}

#[cfg(windows)]
struct Signals {
    ctrl_c: tokio::signal::windows::CtrlC,
}

#[cfg(windows)]
impl Signals {
    fn install() -> Option<Self> {
        match tokio::signal::windows::ctrl_c() {
            Ok(ctrl_c) => Some(Self { ctrl_c }),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for Ctrl+C; stop the host another way");
                None
            }
        }
    }

    async fn next(&mut self) -> Option<Signal> {
        self.ctrl_c.recv().await.map(|()| Signal::Interrupt)
    }
}
