//! Dependency injection with registrations made by hand: lifespans, scopes per run, release
//! order, dispose hooks, overrides, trait objects, optional dependencies, manual scopes and
//! concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hosted::di::{Provider, RunContext};
use hosted::host::{HostBuilder, Outcome};
use hosted::registry::ServiceDescriptor;
use hosted::{BoxError, Dispose, Host, ScopeExit, ScopeFactory};

/// What happened, in order.
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

/// A value that notes its creation, its disposal and its release.
struct Tracked {
    id: usize,
    kind: &'static str,
    journal: Journal,
}

impl Tracked {
    fn new(kind: &'static str, journal: &Journal, counter: &AtomicUsize) -> Self {
        let id = counter.fetch_add(1, Ordering::SeqCst) + 1;
        journal.note(format!("create {kind}#{id}"));
        Self {
            id,
            kind,
            journal: journal.clone(),
        }
    }
}

impl Dispose for Tracked {
    async fn dispose(&self, exit: ScopeExit) {
        self.journal
            .note(format!("dispose {}#{} {exit:?}", self.kind, self.id));
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.journal.note(format!("drop {}#{}", self.kind, self.id));
    }
}

/// Distinct types for each registration of a [`Tracked`].
macro_rules! tracked_types {
    ($($name:ident),*) => {$(
        struct $name(Tracked);
        impl Dispose for $name {
            async fn dispose(&self, exit: ScopeExit) {
                self.0.dispose(exit).await;
            }
        }
    )*};
}
tracked_types!(Config, Connection, UnitOfWork, Request);

fn provide_all(builder: HostBuilder, journal: &Journal) -> HostBuilder {
    let counter = Arc::new(AtomicUsize::new(0));
    let (j1, c1) = (journal.clone(), Arc::clone(&counter));
    let (j2, c2) = (journal.clone(), Arc::clone(&counter));
    let (j3, c3) = (journal.clone(), Arc::clone(&counter));
    let (j4, c4) = (journal.clone(), counter);
    builder
        .provide(
            Provider::singleton(move |_: RunContext| {
                let value = Config(Tracked::new("config", &j1, &c1));
                async move { Ok::<_, BoxError>(Arc::new(value)) }
            })
            .disposing::<Config>(),
        )
        .provide(
            Provider::scoped(move |cx: RunContext| {
                let (journal, counter) = (j2.clone(), Arc::clone(&c2));
                async move {
                    let _config = cx.resolve::<Arc<Config>>().await?;
                    Ok::<_, BoxError>(Arc::new(Connection(Tracked::new(
                        "connection",
                        &journal,
                        &counter,
                    ))))
                }
            })
            .disposing::<Connection>(),
        )
        .provide(
            Provider::scoped(move |cx: RunContext| {
                let (journal, counter) = (j3.clone(), Arc::clone(&c3));
                async move {
                    let _connection = cx.resolve::<Arc<Connection>>().await?;
                    Ok::<_, BoxError>(Arc::new(UnitOfWork(Tracked::new(
                        "unit", &journal, &counter,
                    ))))
                }
            })
            .disposing::<UnitOfWork>(),
        )
        .provide(
            Provider::transient(move |_: RunContext| {
                let value = Request(Tracked::new("request", &j4, &c4));
                async move { Ok::<_, BoxError>(Arc::new(value)) }
            })
            .disposing::<Request>(),
        )
}

/// The ids one run saw: config, connection, unit of work, two requests.
type RunIds = (usize, usize, usize, usize, usize);

/// The ids each run saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<RunIds>>>);

fn probe_service(seen: &Seen, fail: bool) -> ServiceDescriptor {
    let seen = seen.clone();
    ServiceDescriptor::background("probe", move |cx: RunContext| {
        let seen = seen.clone();
        async move {
            let unit = cx.resolve::<Arc<UnitOfWork>>().await?;
            let unit_again = cx.resolve::<Arc<UnitOfWork>>().await?;
            let connection = cx.resolve::<Arc<Connection>>().await?;
            let first = cx.resolve::<Arc<Request>>().await?;
            let second = cx.resolve::<Arc<Request>>().await?;
            assert!(
                Arc::ptr_eq(&unit, &unit_again),
                "scoped values are shared within a scope"
            );
            let config = cx.resolve::<Arc<Config>>().await?;
            seen.0.lock().unwrap().push((
                config.0.id,
                connection.0.id,
                unit.0.id,
                first.0.id,
                second.0.id,
            ));
            if fail {
                return Err::<(), BoxError>("the run failed".into());
            }
            Ok(())
        }
    })
}

