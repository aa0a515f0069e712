//! The host-lifetime seam: when the host calls a `HostLifetime`, a lifetime's own stop request,
//! a lifetime that fails to start, the drain delay between the stop request and the stop, and
//! the warning when a stop may outlast the supervisor's grace period.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::host::{HostLifetime, LifetimeContext, Outcome};
use hosted::registry::ServiceDescriptor;
use hosted::service::StopReason;
use hosted::{BoxError, CancellationToken, Host, HostedService, ServiceContext};
use hosted_tests::process::{HANG, Process};
use tokio::time::Instant;

#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn note(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A lifetime that writes every call into the journal, and may fail its start or request the
/// stop once the host has started.
struct Recorder {
    name: &'static str,
    journal: Journal,
    fail_start: bool,
    stop_after_start: bool,
}

impl Recorder {
    fn new(name: &'static str, journal: &Journal) -> Self {
        Self {
            name,
            journal: journal.clone(),
            fail_start: false,
            stop_after_start: false,
        }
    }
}

impl HostLifetime for Recorder {
    async fn starting(&self, cx: &LifetimeContext) -> Result<(), BoxError> {
        self.journal.note(format!(
            "{}:starting services={}",
            self.name,
            cx.services().len()
        ));
        if self.fail_start {
            return Err("the supervisor's socket is gone".into());
        }
        Ok(())
    }

    async fn started(&self, cx: &LifetimeContext) {
        let running = cx
            .services()
            .iter()
            .filter(|service| service.activity().is_running())
            .count();
        self.journal
            .note(format!("{}:started running={running}", self.name));
        if self.stop_after_start {
            let cx = cx.clone();
            tokio::spawn(async move { cx.request_stop(StopReason::Terminate) });
        }
    }

    async fn stopping(&self, _cx: &LifetimeContext) {
        self.journal.note(format!("{}:stopping", self.name));
    }

    async fn stopped(&self, cx: &LifetimeContext, outcome: &Outcome) {
        assert!(cx.lifetime().is_stopped());
        self.journal.note(format!(
            "{}:stopped success={} reason={:?}",
            self.name,
            outcome.is_success(),
            outcome.reason()
        ));
    }
}

/// A service that notes its start, its stop token and its stop, with the virtual time.
struct Worker {
    journal: Journal,
    began: Instant,
}

impl HostedService for Worker {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.journal.note("worker:start");
        Ok(())
    }

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        stop.cancelled().await;
        self.journal
            .note(format!("worker:token at={:?}", self.began.elapsed()));
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.journal.note("worker:stop");
        Ok(())
    }
}

fn worker(journal: &Journal) -> ServiceDescriptor {
    ServiceDescriptor::hosted(
        "app::worker",
        Arc::new(Worker {
            journal: journal.clone(),
            began: Instant::now(),
        }),
    )
}

