//! `#[singleton]`, `#[scoped]` and `#[transient]` on types and factory functions, resolved in
//! services declared with `#[hosted_service]`: each run of a function gets a fresh scope.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hosted::{
    ApplicationLifetime, BoxError, CancellationToken, Dispose, Host, HostedService, ScopeExit,
    ScopeFactory, ServiceContext,
};

/// Everything the test observes, shared by every registration.
#[hosted::singleton]
struct Journal {
    #[hosted(default)]
    entries: Mutex<Vec<String>>,
    #[hosted(default)]
    counter: AtomicUsize,
}

impl Journal {
    fn note(&self, entry: impl Into<String>) {
        self.entries.lock().unwrap().push(entry.into());
    }

    fn next_id(&self) -> usize {
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn entries(&self) -> Vec<String> {
        self.entries.lock().unwrap().clone()
    }
}

/// A synchronous, infallible singleton factory.
struct Settings {
    greeting: &'static str,
}

#[hosted::singleton]
fn settings() -> Settings {
    Settings { greeting: "hello" }
}

/// An asynchronous, fallible scoped factory with a dispose hook.
struct UnitOfWork {
    id: usize,
    journal: Arc<Journal>,
}

#[hosted::scoped]
async fn unit_of_work(
    journal: Arc<Journal>,
    settings: Arc<Settings>,
) -> anyhow::Result<UnitOfWork> {
    tokio::task::yield_now().await;
    let id = journal.next_id();
    journal.note(format!("open unit#{id} ({})", settings.greeting));
    Ok(UnitOfWork { id, journal })
}

impl Dispose for UnitOfWork {
    async fn dispose(&self, exit: ScopeExit) {
        let verb = match exit {
            ScopeExit::Succeeded => "commit",
            ScopeExit::Failed => "roll back",
        };
        self.journal.note(format!("{verb} unit#{}", self.id));
    }
}

/// A scoped type built from injected fields.
#[hosted::scoped]
struct Repository {
    unit: Arc<UnitOfWork>,
}

/// A transient registered under a trait object.
trait Clock: Send + Sync {
    fn id(&self) -> usize;
}

#[hosted::transient(as = dyn Clock)]
struct TickingClock {
    journal: Arc<Journal>,
    #[hosted(default)]
    id: std::sync::OnceLock<usize>,
}

impl Clock for TickingClock {
    fn id(&self) -> usize {
        *self.id.get_or_init(|| self.journal.next_id())
    }
}

/// Never registered: `Option<Arc<Unregistered>>` is `None`.
struct Unregistered;

/// What one run of `worker` saw.
#[derive(Clone, Debug)]
struct RunSeen {
    repository_unit: usize,
    unit: usize,
    shared: bool,
    first_clock: usize,
    second_clock: usize,
    missing: bool,
}

/// What each run of `worker` saw.
#[hosted::singleton]
struct Runs {
    #[hosted(default)]
    seen: Mutex<Vec<RunSeen>>,
}

#[hosted::hosted_service(on_failure = "restart", max_restarts = 3, backoff = "1ms")]
async fn worker(
    repository: Arc<Repository>,
    unit: Arc<UnitOfWork>,
    first_clock: Arc<dyn Clock>,
    second_clock: Arc<dyn Clock>,
    missing: Option<Arc<Unregistered>>,
    runs: Arc<Runs>,
    stop: CancellationToken,
) -> Result<(), BoxError> {
    let run = {
        let mut seen = runs.seen.lock().unwrap();
        seen.push(RunSeen {
            repository_unit: repository.unit.id,
            unit: unit.id,
            shared: Arc::ptr_eq(&repository.unit, &unit),
            first_clock: first_clock.id(),
            second_clock: second_clock.id(),
            missing: missing.is_none(),
        });
        seen.len()
    };
    if run < 3 {
        return Err(format!("run {run} fails").into());
    }
    stop.cancelled().await;
    Ok(())
}

/// A long-lived service that opens a scope per round, as seed 001's game service does.
#[hosted::hosted_service]
struct Rounds {
    scopes: ScopeFactory,
    journal: Arc<Journal>,
    lifetime: ApplicationLifetime,
}

impl HostedService for Rounds {
    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        self.lifetime.started().await;
        for round in 1..=2 {
            let scope = self.scopes.create_scope();
            let unit = scope.resolve::<Arc<UnitOfWork>>().await?;
            self.journal
                .note(format!("round {round} uses unit#{}", unit.id));
            drop(unit);
            scope.end(ScopeExit::Succeeded).await;
        }
        stop.cancelled().await;
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test]
async fn attributes_register_each_lifespan_and_every_run_gets_a_scope() {
    let running = Host::builder()
        .discover()
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("a clean start");
    let runs = running.get::<Runs>().await.unwrap();
    for _ in 0..1000 {
        if runs.seen.lock().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let journal = running.get::<Journal>().await.unwrap();
    for _ in 0..1000 {
        if journal
            .entries()
            .iter()
            .any(|entry| entry.starts_with("round 2"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");

    let seen = runs.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "one run and two restarts: {seen:?}");
    let units: Vec<usize> = seen.iter().map(|run| run.unit).collect();
    assert!(
        units[0] != units[1] && units[1] != units[2],
        "a fresh scope per run: {units:?}"
    );
    for run in &seen {
        assert_eq!(run.repository_unit, run.unit);
        assert!(run.shared, "scoped values are shared within the run");
        assert_ne!(
            run.first_clock, run.second_clock,
            "transients are new each time"
        );
        assert!(run.missing, "an unregistered optional dependency is `None`");
    }

    let entries = journal.entries();
    for (position, unit) in units.iter().enumerate() {
        let opened = format!("open unit#{unit} (hello)");
        let closed = if position < 2 {
            format!("roll back unit#{unit}")
        } else {
            format!("commit unit#{unit}")
        };
        assert!(entries.contains(&opened), "{entries:?}");
        assert!(
            entries.contains(&closed),
            "a failed run rolls back, the last commits: {entries:?}"
        );
    }
    let rounds: Vec<&String> = entries
        .iter()
        .filter(|entry| entry.starts_with("round "))
        .collect();
    assert_eq!(rounds.len(), 2, "{entries:?}");
    assert_ne!(
        rounds[0].rsplit('#').next(),
        rounds[1].rsplit('#').next(),
        "a scope per round"
    );
}

#[test]
fn registrations_list_their_lifespans() {
    let host = Host::builder().discover().build().unwrap();
    let services: Vec<&str> = host
        .services()
        .map(hosted::service::ServiceInfo::name)
        .collect();
    assert_eq!(services, ["lifespans::Rounds", "lifespans::worker"]);
}