async fn one_run(builder: HostBuilder) -> Outcome {
    let running = builder
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("a clean start");
    tokio::task::yield_now().await;
    running.stop().await
}

#[tokio::test]
async fn each_lifespan_lives_as_long_as_it_says() {
    let journal = Journal::default();
    let seen = Seen::default();
    let outcome =
        one_run(provide_all(Host::builder(), &journal).add_service(probe_service(&seen, false)))
            .await;
    assert!(outcome.is_success(), "{outcome:?}");
    let runs = seen.0.lock().unwrap().clone();
    let [(config, connection, unit, first, second)] = runs[..] else {
        panic!("one run expected: {runs:?}")
    };
    assert_ne!(first, second, "transients are new each time");
    assert!(
        config < connection && connection < unit,
        "built in dependency order"
    );
    assert_eq!(
        journal.entries(),
        [
            // The singleton is built before any service starts.
            "create config#1",
            "create connection#2",
            "create unit#3",
            "create request#4",
            "create request#5",
            // At the end of the run: disposed in reverse creation order, then released.
            "dispose request#5 Succeeded",
            "dispose request#4 Succeeded",
            "dispose unit#3 Succeeded",
            "dispose connection#2 Succeeded",
            "drop request#5",
            "drop request#4",
            "drop unit#3",
            "drop connection#2",
            // The singleton outlives every run and is disposed once the services have stopped.
            "dispose config#1 Succeeded",
            "drop config#1",
        ]
    );
}

#[tokio::test]
async fn a_failed_run_tells_its_values_so() {
    let journal = Journal::default();
    let seen = Seen::default();
    let outcome = one_run(
        provide_all(Host::builder(), &journal)
            .add_service(probe_service(&seen, true).on_failure(hosted::FailurePolicy::Ignore)),
    )
    .await;
    assert!(outcome.is_success(), "ignored: {outcome:?}");
    let entries = journal.entries();
    assert!(
        entries.contains(&"dispose unit#3 Failed".to_owned()),
        "{entries:?}"
    );
    assert!(
        entries.contains(&"dispose connection#2 Failed".to_owned()),
        "{entries:?}"
    );
    assert!(
        entries.contains(&"dispose config#1 Succeeded".to_owned()),
        "the host ended cleanly"
    );
}

#[tokio::test]
async fn every_run_gets_its_own_scope() {
    let journal = Journal::default();
    let seen = Seen::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let seen_by_runs = seen.clone();
    let service = ServiceDescriptor::background("restarted", move |cx: RunContext| {
        let seen = seen_by_runs.clone();
        let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let unit = cx.resolve::<Arc<UnitOfWork>>().await?;
            seen.0.lock().unwrap().push((0, 0, unit.0.id, 0, 0));
            if run < 3 {
                return Err::<(), BoxError>("again".into());
            }
            cx.stop_token().cancelled().await;
            Ok(())
        }
    })
    .on_failure(hosted::FailurePolicy::Restart(
        hosted::service::RestartPolicy::new().with_backoff(std::time::Duration::from_millis(1)),
    ));
    let running = provide_all(Host::builder(), &journal)
        .add_service(service)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    while runs.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    let units: Vec<usize> = seen.0.lock().unwrap().iter().map(|seen| seen.2).collect();
    assert_eq!(units.len(), 3);
    assert!(
        units[0] != units[1] && units[1] != units[2],
        "a fresh unit of work per run: {units:?}"
    );
}

#[tokio::test]
async fn a_manual_scope_shares_and_disposes_like_a_run() {
    let journal = Journal::default();
    let host = provide_all(Host::builder(), &journal).build().unwrap();
    let running = host.start().await.unwrap();
    assert_eq!(
        running.get::<Config>().await.unwrap().0.id,
        1,
        "the singleton is shared"
    );
    let factory = running.scope_factory();
    let first = factory.create_scope();
    let second = factory.create_scope();
    let a = first.resolve::<Arc<UnitOfWork>>().await.unwrap();
    let b = first.resolve::<Arc<UnitOfWork>>().await.unwrap();
    let c = second.resolve::<Arc<UnitOfWork>>().await.unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &c), "scopes are isolated");
    let (a_id, c_id) = (a.0.id, c.0.id);
    drop((a, b, c));
    first.end(ScopeExit::Succeeded).await;
    assert!(
        journal
            .entries()
            .contains(&format!("dispose unit#{a_id} Succeeded"))
    );
    drop(second);
    // A scope dropped without `end` is disposed in the background, as failed.
    for _ in 0..100 {
        if journal
            .entries()
            .contains(&format!("dispose unit#{c_id} Failed"))
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        journal
            .entries()
            .contains(&format!("dispose unit#{c_id} Failed")),
        "{:?}",
        journal.entries()
    );
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_scopes_at_once_stay_isolated() {
    let journal = Journal::default();
    let running = provide_all(Host::builder(), &journal)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let factory = running.scope_factory();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let factory: ScopeFactory = factory.clone();
            tokio::spawn(async move {
                let scope = factory.create_scope();
                let (one, two) = tokio::join!(
                    scope.resolve::<Arc<UnitOfWork>>(),
                    scope.resolve::<Arc<UnitOfWork>>()
                );
                let (one, two) = (one.unwrap(), two.unwrap());
                assert!(
                    Arc::ptr_eq(&one, &two),
                    "built once per scope even when asked concurrently"
                );
                let id = one.0.id;
                drop((one, two));
                scope.end(ScopeExit::Succeeded).await;
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every scope built its own unit of work");
    let disposed = journal
        .entries()
        .iter()
        .filter(|entry| entry.starts_with("dispose unit#"))
        .count();
    assert_eq!(disposed, 200, "each disposed exactly once");
    assert!(running.stop().await.is_success());
}

trait Mailer: Send + Sync {
    fn name(&self) -> &'static str;
}

struct Smtp;
impl Mailer for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }
}

