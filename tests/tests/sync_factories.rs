//! Factories that do not await build their value without a future when every parameter is at
//! hand, and fall back to awaiting the rest when one is not: either way each value is built as
//! often as its lifetime says, and a failure leaves the slot free for the next try.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hosted::di::InjectError;
use hosted::{BoxError, CancellationToken, Host, ScopeExit};

/// How often each factory ran.
#[derive(Default)]
struct Builds {
    view: AtomicUsize,
    chained: AtomicUsize,
    slow: AtomicUsize,
    after_slow: AtomicUsize,
    counted: AtomicUsize,
    with_transient: AtomicUsize,
    flaky: AtomicUsize,
}

#[hosted::singleton]
fn builds() -> Builds {
    Builds::default()
}

struct View {
    id: usize,
}

/// Sync, one singleton parameter: built at once.
#[hosted::scoped]
fn view(builds: Arc<Builds>) -> View {
    View {
        id: builds.view.fetch_add(1, Ordering::SeqCst),
    }
}

struct Chained {
    view: Arc<View>,
}

/// Sync, depending on another sync scoped value: both built at once.
#[hosted::scoped]
fn chained(view: Arc<View>, builds: Arc<Builds>) -> Chained {
    builds.chained.fetch_add(1, Ordering::SeqCst);
    Chained { view }
}

struct Slow;

#[hosted::scoped]
async fn slow(builds: Arc<Builds>) -> Slow {
    tokio::task::yield_now().await;
    builds.slow.fetch_add(1, Ordering::SeqCst);
    Slow
}

struct AfterSlow {
    slow: Arc<Slow>,
    view: Arc<View>,
}

/// Sync, but its second parameter needs awaiting until `Slow` is built in the scope.
#[hosted::scoped]
fn after_slow(
    view: Arc<View>,
    slow: Arc<Slow>,
    _stop: CancellationToken,
    builds: Arc<Builds>,
) -> AfterSlow {
    builds.after_slow.fetch_add(1, Ordering::SeqCst);
    AfterSlow { slow, view }
}

struct Counted;

#[hosted::transient]
fn counted(builds: Arc<Builds>) -> Counted {
    builds.counted.fetch_add(1, Ordering::SeqCst);
    Counted
}

struct WithTransient {
    _counted: Arc<Counted>,
}

/// Sync, with a transient parameter: a transient is never built on the way to a fallback, so
/// it is built exactly once per resolution.
#[hosted::scoped]
fn with_transient(view: Arc<View>, counted: Arc<Counted>, builds: Arc<Builds>) -> WithTransient {
    let _ = view;
    builds.with_transient.fetch_add(1, Ordering::SeqCst);
    WithTransient { _counted: counted }
}

struct Flaky;

/// Sync and fallible: fails on its first build only.
#[hosted::scoped]
fn flaky(view: Arc<View>, builds: Arc<Builds>) -> Result<Flaky, BoxError> {
    let _ = view;
    if builds.flaky.fetch_add(1, Ordering::SeqCst) == 0 {
        Err("first build fails".into())
    } else {
        Ok(Flaky)
    }
}

async fn started() -> hosted::host::RunningHost {
    started_with(Host::builder().discover()).await
}

async fn started_with(builder: hosted::host::HostBuilder) -> hosted::host::RunningHost {
    builder
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("a clean start")
}

#[tokio::test]
async fn sync_factories_build_once_per_scope_whichever_path_they_take() {
    let running = started().await;
    let builds = running.get::<Builds>().await.unwrap();
    let scopes = running.scope_factory();

    for round in 0..2 {
        let scope = scopes.create_scope();
        let chained = scope.resolve::<Arc<Chained>>().await.unwrap();
        let view = scope.resolve::<Arc<View>>().await.unwrap();
        assert!(Arc::ptr_eq(&chained.view, &view), "one `View` per scope");
        assert_eq!(view.id, round, "a fresh `View` per scope");

        let after = scope.resolve::<Arc<AfterSlow>>().await.unwrap();
        assert!(Arc::ptr_eq(&after.view, &view));
        let slow = scope.resolve::<Arc<Slow>>().await.unwrap();
        assert!(Arc::ptr_eq(&after.slow, &slow), "one `Slow` per scope");
        let again = scope.resolve::<Arc<AfterSlow>>().await.unwrap();
        assert!(Arc::ptr_eq(&after, &again));

        let first = scope.resolve::<Arc<WithTransient>>().await.unwrap();
        let second = scope.resolve::<Arc<WithTransient>>().await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        scope.end(ScopeExit::Succeeded).await;
    }
    assert_eq!(builds.view.load(Ordering::SeqCst), 2);
    assert_eq!(builds.chained.load(Ordering::SeqCst), 2);
    assert_eq!(builds.slow.load(Ordering::SeqCst), 2);
    assert_eq!(builds.after_slow.load(Ordering::SeqCst), 2);
    assert_eq!(builds.with_transient.load(Ordering::SeqCst), 2);
    assert_eq!(
        builds.counted.load(Ordering::SeqCst),
        2,
        "a transient parameter is built once per resolution of what needs it"
    );
    assert!(running.stop().await.is_success());
}

