//! Services declared with `#[hosted_service]`, found through link-time registration: names,
//! ordering by path, failure-policy arguments, field injection and one shared instance.

use std::sync::{Arc, Mutex};

use hosted::service::{RestartPolicy, ServiceInfo, ServiceKind};
use hosted::{
    ApplicationLifetime, BoxError, CancellationToken, FailurePolicy, Host, HostedService,
    ServiceContext,
};

/// A re-exporting crate would do this; `crate = "..."` points the generated code at it.
mod facade {
    pub(crate) use ::hosted;
}

/// Opens first, closes last; injected into the others.
#[hosted::hosted_service(order = -5)]
struct Store {
    #[hosted(default)]
    entries: Mutex<Vec<String>>,
}

impl Store {
    fn note(&self, entry: impl Into<String>) {
        self.entries.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.entries.lock().unwrap().clone()
    }
}

impl HostedService for Store {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.note("store:start");
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.note("store:stop");
        Ok(())
    }
}

/// Built from injected fields: the shared store and its own service information.
#[hosted::hosted_service(after = Store)]
struct Producer {
    store: Arc<Store>,
    info: ServiceInfo,
}

impl HostedService for Producer {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.store
            .note(format!("producer:start as {}", self.info.name()));
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        self.store.note("producer:stop");
        Ok(())
    }
}

/// Starts after two services, one named by path, one by string.
#[hosted::hosted_service(name = "consumer", after = [Producer, "attributes::auditor"])]
async fn consume(
    store: Arc<Store>,
    stop: CancellationToken,
    info: ServiceInfo,
) -> anyhow::Result<()> {
    store.note(format!("consumer:run as {}", info.name()));
    stop.cancelled().await;
    store.note("consumer:stop");
    Ok(())
}

/// A plain background service with the default name.
#[hosted::hosted_service]
async fn auditor(lifetime: ApplicationLifetime, store: Arc<Store>) {
    lifetime.started().await;
    store.note("auditor:saw started");
}

/// Every failure-policy argument, through a re-exporting path.
#[hosted::hosted_service(
    crate = "crate::facade::hosted",
    on_failure = "restart",
    max_restarts = 2,
    backoff = "10ms",
    max_backoff = "1s",
    order = 7
)]
async fn resilient(
    stop: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    stop.cancelled().await;
    Ok(())
}

/// A `thiserror`-style error enum as the error type.
#[derive(Debug)]
enum SyncError {
    Unreachable,
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable => f.write_str("the remote is unreachable"),
        }
    }
}

impl std::error::Error for SyncError {}

#[hosted::hosted_service(on_failure = "ignore")]
async fn syncer(stop: CancellationToken) -> Result<(), SyncError> {
    stop.cancelled().await;
    if stop.is_cancelled() {
        Ok(())
    } else {
        Err(SyncError::Unreachable)
    }
}

#[test]
fn registered_services_are_found_named_and_ordered() {
    let host = Host::builder().discover().build().expect("a valid host");
    let listed: Vec<(String, ServiceKind, i32)> = host
        .services()
        .map(|info| (info.name().to_owned(), info.kind(), info.order()))
        .collect();
    assert_eq!(
        listed,
        [
            ("attributes::Store".to_owned(), ServiceKind::Hosted, -5),
            ("attributes::Producer".to_owned(), ServiceKind::Hosted, 0),
            ("attributes::auditor".to_owned(), ServiceKind::Background, 0),
            ("attributes::syncer".to_owned(), ServiceKind::Background, 0),
            ("consumer".to_owned(), ServiceKind::Background, 0),
            (
                "attributes::resilient".to_owned(),
                ServiceKind::Background,
                7
            ),
        ]
    );
    let consumer = host
        .services()
        .find(|info| info.name() == "consumer")
        .unwrap();
    assert_eq!(
        consumer.after().collect::<Vec<_>>(),
        ["attributes::Producer", "attributes::auditor"]
    );
    // The line of the item's name, below its attribute: for a function and for a type.
    for (service, declaration) in [
        ("consumer", "async fn consume("),
        ("attributes::Producer", "struct Producer {"),
    ] {
        let source = host
            .services()
            .find(|info| info.name() == service)
            .and_then(ServiceInfo::source)
            .expect("attribute services know their source");
        assert_eq!(source.file, "tests/tests/attributes.rs");
        let declared_at = include_str!("attributes.rs")
            .lines()
            .position(|line| line.starts_with(declaration))
            .unwrap();
        assert_eq!(
            source.line,
            u32::try_from(declared_at + 1).unwrap(),
            "{service}"
        );
    }
}

#[test]
fn failure_policy_arguments_become_the_policy() {
    let host = Host::builder().discover().build().unwrap();
    let policy = |name: &str| {
        host.services()
            .find(|info| info.name() == name)
            .map(|info| info.policy().clone())
            .unwrap()
    };
    assert_eq!(
        policy("attributes::resilient"),
        FailurePolicy::Restart(
            RestartPolicy::new()
                .with_max_restarts(2)
                .with_backoff(std::time::Duration::from_millis(10))
                .with_max_backoff(std::time::Duration::from_secs(1))
        )
    );
    assert_eq!(policy("attributes::syncer"), FailurePolicy::Ignore);
    assert_eq!(policy("consumer"), FailurePolicy::StopHost);
}

#[tokio::test]
async fn one_instance_of_a_service_type_is_built_and_shared() {
    let running = Host::builder()
        .discover()
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    tokio::task::yield_now().await;
    let store = running.get::<Store>().await.unwrap();
    let producer = running.get::<Producer>().await.unwrap();
    assert!(
        Arc::ptr_eq(&store, &producer.store),
        "the store injected is the one the host runs"
    );
    assert_eq!(producer.info.name(), "attributes::Producer");
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
    let entries = store.entries();
    assert_eq!(
        entries[..2],
        ["store:start", "producer:start as attributes::Producer"]
    );
    // The two bodies run concurrently, in an order the scheduler picks.
    let mut bodies = entries[2..4].to_vec();
    bodies.sort();
    assert_eq!(bodies, ["auditor:saw started", "consumer:run as consumer"]);
    assert_eq!(
        entries[4..],
        ["consumer:stop", "producer:stop", "store:stop"]
    );
}

#[test]
fn an_annotated_function_can_still_be_called_directly() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    stop.cancel();
    runtime.block_on(async {
        syncer(stop).await.unwrap();
    });
}
