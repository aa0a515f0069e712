//! The lifecycle, service by service registered by hand: start order, reverse stop, the shutdown
//! budget, failure policies, panics, stop requests, lifetime events and hooks.
//!
//! Where time matters the tests run on tokio's paused clock, so they assert exact virtual times
//! without depending on the machine's speed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::di::RunContext;
use hosted::host::{HostBuilder, Outcome};
use hosted::registry::{Problem, ServiceDescriptor};
use hosted::service::{RestartPolicy, StopReason};
use hosted::{BoxError, CancellationToken, FailurePolicy, Host, HostedService, ServiceContext};
use tokio::time::Instant;

/// What happened, in order, across services.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn note(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn matching(&self, prefix: &str) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|entry| entry.starts_with(prefix))
            .collect()
    }
}

/// How a [`Probe`] misbehaves.
#[derive(Clone, Copy, Default, PartialEq)]
enum Fault {
    #[default]
    None,
    StartFails,
    StartPanics,
    StartHangs,
    StopFails,
    IgnoresStop,
    StartingFails,
}

/// A hosted service that writes every call into the journal.
struct Probe {
    name: &'static str,
    journal: Journal,
    fault: Fault,
}

impl Probe {
    fn service(name: &'static str, journal: &Journal, fault: Fault) -> ServiceDescriptor {
        ServiceDescriptor::hosted(
            name,
            Arc::new(Probe {
                name,
                journal: journal.clone(),
                fault,
            }),
        )
    }
}

impl HostedService for Probe {
    async fn starting(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.journal.note(format!("starting:{}", self.name));
        if self.fault == Fault::StartingFails {
            return Err("the starting hook refused".into());
        }
        Ok(())
    }