#[tokio::test]
async fn a_failed_sync_build_leaves_the_slot_for_the_next_try() {
    let running = started().await;
    let builds = running.get::<Builds>().await.unwrap();
    let scope = running.scope_factory().create_scope();

    let error = scope
        .resolve::<Arc<Flaky>>()
        .await
        .err()
        .expect("the first build fails");
    assert!(
        matches!(&error, InjectError::Failed { type_name, .. } if type_name.ends_with("Flaky")),
        "{error:?}"
    );
    let flaky = scope
        .resolve::<Arc<Flaky>>()
        .await
        .expect("the second build succeeds");
    let again = scope.resolve::<Arc<Flaky>>().await.unwrap();
    assert!(Arc::ptr_eq(&flaky, &again));
    assert_eq!(builds.flaky.load(Ordering::SeqCst), 2);
    scope.end(ScopeExit::Succeeded).await;
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_sharing_a_scope_share_its_sync_built_values() {
    let running = started().await;
    let builds = running.get::<Builds>().await.unwrap();
    let scope = running.scope_factory().create_scope();

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cx = scope.context().clone();
            tokio::spawn(async move {
                let after = cx.resolve::<Arc<AfterSlow>>().await.unwrap();
                let chained = cx.resolve::<Arc<Chained>>().await.unwrap();
                (after, chained)
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    for (after, chained) in &seen {
        assert!(Arc::ptr_eq(after, &seen[0].0));
        assert!(Arc::ptr_eq(chained, &seen[0].1));
        assert!(Arc::ptr_eq(&after.view, &chained.view));
    }
    assert_eq!(builds.view.load(Ordering::SeqCst), 1);
    assert_eq!(builds.slow.load(Ordering::SeqCst), 1);
    assert_eq!(builds.after_slow.load(Ordering::SeqCst), 1);
    assert_eq!(builds.chained.load(Ordering::SeqCst), 1);
    drop(seen);
    scope.end(ScopeExit::Succeeded).await;
    assert!(running.stop().await.is_success());
}

#[tokio::test]
async fn what_needs_no_awaiting_is_had_without_a_future() {
    use hosted::di::Inject as _;

    let running = started().await;
    let scope = running.scope_factory().create_scope();
    let cx = scope.context();
    let builds = Arc::<Builds>::inject_now(cx)
        .expect("a built singleton answers at once")
        .unwrap();
    assert!(Arc::ptr_eq(
        &builds,
        &running.get::<Builds>().await.unwrap()
    ));
    let chained = Arc::<Chained>::inject_now(cx)
        .expect("sync factories over built singletons answer at once")
        .unwrap();
    assert!(
        Arc::<AfterSlow>::inject_now(cx).is_none(),
        "`Slow` must be awaited first"
    );
    assert!(
        Arc::<Counted>::inject_now(cx).is_none(),
        "transients are built on the awaiting path only"
    );
    let after = scope.resolve::<Arc<AfterSlow>>().await.unwrap();
    assert!(Arc::ptr_eq(&after.view, &chained.view));
    let now = Arc::<AfterSlow>::inject_now(cx)
        .expect("built now")
        .unwrap();
    assert!(Arc::ptr_eq(&after, &now));
    scope.end(ScopeExit::Succeeded).await;
    assert!(running.stop().await.is_success());
}

trait Greeter: Send + Sync {
    fn greet(&self) -> &'static str;
}

struct English;

impl Greeter for English {
    fn greet(&self) -> &'static str {
        "hello"
    }
}

struct Answer(u64);

#[tokio::test]
async fn singletons_of_every_origin_are_had_without_a_future() {
    use hosted::di::{Inject as _, Provider};

    let running = started_with(
        Host::builder()
            .provide(Provider::instance(Arc::new(English) as Arc<dyn Greeter>))
            .provide(Provider::singleton(|_| async {
                Ok::<_, BoxError>(Arc::new(Answer(42)))
            })),
    )
    .await;
    let scope = running.scope_factory().create_scope();
    let cx = scope.context();
    let greeter = Arc::<dyn Greeter>::inject_now(cx)
        .expect("an instance, a trait object, answers at once")
        .unwrap();
    assert_eq!(greeter.greet(), "hello");
    assert!(Arc::ptr_eq(
        &greeter,
        &running.get::<dyn Greeter>().await.unwrap()
    ));
    let answer = Arc::<Answer>::inject_now(cx)
        .expect("a singleton built at start answers at once")
        .unwrap();
    assert_eq!(answer.0, 42);
    assert!(Arc::ptr_eq(
        &answer,
        &running.get::<Answer>().await.unwrap()
    ));
    scope.end(ScopeExit::Succeeded).await;
    assert!(running.stop().await.is_success());
}

struct Abandoned;

#[tokio::test]
async fn a_build_dropped_midway_leaves_the_value_to_the_next_resolution() {
    use hosted::di::Provider;
    use std::time::Duration;

    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let running = started_with(Host::builder().provide(Provider::scoped(|_| async {
        if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        Ok::<_, BoxError>(Arc::new(Abandoned))
    })))
    .await;
    let scope = running.scope_factory().create_scope();
    let first =
        tokio::time::timeout(Duration::from_millis(50), scope.resolve::<Arc<Abandoned>>()).await;
    assert!(
        first.is_err(),
        "the first build never ends; its future is dropped"
    );
    let second = tokio::time::timeout(Duration::from_secs(5), scope.resolve::<Arc<Abandoned>>())
        .await
        .expect("the dropped build gave its claim up: nobody waits for it")
        .unwrap();
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    drop(second);
    scope.end(ScopeExit::Succeeded).await;
    assert!(running.stop().await.is_success());
}
