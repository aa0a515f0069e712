//! What `#[timed]` expands to, run on the paused clock: the schedule and policies reach the
//! runtime, the `Tick` parameter and other injected values arrive, each tick gets a fresh scope
//! disposed with its outcome, and `--list`-visible facts (kind, policy, order) are right.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hosted::service::{ServiceInfo, ServiceKind};
use hosted::testing::TestHost;
use hosted::{Dispose, FailurePolicy, Host, ScopeExit, Tick};

/// The values each tick's scope built, and how each scope ended.
#[hosted::singleton]
struct Journal {
    #[hosted(default)]
    created: AtomicU32,
    #[hosted(default)]
    exits: Mutex<Vec<(u32, ScopeExit)>>,
}

/// One per tick.
struct UnitOfWork {
    id: u32,
    journal: Arc<Journal>,
}

#[hosted::scoped]
fn unit_of_work(journal: Arc<Journal>) -> UnitOfWork {
    let id = journal.created.fetch_add(1, Ordering::SeqCst) + 1;
    UnitOfWork { id, journal }
}

impl Dispose for UnitOfWork {
    async fn dispose(&self, exit: ScopeExit) {
        self.journal.exits.lock().unwrap().push((self.id, exit));
    }
}

/// Seen by the test: each tick's number and its unit of work.
#[hosted::singleton]
struct Seen {
    #[hosted(default)]
    ticks: Mutex<Vec<(u64, u32, String)>>,
}

/// Fails its second tick, and keeps going (the default policy of timers).
#[hosted::timed(
    every = "10s",
    initial_delay = "1s",
    name = "attribute::ticker",
    order = 5
)]
async fn ticker(
    tick: Tick,
    unit: Arc<UnitOfWork>,
    seen: Arc<Seen>,
    info: ServiceInfo,
) -> anyhow::Result<()> {
    seen.ticks
        .lock()
        .unwrap()
        .push((tick.number(), unit.id, info.name().to_owned()));
    anyhow::ensure!(tick.number() != 2, "the second tick fails");
    Ok(())
}

/// Starts after the ticker, runs on a cron schedule with a jitter.
#[hosted::timed(cron = "*/30 * * * * *", jitter = "100ms", after = ticker, on_failure = "stop")]
async fn half_minute() {}

#[tokio::test(start_paused = true)]
async fn the_attribute_runs_its_schedule_with_a_fresh_scope_per_tick() {
    let mut host = TestHost::start(Host::builder().discover())
        .await
        .expect("the host starts");
    host.run_for(Duration::from_secs(35)).await;

    let ticker = host.ticks("attribute::ticker");
    let starts: Vec<u128> = ticker
        .iter()
        .map(|record| (record.tick.started() - host.origin()).as_millis())
        .collect();
    assert_eq!(starts, [1_000, 11_000, 21_000, 31_000]);

    let seen = host.host().get::<Seen>().await.unwrap();
    let journal = host.host().get::<Journal>().await.unwrap();
    assert_eq!(
        *seen.ticks.lock().unwrap(),
        (1..=4)
            .map(|n| (n, u32::try_from(n).unwrap(), "attribute::ticker".to_owned()))
            .collect::<Vec<_>>(),
        "one unit of work per tick"
    );
    assert_eq!(
        *journal.exits.lock().unwrap(),
        [
            (1, ScopeExit::Succeeded),
            (2, ScopeExit::Failed),
            (3, ScopeExit::Succeeded),
            (4, ScopeExit::Succeeded),
        ],
        "each tick's scope is disposed with its outcome"
    );

    let half_minute = host.ticks(concat!(module_path!(), "::half_minute"));
    assert!(!half_minute.is_empty());
    // Due at :30 of the wall clock; each start is its due time plus up to 100 ms of jitter, on
    // time to tokio's millisecond.
    assert!(half_minute.iter().all(|record| {
        let wall = record.tick.scheduled_at();
        let seconds = wall
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let jitter = seconds - (seconds / 30.0).floor() * 30.0;
        jitter <= 0.1 && record.tick.lateness() < Duration::from_millis(1)
    }));
    assert!(host.stop().await.is_success());
}

#[test]
fn the_attribute_registers_a_timed_service_with_its_facts() {
    let host = Host::builder().discover().build().unwrap();
    let services: Vec<&ServiceInfo> = host.services().collect();
    let ticker = services
        .iter()
        .find(|service| service.name() == "attribute::ticker")
        .unwrap();
    assert_eq!(ticker.kind(), ServiceKind::Timed);
    assert_eq!(ticker.order(), 5);
    assert_eq!(*ticker.policy(), FailurePolicy::Ignore);
    let half_minute = services
        .iter()
        .find(|service| service.name().ends_with("::half_minute"))
        .unwrap();
    assert_eq!(
        half_minute.after().collect::<Vec<_>>(),
        ["attribute::ticker"]
    );
    assert_eq!(*half_minute.policy(), FailurePolicy::StopHost);
}