    async fn start(&self, cx: &ServiceContext) -> Result<(), BoxError> {
        assert_eq!(cx.info().name(), self.name);
        self.journal.note(format!("start:{}", self.name));
        match self.fault {
            Fault::StartFails => Err(format!("{} cannot open its port", self.name).into()),
            Fault::StartPanics => panic!("{} exploded while starting", self.name),
            Fault::StartHangs => {
                std::future::pending::<()>().await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn started(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.journal.note(format!("started:{}", self.name));
        Ok(())
    }

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        self.journal.note(format!("execute:{}", self.name));
        if self.fault == Fault::IgnoresStop {
            loop {
                tokio::time::sleep(Duration::from_hours(1)).await;
            }
        }
        stop.cancelled().await;
        self.journal.note(format!("token:{}", self.name));
        Ok(())
    }

    async fn stopping(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.journal.note(format!("stopping:{}", self.name));
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.journal.note(format!("stop:{}", self.name));
        if self.fault == Fault::StopFails {
            return Err("the socket would not close".into());
        }
        Ok(())
    }

    async fn stopped(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.journal.note(format!("stopped:{}", self.name));
        Ok(())
    }
}

/// Starts the host, waits for a stop request, stops it: what `Host::run` does, minus signals.
async fn run_to_end(builder: HostBuilder) -> Outcome {
    match builder.build().expect("a valid host").start().await {
        Ok(running) => {
            running.wait().await;
            running.stop().await
        }
        Err(outcome) => outcome,
    }
}

async fn start_and_stop(builder: HostBuilder) -> Outcome {
    let running = builder
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("a clean start");
    running.stop().await
}

fn incident_services(outcome: &Outcome) -> Vec<&str> {
    outcome
        .incidents()
        .iter()
        .map(|incident| incident.service.as_str())
        .collect()
}

#[tokio::test]
async fn services_start_in_declared_order_and_stop_in_reverse() {
    let journal = Journal::default();
    let builder = Host::builder()
        .add_service(Probe::service("web", &journal, Fault::None).after("cache"))
        .add_service(Probe::service("metrics", &journal, Fault::None).order(5))
        .add_service(Probe::service("cache", &journal, Fault::None).after("database"))
        .add_service(Probe::service("database", &journal, Fault::None).order(-1))
        .add_service(Probe::service("audit", &journal, Fault::None));
    let outcome = start_and_stop(builder).await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(
        journal.matching("start:"),
        [
            "start:database",
            "start:audit",
            "start:cache",
            "start:web",
            "start:metrics"
        ]
    );
    // Reverse order, in waves: `audit`, which nothing orders, stops with `web`, the first of
    // order 0 free to stop; `cache` waits for `web`, `database` for `cache` and order 0.
    assert_eq!(
        journal.matching("stop:"),
        [
            "stop:metrics",
            "stop:web",
            "stop:audit",
            "stop:cache",
            "stop:database"
        ]
    );
}

#[tokio::test]
async fn the_order_does_not_depend_on_registration_order() {
    let names = ["delta", "alpha", "charlie", "bravo"];
    let mut orders = Vec::new();
    for rotation in 0..names.len() {
        let mut builder = Host::builder();
        for name in names.iter().cycle().skip(rotation).take(names.len()) {
            builder = builder.add_service(ServiceDescriptor::background(
                *name,
                |_: RunContext| async {},
            ));
        }
        let host = builder.build().unwrap();
        orders.push(
            host.services()
                .map(|info| info.name().to_owned())
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        orders
            .iter()
            .all(|order| order == &["alpha", "bravo", "charlie", "delta"]),
        "{orders:?}"
    );
}

#[tokio::test]
async fn the_stop_token_fires_before_stop_is_called() {
    let journal = Journal::default();
    let outcome =
        start_and_stop(Host::builder().add_service(Probe::service("a", &journal, Fault::None)))
            .await;
    assert!(outcome.is_success());
    let entries = journal.entries();
    let token = entries.iter().position(|entry| entry == "token:a").unwrap();
    let stop = entries.iter().position(|entry| entry == "stop:a").unwrap();
    assert!(token < stop, "{entries:?}");
}

#[tokio::test]
async fn lifecycle_hooks_run_around_every_service_in_order() {
    let journal = Journal::default();
    let builder = Host::builder()
        .add_service(Probe::service("a", &journal, Fault::None))
        .add_service(Probe::service("b", &journal, Fault::None));
    let outcome = start_and_stop(builder).await;
    assert!(outcome.is_success());
    let entries: Vec<String> = journal
        .entries()
        .into_iter()
        .filter(|entry| !entry.starts_with("execute:") && !entry.starts_with("token:"))
        .collect();
    assert_eq!(
        entries,
        [
            "starting:a",
            "starting:b",
            "start:a",
            "start:b",
            "started:a",
            "started:b",
            "stopping:b",
            "stopping:a",
            "stop:b",
            "stop:a",
            "stopped:b",
            "stopped:a",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_blocks_before_its_first_await_delays_nothing() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let journal = Journal::default();
    let blocking = ServiceDescriptor::background("blocking", move |_: RunContext| {
        let released = Arc::clone(&released);
        async move {
            // Blocks its worker thread, without ever yielding, until the test lets it go.
            let _ = released.lock().unwrap().recv();
        }
    })
    .order(-1);
    let running = Host::builder()
        .add_service(blocking)
        .add_service(Probe::service("next", &journal, Fault::None))
        .build()
        .unwrap()
        .start()
        .await
        .expect("startup is not held up by the blocking body");
    assert!(running.lifetime().is_started());
    assert_eq!(journal.matching("start:"), ["start:next"]);
    release.send(()).unwrap();
    assert!(running.stop().await.is_success());
}

#[tokio::test]
async fn a_failing_start_stops_the_started_services_in_reverse_and_starts_no_more() {
    let journal = Journal::default();
    let host = Host::builder()
        .add_service(Probe::service("first", &journal, Fault::None).order(1))
        .add_service(Probe::service("second", &journal, Fault::None).order(2))
        .add_service(Probe::service("broken", &journal, Fault::StartFails).order(3))
        .add_service(Probe::service("never", &journal, Fault::None).order(4))
        .build()
        .unwrap();
    let lifetime = host.lifetime().clone();
    let outcome = host.start().await.expect_err("startup must fail");
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(
        outcome.reason(),
        Some(&StopReason::StartFailed {
            service: "broken".into()
        })
    );
    assert_eq!(incident_services(&outcome), ["broken"]);
    assert!(
        outcome.incidents()[0]
            .what
            .contains("broken cannot open its port"),
        "{outcome:?}"
    );
    assert_eq!(
        journal.matching("start:"),
        ["start:first", "start:second", "start:broken"]
    );
    assert_eq!(journal.matching("stop:"), ["stop:second", "stop:first"]);
    assert!(!lifetime.is_started());
    assert!(lifetime.is_stopped());
}

#[tokio::test]
async fn a_panicking_start_is_a_start_failure_with_its_message() {
    let journal = Journal::default();
    let outcome = Host::builder()
        .add_service(Probe::service("ok", &journal, Fault::None).order(1))
        .add_service(Probe::service("boom", &journal, Fault::StartPanics).order(2))
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("startup must fail");
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(incident_services(&outcome), ["boom"]);
    assert!(
        outcome.incidents()[0]
            .what
            .contains("panicked: boom exploded while starting"),
        "{outcome:?}"
    );
    assert_eq!(journal.matching("stop:"), ["stop:ok"]);
}

#[tokio::test]
async fn a_failing_starting_hook_starts_nothing() {
    let journal = Journal::default();
    let outcome = Host::builder()
        .add_service(Probe::service("a", &journal, Fault::None))
        .add_service(Probe::service("b", &journal, Fault::StartingFails))
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("startup must fail");
    assert_eq!(incident_services(&outcome), ["b"]);
    assert!(journal.matching("start:").is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_startup_budget_fails_a_start_that_hangs() {
    let journal = Journal::default();
    let began = Instant::now();
    let outcome = Host::builder()
        .startup_timeout(Duration::from_secs(2))
        .add_service(Probe::service("early", &journal, Fault::None).order(1))
        .add_service(Probe::service("hangs", &journal, Fault::StartHangs).order(2))
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("startup must fail");
    assert_eq!(began.elapsed(), Duration::from_secs(2));
    assert_eq!(incident_services(&outcome), ["hangs"]);
    assert!(
        outcome.incidents()[0].what.contains("startup budget"),
        "{outcome:?}"
    );
    assert_eq!(journal.matching("stop:"), ["stop:early"]);
}

#[tokio::test]
async fn a_stop_requested_during_startup_starts_no_more_and_exits_cleanly() {
    struct Quitter;
    impl HostedService for Quitter {
        async fn start(&self, cx: &ServiceContext) -> Result<(), BoxError> {
            cx.lifetime().stop_application();
            Ok(())
        }
    }
    let journal = Journal::default();
    let outcome = Host::builder()
        .add_service(ServiceDescriptor::hosted("quitter", Arc::new(Quitter)).order(1))
        .add_service(Probe::service("later", &journal, Fault::None).order(2))
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("startup is abandoned");
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.reason(), Some(&StopReason::Requested));
    assert!(journal.matching("start:").is_empty());
}

#[tokio::test]
async fn any_service_can_request_the_stop() {
    let running = Host::builder()
        .add_service(ServiceDescriptor::background(
            "quits",
            |cx: RunContext| async move {
                cx.lifetime().started().await;
                cx.lifetime().stop_application();
            },
        ))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(running.wait().await, StopReason::Requested);
    let outcome = running.stop().await;
    assert!(outcome.is_success());
    assert_eq!(outcome.exit_code(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stubborn_service_costs_the_others_their_time_not_their_stop() {
    let journal = Journal::default();
    let running = Host::builder()
        .shutdown_timeout(Duration::from_secs(3))
        .add_service(Probe::service("patient", &journal, Fault::None).order(1))
        .add_service(Probe::service("stubborn", &journal, Fault::IgnoresStop).order(2))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let began = Instant::now();
    let outcome = running.stop().await;
    assert_eq!(
        began.elapsed(),
        Duration::from_secs(3),
        "the well-behaved service stops at once with its token already cancelled"
    );
    assert_eq!(outcome.exit_code(), 1);
    // Only the offender is an incident: the service it held up still got its whole stop.
    assert_eq!(incident_services(&outcome), ["stubborn"]);
    assert!(
        outcome.incidents()[0]
            .what
            .contains("still running when the shutdown budget of 3s ran out"),
        "{outcome:?}"
    );
    assert_eq!(journal.matching("stop:"), ["stop:stubborn", "stop:patient"]);
    assert_eq!(
        journal.matching("stopped:"),
        ["stopped:stubborn", "stopped:patient"]
    );
    assert_eq!(journal.matching("token:"), ["token:patient"]);
}

/// A service whose body needs `linger` after its token fires before it ends.
struct Slow {
    linger: Duration,
    journal: Journal,
}

impl HostedService for Slow {
    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        stop.cancelled().await;
        tokio::time::sleep(self.linger).await;
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.journal.note("stop:slow");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn after_the_budget_every_step_still_due_shares_one_short_grace() {
    let journal = Journal::default();
    let slow = |linger| {
        Arc::new(Slow {
            linger,
            journal: journal.clone(),
        })
    };
    let running = Host::builder()
        .shutdown_timeout(Duration::from_secs(1))
        .add_service(ServiceDescriptor::hosted("too-slow", slow(Duration::from_secs(1))).order(1))
        .add_service(ServiceDescriptor::hosted("quick", slow(Duration::from_millis(10))).order(2))
        .add_service(Probe::service("stubborn", &journal, Fault::IgnoresStop).order(3))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let began = Instant::now();
    let outcome = running.stop().await;
    assert_eq!(
        began.elapsed(),
        Duration::from_secs(1) + hosted::host::SHUTDOWN_GRACE,
        "the grace bounds everything after the budget together"
    );
    // `quick` needed 10 ms of the grace and stopped; `too-slow` needed more than was left.
    assert_eq!(incident_services(&outcome), ["stubborn", "too-slow"]);
    assert!(
        outcome.incidents()[1]
            .what
            .contains("held up by `stubborn`"),
        "{outcome:?}"
    );
    assert_eq!(
        journal.matching("stop:"),
        ["stop:stubborn", "stop:slow", "stop:slow"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_shutdown_budget_is_five_seconds() {
    let journal = Journal::default();
    let running = Host::builder()
        .add_service(Probe::service("stubborn", &journal, Fault::IgnoresStop))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let began = Instant::now();
    let outcome = running.stop().await;
    assert_eq!(began.elapsed(), hosted::host::DEFAULT_SHUTDOWN_TIMEOUT);
    assert_eq!(
        hosted::host::DEFAULT_SHUTDOWN_TIMEOUT,
        Duration::from_secs(5)
    );
    assert_eq!(incident_services(&outcome), ["stubborn"]);
}

#[tokio::test]
async fn a_failing_stop_is_reported_and_the_others_still_stop() {
    let journal = Journal::default();
    let outcome = start_and_stop(
        Host::builder()
            .add_service(Probe::service("a", &journal, Fault::None).order(1))
            .add_service(Probe::service("b", &journal, Fault::StopFails).order(2)),
    )
    .await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(incident_services(&outcome), ["b"]);
    assert!(
        outcome.incidents()[0]
            .what
            .contains("the socket would not close")
    );
    assert_eq!(journal.matching("stop:"), ["stop:b", "stop:a"]);
}

/// A background service that fails on each of its first `failures` runs, then waits for stop.
fn failing(name: &'static str, failures: u32, runs: &Arc<AtomicU32>) -> ServiceDescriptor {
    let runs = Arc::clone(runs);
    ServiceDescriptor::background(name, move |cx: RunContext| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if run <= failures {
                return Err(anyhow::anyhow!("run {run} lost its connection"));
            }
            cx.stop_token().cancelled().await;
            Ok(())
        }
    })
}

#[tokio::test]
async fn a_failure_stops_the_host_by_default_with_a_non_zero_exit() {
    let runs = Arc::new(AtomicU32::new(0));
    let outcome = run_to_end(Host::builder().add_service(failing("fragile", 1, &runs))).await;
    assert_eq!(
        outcome.reason(),
        Some(&StopReason::ServiceFailed {
            service: "fragile".into()
        })
    );
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(incident_services(&outcome), ["fragile"]);
    assert!(
        outcome.incidents()[0]
            .what
            .contains("run 1 lost its connection")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_panicking_body_is_a_failure_with_its_message() {
    let outcome = run_to_end(Host::builder().add_service(ServiceDescriptor::background(
        "panicky",
        |_: RunContext| async {
            let empty: [u8; 3] = [0; 3];
            let index = empty.len() + 4;
            let _ = std::hint::black_box(empty)[index];
        },
    )))
    .await;
    assert_eq!(outcome.exit_code(), 1);
    assert!(
        outcome.incidents()[0]
            .what
            .contains("panicked: index out of bounds: the len is 3 but the index is 7"),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ignored_failure_keeps_the_host_running() {
    let runs = Arc::new(AtomicU32::new(0));
    let journal = Journal::default();
    let running = Host::builder()
        .add_service(failing("optional", 1, &runs).on_failure(FailurePolicy::Ignore))
        .add_service(Probe::service("core", &journal, Fault::None))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_mins(1)).await;
    assert!(!running.lifetime().is_stopping());
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "an ignored failure is not restarted"
    );
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn the_host_default_policy_applies_to_services_without_their_own() {
    let runs = Arc::new(AtomicU32::new(0));
    let running = Host::builder()
        .default_failure_policy(FailurePolicy::Ignore)
        .add_service(failing("relaxed", 1, &runs))
        .build()
        .unwrap();
    let policies: Vec<_> = running
        .services()
        .map(|info| info.policy().clone())
        .collect();
    assert_eq!(policies, [FailurePolicy::Ignore]);
    let running = running.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!running.lifetime().is_stopping());
    assert!(running.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn restarts_back_off_exponentially_with_jitter_then_give_up() {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let policy = RestartPolicy::new()
        .with_max_restarts(4)
        .with_backoff(Duration::from_secs(1))
        .with_max_backoff(Duration::from_secs(5));
    let recorded = Arc::clone(&starts);
    let outcome = run_to_end(
        Host::builder().add_service(
            ServiceDescriptor::background("unlucky", move |_: RunContext| {
                recorded.lock().unwrap().push(Instant::now());
                async { Err::<(), _>("still down") }
            })
            .on_failure(FailurePolicy::Restart(policy.clone())),
        ),
    )
    .await;
    assert_eq!(
        outcome.reason(),
        Some(&StopReason::ServiceFailed {
            service: "unlucky".into()
        })
    );
    assert_eq!(outcome.exit_code(), 1);
    assert!(outcome.incidents()[0].what.contains("still down"));

    let starts = starts.lock().unwrap();
    assert_eq!(starts.len(), 5, "one run and four restarts");
    for (failure, pair) in (1..).zip(starts.windows(2)) {
        let waited = pair[1] - pair[0];
        let ceiling = policy.delay_ceiling(failure);
        assert!(
            waited >= ceiling / 2 && waited <= ceiling,
            "restart {failure} waited {waited:?}, outside [{:?}, {ceiling:?}]",
            ceiling / 2
        );
    }
    assert_eq!(
        policy.delay_ceiling(4),
        Duration::from_secs(5),
        "capped at max_backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_service_that_recovers_keeps_running() {
    let runs = Arc::new(AtomicU32::new(0));
    let running = Host::builder()
        .add_service(
            failing("recovers", 3, &runs).on_failure(FailurePolicy::Restart(RestartPolicy::new())),
        )
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_mins(2)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert!(!running.lifetime().is_stopping());
    let outcome = running.stop().await;
    assert!(
        outcome.is_success(),
        "recovered failures are not incidents: {outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_run_resets_the_count_of_consecutive_failures() {
    // Each run lasts longer than `max_backoff`, so no failure follows another closely: the
    // service is restarted far more often than `max_restarts`.
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let policy = RestartPolicy::new()
        .with_max_restarts(2)
        .with_backoff(Duration::from_secs(1))
        .with_max_backoff(Duration::from_secs(10));
    let running = Host::builder()
        .add_service(
            ServiceDescriptor::background("long-lived", move |cx: RunContext| {
                counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::select! {
                        () = cx.stop_token().cancelled() => Ok(()),
                        () = tokio::time::sleep(Duration::from_secs(11)) => Err("dropped after a while"),
                    }
                }
            })
            .on_failure(FailurePolicy::Restart(policy)),
        )
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_mins(2)).await;
    assert!(!running.lifetime().is_stopping());
    assert!(runs.load(Ordering::SeqCst) >= 9, "{runs:?}");
    assert!(running.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_the_restart_backoff_ends_at_once() {
    let runs = Arc::new(AtomicU32::new(0));
    let running = Host::builder()
        .add_service(
            failing("backing-off", 1, &runs).on_failure(FailurePolicy::Restart(
                RestartPolicy::new().with_backoff(Duration::from_secs(20)),
            )),
        )
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let began = Instant::now();
    let outcome = running.stop().await;
    assert!(began.elapsed() < Duration::from_secs(1));
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failure_while_stopping_makes_the_exit_code_non_zero() {
    let running = Host::builder()
        .add_service(ServiceDescriptor::background(
            "sloppy",
            |cx: RunContext| async move {
                cx.stop_token().cancelled().await;
                Err::<(), BoxError>("could not flush the buffer".into())
            },
        ))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let outcome = running.stop().await;
    assert_eq!(outcome.exit_code(), 1);
    assert!(
        outcome.incidents()[0]
            .what
            .contains("failed while stopping: could not flush the buffer")
    );
}

#[tokio::test]
async fn a_body_that_completes_leaves_the_host_running() {
    let running = Host::builder()
        .add_service(ServiceDescriptor::background(
            "one-shot",
            |_: RunContext| async {},
        ))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    tokio::task::yield_now().await;
    assert!(!running.lifetime().is_stopping());
    assert!(running.stop().await.is_success());
}

#[tokio::test]
async fn lifetime_events_fire_in_order_and_are_observable_from_services() {
    let journal = Journal::default();
    let observed = journal.clone();
    let host = Host::builder()
        .add_service(ServiceDescriptor::background(
            "observer",
            move |cx: RunContext| {
                let journal = observed.clone();
                async move {
                    cx.lifetime().started().await;
                    journal.note("observed:started");
                    cx.lifetime().stopping().await;
                    journal.note("observed:stopping");
                    assert!(!cx.lifetime().is_stopped());
                }
            },
        ))
        .build()
        .unwrap();
    let lifetime = host.lifetime().clone();
    let watcher = {
        let journal = journal.clone();
        let lifetime = lifetime.clone();
        tokio::spawn(async move {
            lifetime.stopped().await;
            journal.note("observed:stopped");
        })
    };
    assert!(!lifetime.is_started());
    let running = host.start().await.unwrap();
    assert!(lifetime.is_started());
    tokio::task::yield_now().await;
    let outcome = running.stop().await;
    watcher.await.unwrap();
    assert!(outcome.is_success());
    assert!(lifetime.is_stopping() && lifetime.is_stopped());
    assert_eq!(
        journal.entries(),
        ["observed:started", "observed:stopping", "observed:stopped"]
    );
}

#[tokio::test]
async fn the_stopping_token_plugs_into_token_based_apis() {
    let host = Host::builder().build().unwrap();
    let token = host.lifetime().stopping_token();
    let running = host.start().await.unwrap();
    assert!(!token.is_cancelled());
    let outcome = running.stop().await;
    assert!(token.is_cancelled());
    assert!(outcome.is_success());
}

#[test]
fn every_build_problem_is_reported_at_once() {
    let noop = |name: &'static str| ServiceDescriptor::background(name, |_: RunContext| async {});
    let error = Host::builder()
        .add_service(noop("twin"))
        .add_service(noop("twin"))
        .add_service(noop("lonely").after("nobody"))
        .add_service(noop("chicken").after("egg"))
        .add_service(noop("egg").after("chicken"))
        .build()
        .expect_err("the host is invalid");
    let problems = error.problems();
    assert!(
        problems.iter().any(
            |problem| matches!(problem, Problem::DuplicateService { name, .. } if name == "twin")
        ),
        "{problems:?}"
    );
    assert!(problems.iter().any(
        |problem| matches!(problem, Problem::UnknownAfter { service, after, .. } if service == "lonely" && after == "nobody")
    ));
    let text = error.to_string();
    assert!(
        text.starts_with("the host cannot start: 3 problems found"),
        "{text}"
    );
    assert!(text.contains("two services are named `twin`"), "{text}");
    assert!(
        text.contains("services start after each other in a circle: chicken -> egg -> chicken")
            || text.contains("services start after each other in a circle: egg -> chicken -> egg"),
        "{text}"
    );
}

#[test]
fn an_unknown_after_suggests_the_full_name() {
    let error = Host::builder()
        .add_service(ServiceDescriptor::background(
            "app::database",
            |_: RunContext| async {},
        ))
        .add_service(
            ServiceDescriptor::background("app::api", |_: RunContext| async {}).after("database"),
        )
        .build()
        .expect_err("`database` is not a name");
    assert!(
        error.to_string().contains("did you mean `app::database`?"),
        "{error}"
    );
}

#[tokio::test]
async fn instances_added_on_the_builder_are_shared() {
    trait Clock: Send + Sync {
        fn now(&self) -> u64;
    }
    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> u64 {
            42
        }
    }
    let seen = Arc::new(AtomicU32::new(0));
    let recorded = Arc::clone(&seen);
    let running = Host::builder()
        .add_instance::<dyn Clock>(Arc::new(Fixed))
        .add_service(ServiceDescriptor::background(
            "reads-clock",
            move |cx: RunContext| {
                let recorded = Arc::clone(&recorded);
                async move {
                    let clock = cx.resolve::<Arc<dyn Clock>>().await?;
                    recorded.store(u32::try_from(clock.now()).unwrap(), Ordering::SeqCst);
                    Ok::<(), BoxError>(())
                }
            },
        ))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    tokio::task::yield_now().await;
    let clock = running.get::<dyn Clock>().await.unwrap();
    assert_eq!(clock.now(), 42);
    assert!(running.stop().await.is_success());
    assert_eq!(seen.load(Ordering::SeqCst), 42);
}

#[tokio::test]
async fn a_removed_service_does_not_run() {
    let journal = Journal::default();
    let outcome = start_and_stop(
        Host::builder()
            .add_service(Probe::service("kept", &journal, Fault::None))
            .add_service(Probe::service("removed", &journal, Fault::None))
            .remove_service("removed"),
    )
    .await;
    assert!(outcome.is_success());
    assert_eq!(journal.matching("start:"), ["start:kept"]);
}

#[tokio::test]
async fn a_stop_requested_before_start_runs_no_hook_at_all() {
    let journal = Journal::default();
    let host = Host::builder()
        .add_service(Probe::service("a", &journal, Fault::None))
        .build()
        .unwrap();
    host.lifetime().stop_application();
    let lifetime = host.lifetime().clone();
    let outcome = host.start().await.expect_err("nothing starts");
    assert!(outcome.is_success(), "{outcome:?}");
    assert!(journal.entries().is_empty(), "{:?}", journal.entries());
    assert!(lifetime.is_stopping() && lifetime.is_stopped());
}

#[tokio::test]
async fn a_service_whose_starting_hook_ran_gets_its_stopping_and_stopped_hooks() {
    struct QuitsWhileStarting;
    impl HostedService for QuitsWhileStarting {
        async fn starting(&self, cx: &ServiceContext) -> Result<(), BoxError> {
            cx.lifetime().stop_application();
            Ok(())
        }
    }
    let journal = Journal::default();
    let outcome = Host::builder()
        .add_service(Probe::service("first", &journal, Fault::None).order(1))
        .add_service(ServiceDescriptor::hosted("quitter", Arc::new(QuitsWhileStarting)).order(2))
        .add_service(Probe::service("never", &journal, Fault::None).order(3))
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("startup is abandoned");
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(
        journal.entries(),
        ["starting:first", "stopping:first", "stopped:first"],
        "no `start`, and nothing for the service whose `starting` never ran"
    );
}

#[tokio::test]
async fn the_stopping_event_fires_as_soon_as_a_stop_is_requested() {
    /// Requests the stop from `start`, then waits for the stopping event: in .NET that returns
    /// at once, since `StopApplication` fires `ApplicationStopping`.
    struct WaitsForStopping;
    impl HostedService for WaitsForStopping {
        async fn start(&self, cx: &ServiceContext) -> Result<(), BoxError> {
            cx.lifetime().stop_application();
            cx.lifetime().stopping().await;
            Ok(())
        }
    }
    let started = tokio::time::timeout(
        Duration::from_secs(10),
        Host::builder()
            .add_service(ServiceDescriptor::hosted(
                "waits",
                Arc::new(WaitsForStopping),
            ))
            .build()
            .unwrap()
            .start(),
    )
    .await
    .expect("`start` waiting for the stopping event does not deadlock the host");
    assert!(started.expect_err("stopped during startup").is_success());
}

#[tokio::test]
async fn a_failure_fires_the_stopping_event_before_the_host_stops_anything() {
    let runs = Arc::new(AtomicU32::new(0));
    let running = Host::builder()
        .add_service(failing("fails", 1, &runs))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    running.wait().await;
    assert!(running.lifetime().is_stopping());
    assert!(!running.lifetime().is_stopped());
    assert_eq!(running.stop().await.exit_code(), 1);
}

#[tokio::test]
async fn a_direct_stop_runs_the_stopping_hooks_before_the_stopping_event_as_dotnet_does() {
    struct Watches(Journal);
    impl HostedService for Watches {
        async fn stopping(&self, cx: &ServiceContext) -> Result<(), BoxError> {
            self.0.note(format!(
                "stopping hook, event fired: {}",
                cx.lifetime().is_stopping()
            ));
            Ok(())
        }
        async fn stop(&self, cx: &ServiceContext) -> Result<(), BoxError> {
            self.0.note(format!(
                "stop, event fired: {}",
                cx.lifetime().is_stopping()
            ));
            Ok(())
        }
    }
    let journal = Journal::default();
    let outcome = start_and_stop(Host::builder().add_service(ServiceDescriptor::hosted(
        "watches",
        Arc::new(Watches(journal.clone())),
    )))
    .await;
    assert!(outcome.is_success());
    assert_eq!(
        journal.entries(),
        [
            "stopping hook, event fired: false",
            "stop, event fired: true"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_hook_that_overruns_the_budget_is_an_incident_like_any_phase() {
    struct SlowStopped;
    impl HostedService for SlowStopped {
        async fn stopped(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
            tokio::time::sleep(Duration::from_mins(1)).await;
            Ok(())
        }
    }
    let began = Instant::now();
    let outcome = start_and_stop(
        Host::builder()
            .shutdown_timeout(Duration::from_secs(2))
            .add_service(ServiceDescriptor::hosted(
                "slow-stopped",
                Arc::new(SlowStopped),
            )),
    )
    .await;
    assert_eq!(began.elapsed(), Duration::from_secs(2));
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(incident_services(&outcome), ["slow-stopped"]);
    assert!(
        outcome.incidents()[0]
            .what
            .contains("its `stopped` hook did not finish within the shutdown budget of 2s"),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn unlimited_budgets_are_duration_max_and_do_not_panic() {
    let journal = Journal::default();
    let outcome = start_and_stop(
        Host::builder()
            .startup_timeout(Duration::MAX)
            .shutdown_timeout(Duration::MAX)
            .add_service(Probe::service("a", &journal, Fault::None)),
    )
    .await;
    assert!(outcome.is_success(), "{outcome:?}");

    // Over 500 billion years: beyond what an `Instant` can reach, as `Duration::MAX` is.
    let configuration = hosted::config::ConfigSources::new()
        .argument("--host.shutdown_timeout=5000000000000000h")
        .unwrap()
        .argument("--host.startup_timeout=5000000000000000h")
        .unwrap()
        .load()
        .expect("a valid configuration");
    let host = Host::builder()
        .configuration(configuration)
        .add_service(Probe::service("b", &journal, Fault::None))
        .build()
        .expect("a huge budget is a valid one");
    let outcome = host.start().await.unwrap().stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stop_future_leaves_the_stop_running_to_its_end() {
    struct SlowStop(Journal);
    impl HostedService for SlowStop {
        async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.0.note("stop:slow");
            Ok(())
        }
        async fn stopped(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
            self.0.note("stopped:slow");
            Ok(())
        }
    }
    let journal = Journal::default();
    let running = Host::builder()
        .add_service(ServiceDescriptor::hosted(
            "slow",
            Arc::new(SlowStop(journal.clone())),
        ))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let lifetime = running.lifetime().clone();
    let cut = tokio::time::timeout(Duration::from_millis(10), running.stop()).await;
    assert!(cut.is_err(), "the caller gave up first");
    assert!(!lifetime.is_stopped());
    tokio::time::timeout(Duration::from_secs(5), lifetime.stopped())
        .await
        .expect("the stop went on without its caller");
    assert_eq!(journal.entries(), ["stop:slow", "stopped:slow"]);
}

#[tokio::test]
async fn a_selection_keeps_only_the_named_services_and_what_they_register() {
    let journal = Journal::default();
    let builder = || {
        Host::builder()
            .add_service(Probe::service(
                "app::billing::invoicer",
                &journal,
                Fault::None,
            ))
            .add_service(Probe::service(
                "app::billing::reminder",
                &journal,
                Fault::None,
            ))
            .add_service(Probe::service("app::billingx", &journal, Fault::None))
            .add_service(ServiceDescriptor::queued(
                "app::mail::outbox",
                hosted::queue::QueueOptions::new(4),
                |_item: u32, _cx: RunContext| async {},
                hosted::queue::DeadLetters::log(),
            ))
    };
    let names = |host: &Host| -> Vec<String> {
        host.services()
            .map(|service| service.name().to_owned())
            .collect()
    };
    let by_module = builder().only(["app::billing"]).build().unwrap();
    assert_eq!(
        names(&by_module),
        ["app::billing::invoicer", "app::billing::reminder"],
        "a module prefix matches whole path segments only"
    );
    let by_name = builder()
        .only(["app::billing::reminder", "app::mail::outbox"])
        .build()
        .unwrap();
    assert_eq!(
        names(&by_name),
        ["app::billing::reminder", "app::mail::outbox"]
    );
    let by_predicate = builder()
        .select(|name| name.ends_with("invoicer"))
        .build()
        .unwrap();
    assert_eq!(names(&by_predicate), ["app::billing::invoicer"]);

    // What a dropped service registers goes with it.
    let running = by_module.start().await.unwrap();
    assert!(running.get::<hosted::Queue<u32>>().await.is_err());
    assert!(running.stop().await.is_success());
    assert_eq!(
        journal.matching("start:"),
        [
            "start:app::billing::invoicer",
            "start:app::billing::reminder"
        ]
    );

    let error = builder()
        .only(["app::biling"])
        .build()
        .expect_err("a typo must not leave nothing to run");
    assert!(
        error.to_string().contains(
            "`only` keeps `app::biling`, but no service has that name or lives in that module"
        ),
        "{error}"
    );
    assert!(
        error
            .problems()
            .iter()
            .any(|problem| matches!(problem, Problem::UnknownSelection { .. }))
    );
}

/// A service whose `stop` waits for `others` more services to enter theirs, and notes when its
/// stop began and ended, and when its body saw its token.
struct Rendezvous {
    name: &'static str,
    barrier: Option<Arc<tokio::sync::Barrier>>,
    linger: Duration,
    journal: Journal,
    origin: Instant,
}

impl Rendezvous {
    fn service(
        name: &'static str,
        barrier: Option<&Arc<tokio::sync::Barrier>>,
        linger: Duration,
        journal: &Journal,
        origin: Instant,
    ) -> ServiceDescriptor {
        ServiceDescriptor::hosted(
            name,
            Arc::new(Self {
                name,
                barrier: barrier.cloned(),
                linger,
                journal: journal.clone(),
                origin,
            }),
        )
    }

    fn note(&self, what: &str) {
        let at = self.origin.elapsed().as_millis();
        self.journal.note(format!("{what}:{}@{at}", self.name));
    }
}

impl HostedService for Rendezvous {
    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        stop.cancelled().await;
        self.note("token");
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.note("stop");
        if let Some(barrier) = &self.barrier {
            barrier.wait().await;
        }
        tokio::time::sleep(self.linger).await;
        self.note("stopped");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn services_nothing_orders_stop_together() {
    let journal = Journal::default();
    let origin = Instant::now();
    // Each `stop` waits for the other two: stopped one after another, the first would wait for
    // the whole budget.
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let mut builder = Host::builder().shutdown_timeout(Duration::from_secs(5));
    for name in ["alpha", "bravo", "charlie"] {
        builder = builder.add_service(Rendezvous::service(
            name,
            Some(&barrier),
            Duration::from_secs(1),
            &journal,
            origin,
        ));
    }
    let running = builder.build().unwrap().start().await.unwrap();
    let began = Instant::now();
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(
        began.elapsed(),
        Duration::from_secs(1),
        "the three stops overlap"
    );
    // Still begun in reverse start order.
    assert_eq!(
        journal.matching("stop:"),
        ["stop:charlie@0", "stop:bravo@0", "stop:alpha@0"]
    );
    assert_eq!(journal.matching("token:").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_service_stops_only_once_everything_after_it_has_stopped() {
    let journal = Journal::default();
    let origin = Instant::now();
    let second = Duration::from_secs(1);
    let running = Host::builder()
        .add_service(Rendezvous::service(
            "database", None, second, &journal, origin,
        ))
        .add_service(Rendezvous::service("cache", None, second, &journal, origin).after("database"))
        .add_service(Rendezvous::service("web", None, second, &journal, origin).after("cache"))
        // Unordered: stops together with `web`, the first to go.
        .add_service(Rendezvous::service("audit", None, second, &journal, origin))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    let mut stops = journal.matching("stop:");
    stops.sort();
    assert_eq!(
        stops,
        [
            "stop:audit@0",
            "stop:cache@1000",
            "stop:database@2000",
            "stop:web@0"
        ]
    );
    // A body learns of the stop only when its turn comes.
    let mut tokens = journal.matching("token:");
    tokens.sort();
    assert_eq!(
        tokens,
        [
            "token:audit@0",
            "token:cache@1000",
            "token:database@2000",
            "token:web@0"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn order_levels_stop_in_reverse_one_after_another() {
    let journal = Journal::default();
    let origin = Instant::now();
    let second = Duration::from_secs(1);
    let running = Host::builder()
        .add_service(Rendezvous::service("early", None, second, &journal, origin).order(-1))
        .add_service(Rendezvous::service("plain", None, second, &journal, origin))
        .add_service(Rendezvous::service("other", None, second, &journal, origin))
        .add_service(Rendezvous::service("late", None, second, &journal, origin).order(1))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(
        journal.matching("stop:"),
        [
            "stop:late@0",
            "stop:plain@1000",
            "stop:other@1000",
            "stop:early@2000"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_wave_ends_with_its_last_body_however_their_ends_are_spread() {
    let journal = Journal::default();
    let origin = Instant::now();
    let mut builder = Host::builder().shutdown_timeout(Duration::from_secs(5));
    for index in 0..50_u64 {
        builder = builder.add_service(ServiceDescriptor::background(
            format!("worker{index:02}"),
            move |cx: RunContext| async move {
                cx.stop_token().cancelled().await;
                // Each lingers a different time, in another order than the start's: the last
                // to end is neither the first nor the last started.
                let linger = (index * 37) % 50 * 10;
                tokio::time::sleep(Duration::from_millis(linger)).await;
            },
        ));
    }
    // Its body ended long before the stop: it holds nothing up.
    builder = builder.add_service(ServiceDescriptor::background(
        "done_early",
        |_: RunContext| async {},
    ));
    builder = builder.add_service(
        Rendezvous::service("database", None, Duration::ZERO, &journal, origin).order(-1),
    );
    let running = builder.build().unwrap().start().await.unwrap();
    let began = Instant::now();
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    // The next wave's token fires once the last body of the first has ended, not before it
    // and not later (the bodies end side by side: not the sum of their lingers).
    assert_eq!(journal.matching("token:"), ["token:database@490"]);
    assert_eq!(began.elapsed(), Duration::from_millis(490));
}