#[tokio::test(start_paused = true)]
async fn lifetimes_run_before_the_first_start_and_after_the_last_stop_and_may_stop_the_host() {
    let journal = Journal::default();
    let mut second = Recorder::new("second", &journal);
    second.stop_after_start = true;
    let outcome = Host::builder()
        .handle_signals(false)
        .add_service(worker(&journal))
        .lifetime(Recorder::new("first", &journal))
        .lifetime(second)
        .build()
        .unwrap()
        .run()
        .await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.reason(), Some(&StopReason::Terminate));
    assert_eq!(
        journal.entries(),
        [
            "first:starting services=1",
            "second:starting services=1",
            "worker:start",
            "first:started running=1",
            "second:started running=1",
            "first:stopping",
            "second:stopping",
            "worker:token at=0ns",
            "worker:stop",
            "second:stopped success=true reason=Some(Terminate)",
            "first:stopped success=true reason=Some(Terminate)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_lifetime_that_cannot_start_starts_nothing_and_fails_the_run() {
    let journal = Journal::default();
    let mut broken = Recorder::new("broken", &journal);
    broken.fail_start = true;
    let outcome = Host::builder()
        .handle_signals(false)
        .add_service(worker(&journal))
        .lifetime(Recorder::new("first", &journal))
        .lifetime(broken)
        .build()
        .unwrap()
        .run()
        .await;
    assert!(!outcome.is_success());
    assert_eq!(outcome.exit_code(), 1);
    let incident = &outcome.incidents()[0];
    assert!(
        incident.what.contains("the supervisor's socket is gone"),
        "{incident:?}"
    );
    assert!(incident.service.ends_with("Recorder"), "{incident:?}");
    // The one that got past `starting` hears of the stop; the broken one and the worker nothing.
    let entries = journal.entries();
    assert_eq!(
        entries[..2],
        ["first:starting services=1", "broken:starting services=1"]
    );
    assert_eq!(entries[2], "first:stopping");
    assert!(
        entries[3].starts_with("first:stopped success=false"),
        "{entries:?}"
    );
    assert_eq!(entries.len(), 4, "{entries:?}");
}

#[tokio::test(start_paused = true)]
async fn the_drain_delay_keeps_every_service_running_between_the_stop_request_and_the_stop() {
    let journal = Journal::default();
    let host = Host::builder()
        .handle_signals(false)
        .drain_delay(Duration::from_secs(3))
        .add_service(worker(&journal))
        .lifetime(Recorder::new("lifetime", &journal))
        .build()
        .unwrap();
    let lifetime = host.lifetime().clone();
    let run = tokio::spawn(host.run());
    lifetime.started().await;
    let asked = Instant::now();
    lifetime.stop_application();
    // Readiness fails at once (the stopping event), the services keep running.
    assert!(lifetime.is_stopping());
    tokio::time::sleep(Duration::from_millis(2_900)).await;
    assert!(
        !journal
            .entries()
            .iter()
            .any(|entry| entry.starts_with("worker:token"))
    );
    let outcome = run.await.unwrap();
    assert!(outcome.is_success());
    let entries = journal.entries();
    let token = entries
        .iter()
        .find(|entry| entry.starts_with("worker:token"))
        .unwrap();
    assert_eq!(token, "worker:token at=3s", "{entries:?}");
    assert!(asked.elapsed() >= Duration::from_secs(3));
    // The lifetime heard `stopping` before the drain, not after it.
    let stopping = entries
        .iter()
        .position(|entry| entry == "lifetime:stopping");
    let token = entries
        .iter()
        .position(|entry| entry.starts_with("worker:token"));
    assert!(stopping < token, "{entries:?}");
}

#[test]
fn a_stop_longer_than_the_grace_period_is_warned_of_with_the_keys_to_change() {
    let warning = "exceed the supervisor's grace period `host.termination_grace`";
    // Under Kubernetes' 30 s: quiet.
    let mut quiet = Process::spawn(
        env!("CARGO_BIN_EXE_stops_itself"),
        &["--host.shutdown_timeout=29s"],
    );
    assert_eq!(quiet.wait_exit(HANG), 0, "{}", quiet.transcript());
    assert!(
        quiet.log_line(&[warning]).is_none(),
        "{}",
        quiet.transcript()
    );

    let mut loud = Process::spawn(
        env!("CARGO_BIN_EXE_stops_itself"),
        &["--host.drain_delay=300ms", "--host.shutdown_timeout=30s"],
    );
    assert_eq!(loud.wait_exit(HANG), 0, "{}", loud.transcript());
    assert!(
        loud.log_line(&["WARN", warning]).is_some(),
        "{}",
        loud.transcript()
    );
    for key in [
        "`host.drain_delay` (300ms)",
        "`host.shutdown_timeout` (30s)",
        "terminationGracePeriodSeconds",
    ] {
        assert!(
            loud.transcript().contains(key),
            "{key}: {}",
            loud.transcript()
        );
    }
    // The warning comes before anything starts, and the drain delay is honoured after it.
    loud.assert_log_order(&[
        &[warning],
        &["application started"],
        &["draining"],
        &["application stopped"],
    ]);

    // A supervisor with a longer grace period, said so: quiet again; `0s` turns the check off.
    for grace in [
        "--host.termination_grace=60s",
        "--host.termination_grace=0s",
    ] {
        let mut told = Process::spawn(
            env!("CARGO_BIN_EXE_stops_itself"),
            &["--host.shutdown_timeout=40s", grace],
        );
        assert_eq!(told.wait_exit(HANG), 0, "{}", told.transcript());
        assert!(
            told.log_line(&[warning]).is_none(),
            "{grace}: {}",
            told.transcript()
        );
    }
}