struct Fake;
impl Mailer for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
}

fn mailer_user(seen: &Arc<Mutex<Vec<&'static str>>>) -> ServiceDescriptor {
    let seen = Arc::clone(seen);
    ServiceDescriptor::background("mails", move |cx: RunContext| {
        let seen = Arc::clone(&seen);
        async move {
            let mailer = cx.resolve::<Arc<dyn Mailer>>().await?;
            seen.lock().unwrap().push(mailer.name());
            Ok::<(), BoxError>(())
        }
    })
}

#[tokio::test]
async fn trait_objects_are_registered_and_replaced() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let real = || {
        Provider::scoped(|_: RunContext| async {
            Ok::<_, BoxError>(Arc::new(Smtp) as Arc<dyn Mailer>)
        })
    };
    let outcome = one_run(
        Host::builder()
            .provide(real())
            .add_service(mailer_user(&seen)),
    )
    .await;
    assert!(outcome.is_success());
    let outcome = one_run(
        Host::builder()
            .provide(real())
            .replace(Provider::instance::<dyn Mailer>(Arc::new(Fake)))
            .add_service(mailer_user(&seen)),
    )
    .await;
    assert!(outcome.is_success());
    assert_eq!(*seen.lock().unwrap(), ["smtp", "fake"]);
}

#[test]
fn replacing_what_nothing_registers_is_an_error() {
    let error = Host::builder()
        .replace(Provider::instance::<dyn Mailer>(Arc::new(Fake)))
        .build()
        .expect_err("nothing to replace");
    assert!(
        error
            .to_string()
            .contains("a replacement for `dyn injection::Mailer` was given, but nothing registers `dyn injection::Mailer`"),
        "{error}"
    );
}

#[test]
fn registering_a_type_twice_is_an_error() {
    let error = Host::builder()
        .add_instance::<dyn Mailer>(Arc::new(Smtp))
        .add_instance::<dyn Mailer>(Arc::new(Fake))
        .build()
        .expect_err("two registrations of one type");
    assert!(
        error
            .to_string()
            .contains("`dyn injection::Mailer` is registered more than once"),
        "{error}"
    );
}

#[tokio::test]
async fn a_failing_singleton_factory_stops_startup_with_the_registration_named() {
    let outcome = Host::builder()
        .provide(Provider::singleton(|_: RunContext| async {
            Err::<Arc<Smtp>, _>("the SMTP relay refused the login")
        }))
        .add_service(ServiceDescriptor::background(
            "never",
            |_: RunContext| async {},
        ))
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("startup fails");
    assert_eq!(outcome.exit_code(), 1);
    let incident = &outcome.incidents()[0];
    assert_eq!(incident.service, "injection::Smtp");
    assert!(
        incident.what.contains("the SMTP relay refused the login"),
        "{incident:?}"
    );
}

#[tokio::test]
async fn optional_dependencies_are_none_when_absent() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let reader = move |cx: RunContext| {
        let seen = Arc::clone(&recorded);
        async move {
            let mailer = cx.resolve::<Option<Arc<dyn Mailer>>>().await?;
            seen.lock()
                .unwrap()
                .push(mailer.map(|mailer| mailer.name()));
            Ok::<(), BoxError>(())
        }
    };
    let reader_again = reader.clone();
    assert!(
        one_run(Host::builder().add_service(ServiceDescriptor::background("reader", reader)))
            .await
            .is_success()
    );
    assert!(
        one_run(
            Host::builder()
                .add_instance::<dyn Mailer>(Arc::new(Smtp))
                .add_service(ServiceDescriptor::background("reader", reader_again))
        )
        .await
        .is_success()
    );
    assert_eq!(*seen.lock().unwrap(), [None, Some("smtp")]);
}

