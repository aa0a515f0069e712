//! The thread that talks to systemd. Every notification goes through it, so a service manager
//! slow to read its socket (a send to a full datagram queue blocks) never blocks the runtime.
//! It also sends `WATCHDOG=1`, gated on a real liveness check: a probe task spawned on the
//! runtime must have run since the previous ping, and no service may have declared itself
//! stuck. A probe that has not run for a whole watchdog period means a runtime whose worker
//! threads are all blocked: the pings stop (one not yet run only delays the next ping).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::host::LifetimeContext;
use crate::service::BoxError;

/// A handle on the notifier thread.
#[derive(Debug)]
pub(super) struct Notifier {
    commands: mpsc::Sender<Command>,
}

#[derive(Debug)]
enum Command {
    /// `KEY=VALUE` lines, sent as one datagram.
    Send(Vec<String>),
    /// Send nothing more; end the thread, and say so once what came before is sent.
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// Why a ping is withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Unhealthy {
    Runtime,
    Stuck { service: String, reason: String },
}

impl Notifier {
    /// Starts the thread; with `watchdog` (`WATCHDOG_USEC`) it pings at half of it, as
    /// `sd_watchdog_enabled(3)` advises.
    pub(super) fn start(
        watchdog: Option<Duration>,
        cx: LifetimeContext,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, BoxError> {
        let (commands, received) = mpsc::channel();
        let every = watchdog.map(|period| (period / 2).max(Duration::from_millis(1)));
        std::thread::Builder::new()
            .name("hosted-systemd".to_owned())
            .spawn(move || run(&received, every, &cx, &runtime))
            .map_err(|error| format!("cannot start the systemd notifier thread: {error}"))?;
        if let (Some(period), Some(every)) = (watchdog, every) {
            tracing::info!(
                ?period,
                "pinging the systemd watchdog every {every:?} while the runtime and every service \
                 are alive"
            );
        }
        Ok(Self { commands })
    }

    /// Queues `states` for the service manager, in order; returns at once.
    pub(super) fn send(&self, states: &[NotifyState<'_>]) {
        let lines = states.iter().map(ToString::to_string).collect();
        let _ = self.commands.send(Command::Send(lines));
    }

    /// Lets the thread end once what was queued is sent, and waits for that, at most `wait`:
    /// the process exits right after the host stops, and `STOPPING=1` must not be lost with it.
    pub(super) async fn stop(&self, wait: Duration) {
        let (done, sent) = tokio::sync::oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok()
            && tokio::time::timeout(wait, sent).await.is_err()
        {
            tracing::warn!(
                ?wait,
                "systemd did not read its notifications in time; the last ones may be lost"
            );
        }
    }
}

fn run(
    received: &mpsc::Receiver<Command>,
    every: Option<Duration>,
    cx: &LifetimeContext,
    runtime: &tokio::runtime::Handle,
) {
    let mut probe = Probe::new(runtime);
    let mut withheld: Option<Unhealthy> = None;
    let mut next_ping = every.map(|every| Instant::now() + every);
    loop {
        let wait = next_ping.map_or(Duration::from_hours(1), |at| {
            at.saturating_duration_since(Instant::now())
        });
        match received.recv_timeout(wait) {
            Ok(Command::Send(lines)) => {
                let states: Vec<NotifyState<'_>> =
                    lines.iter().map(|line| NotifyState::Custom(line)).collect();
                send(&states);
            }
            Ok(Command::Stop(done)) => {
                let _ = done.send(());
                return;
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let (Some(every), Some(at)) = (every, next_ping) else {
                    continue;
                };
                // A late wake-up (a suspended machine) pings once, not to catch up.
                next_ping = Some(at.max(Instant::now()) + every);
                let health = if probe.answered() {
                    stuck_service(cx)
                } else if probe.waiting() < every * 2 {
                    // A busy runtime may take a moment: no ping yet, but the runtime is judged
                    // blocked only when the probe has waited a whole watchdog period.
                    continue;
                } else {
                    Some(Unhealthy::Runtime)
                };
                watch(health, &mut withheld, every * 2, &mut probe);
            }
        }
    }
}

/// Pings when healthy; otherwise logs why once, and withholds the ping.
fn watch(
    health: Option<Unhealthy>,
    withheld: &mut Option<Unhealthy>,
    period: Duration,
    probe: &mut Probe<'_>,
) {
    let Some(why) = health else {
        if withheld.take().is_some() {
            tracing::info!("alive again: pinging the systemd watchdog");
        }
        send(&[NotifyState::Watchdog]);
        probe.send();
        return;
    };
    if withheld.as_ref() != Some(&why) {
        match &why {
            Unhealthy::Runtime => tracing::error!(
                waited = ?period,
                "the runtime did not run a probe task within {period:?}: every worker thread may \
                 be blocked; withholding the systemd watchdog ping"
            ),
            Unhealthy::Stuck { service, reason } => tracing::error!(
                service = %service,
                reason = %reason,
                "a service declared itself stuck; withholding the systemd watchdog ping"
            ),
        }
        *withheld = Some(why.clone());
    }
    // A stuck service on a live runtime: keep probing the runtime for when the service recovers.
    if why != Unhealthy::Runtime {
        probe.send();
    }
}

/// A task spawned on the runtime that must run before the next ping.
struct Probe<'a> {
    runtime: &'a tokio::runtime::Handle,
    sent: u64,
    sent_at: Instant,
    answered: Arc<AtomicU64>,
}

impl<'a> Probe<'a> {
    fn new(runtime: &'a tokio::runtime::Handle) -> Self {
        let mut probe = Self {
            runtime,
            sent: 0,
            sent_at: Instant::now(),
            answered: Arc::new(AtomicU64::new(0)),
        };
        probe.send();
        probe
    }

    fn send(&mut self) {
        self.sent += 1;
        self.sent_at = Instant::now();
        let (number, answered) = (self.sent, Arc::clone(&self.answered));
        drop(self.runtime.spawn(async move {
            answered.store(number, Ordering::Relaxed);
        }));
    }

    /// How long the last probe has been waiting.
    fn waiting(&self) -> Duration {
        self.sent_at.elapsed()
    }

    /// Whether the last probe sent has run.
    fn answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed) == self.sent
    }
}

/// Sends `states` to the service manager; a failure is logged once.
fn send(states: &[NotifyState<'_>]) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(error) = sd_notify::notify(states)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(%error, "cannot notify systemd through `NOTIFY_SOCKET`; carrying on");
    }
}

/// The first service that declared itself stuck, if any.
fn stuck_service(cx: &LifetimeContext) -> Option<Unhealthy> {
    cx.services().iter().find_map(|service| {
        service.activity().stuck().map(|reason| Unhealthy::Stuck {
            service: service.name().to_owned(),
            reason,
        })
    })
}