/// Values without a dispose hook: scoped in their scope's cells, transients beside them.
struct PlainFirst(#[allow(dead_code, reason = "noted when dropped")] Tracked);
struct PlainSecond(#[allow(dead_code, reason = "noted when dropped")] Tracked);
struct PlainTransient(#[allow(dead_code, reason = "noted when dropped")] Tracked);

fn provide_plain(builder: HostBuilder, journal: &Journal) -> HostBuilder {
    let counter = Arc::new(AtomicUsize::new(0));
    let (j1, c1) = (journal.clone(), Arc::clone(&counter));
    let (j2, c2) = (journal.clone(), Arc::clone(&counter));
    let (j3, c3) = (journal.clone(), counter);
    builder
        .provide(Provider::scoped(move |_: RunContext| {
            let value = PlainFirst(Tracked::new("first", &j1, &c1));
            async move { Ok::<_, BoxError>(Arc::new(value)) }
        }))
        .provide(Provider::scoped(move |_: RunContext| {
            let value = PlainSecond(Tracked::new("second", &j2, &c2));
            async move { Ok::<_, BoxError>(Arc::new(value)) }
        }))
        .provide(Provider::transient(move |_: RunContext| {
            let value = PlainTransient(Tracked::new("transient", &j3, &c3));
            async move { Ok::<_, BoxError>(Arc::new(value)) }
        }))
}

#[tokio::test]
async fn values_without_hooks_are_released_at_the_end_in_reverse_creation_order() {
    let journal = Journal::default();
    let running = provide_plain(Host::builder(), &journal)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let factory = running.scope_factory();

    // Scoped values only, created in the opposite order of their registration.
    let scope = factory.create_scope();
    drop(scope.resolve::<Arc<PlainSecond>>().await.unwrap());
    drop(scope.resolve::<Arc<PlainFirst>>().await.unwrap());
    drop(scope.resolve::<Arc<PlainSecond>>().await.unwrap());
    assert_eq!(
        journal.entries().len(),
        2,
        "nothing released before the end"
    );
    scope.end(ScopeExit::Succeeded).await;
    assert_eq!(
        journal.entries(),
        [
            "create second#1",
            "create first#2",
            "drop first#2",
            "drop second#1"
        ]
    );

    // Scoped values and transients interleaved.
    let journal_before = journal.entries().len();
    let scope = factory.create_scope();
    drop(scope.resolve::<Arc<PlainTransient>>().await.unwrap());
    drop(scope.resolve::<Arc<PlainFirst>>().await.unwrap());
    drop(scope.resolve::<Arc<PlainTransient>>().await.unwrap());
    drop(scope.resolve::<Arc<PlainSecond>>().await.unwrap());
    scope.end(ScopeExit::Succeeded).await;
    assert_eq!(
        journal.entries()[journal_before..],
        [
            "create transient#3",
            "create first#4",
            "create transient#5",
            "create second#6",
            "drop second#6",
            "drop transient#5",
            "drop first#4",
            "drop transient#3",
        ]
    );
    assert!(running.stop().await.is_success());
}

#[tokio::test]
async fn a_scope_factory_taken_in_a_run_keeps_none_of_its_values() {
    let journal = Journal::default();
    let kept: Arc<Mutex<Option<ScopeFactory>>> = Arc::default();
    let keep = Arc::clone(&kept);
    let service = ServiceDescriptor::background("keeper", move |cx: RunContext| {
        let keep = Arc::clone(&keep);
        async move {
            drop(cx.resolve::<Arc<PlainFirst>>().await?);
            let factory = cx.resolve::<ScopeFactory>().await?;
            *keep.lock().unwrap() = Some(factory);
            Ok::<(), BoxError>(())
        }
    })
    .on_failure(hosted::FailurePolicy::Ignore);
    let running = provide_plain(Host::builder(), &journal)
        .add_service(service)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    for _ in 0..1000 {
        if journal.entries().contains(&"drop first#1".to_owned()) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(journal.entries(), ["create first#1", "drop first#1"]);
    let factory = kept
        .lock()
        .unwrap()
        .take()
        .expect("the run kept its factory");
    let scope = factory.create_scope();
    drop(scope.resolve::<Arc<PlainFirst>>().await.unwrap());
    scope.end(ScopeExit::Succeeded).await;
    assert!(journal.entries().contains(&"drop first#2".to_owned()));
    assert!(running.stop().await.is_success());
}
