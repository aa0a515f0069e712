//! What `#[queued]` generates: a discovered queued service with injected parameters, its handle
//! injected into another service, the arguments applied, and a dead-letter hook by path.

use std::sync::Mutex;
use std::time::Duration;

use hosted::queue::DeadLetter;
use hosted::service::{ServiceInfo, ServiceKind};
use hosted::{BoxError, CancellationToken, Host, Queue};

/// A job for the discovered queue.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Job(u32);

/// A job that fails until its third attempt, for the retrying queue.
#[derive(Clone, Debug)]
struct Flaky(u32);

static HANDLED: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());
static ATTEMPTS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static PARKED: Mutex<Vec<(u32, u64, u32)>> = Mutex::new(Vec::new());

#[hosted::queued(capacity = 8, name = "jobs")]
async fn run_job(job: Job, info: ServiceInfo, stop: CancellationToken) -> Result<(), BoxError> {
    assert!(!stop.is_cancelled());
    HANDLED
        .lock()
        .unwrap()
        .push((job.0, info.name().to_owned()));
    Ok(())
}

/// Sends three jobs once the queue has started, then stops the host.
#[hosted::hosted_service(after = run_job)]
async fn producer(jobs: Queue<Job>, lifetime: hosted::ApplicationLifetime) -> anyhow::Result<()> {
    for n in 1..=3 {
        jobs.send(Job(n)).await?;
    }
    while jobs.stats().processed < 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    lifetime.stop_application();
    Ok(())
}

#[hosted::queued(
    capacity = 2,
    retries = 2,
    retry_backoff = "100ms",
    retry_max_backoff = "1s",
    dead_letter = park,
    crate = "::hosted"
)]
async fn flaky(item: Flaky) -> anyhow::Result<()> {
    ATTEMPTS.lock().unwrap().push(item.0);
    anyhow::ensure!(item.0 != 13, "thirteen never works");
    Ok(())
}

async fn park(letter: DeadLetter<Flaky>) {
    let (seq, attempts) = (letter.seq(), letter.attempts());
    PARKED
        .lock()
        .unwrap()
        .push((letter.into_item().0, seq, attempts));
}

#[tokio::test]
async fn a_discovered_queue_runs_what_an_injected_handle_sends() {
    let host = Host::builder().discover().build().expect("a valid host");
    let queues: Vec<_> = host
        .services()
        .filter(|service| service.kind() == ServiceKind::Queued)
        .map(|service| service.name().to_owned())
        .collect();
    assert_eq!(queues, ["jobs", "queue_attribute::flaky"]);
    let outcome = host.run().await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(
        *HANDLED.lock().unwrap(),
        [1, 2, 3].map(|n| (n, "jobs".to_owned()))
    );
}

#[tokio::test(start_paused = true)]
async fn arguments_set_retries_and_the_dead_letter_hook() {
    let host = Host::builder()
        .discover()
        .remove_service("queue_attribute::producer")
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("started");
    let queue = host.get::<Queue<Flaky>>().await.unwrap();
    assert_eq!(queue.capacity(), 2);
    assert_eq!(queue.options().retries(), 2);
    queue.send(Flaky(1)).await.unwrap();
    queue.send(Flaky(13)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(*ATTEMPTS.lock().unwrap(), [1, 13, 13, 13]);
    assert_eq!(*PARKED.lock().unwrap(), [(13, 2, 3)]);
    let stats = queue.stats();
    assert_eq!(
        (stats.processed, stats.retried, stats.dead_lettered),
        (1, 2, 1)
    );
    assert!(host.stop().await.is_success());
}
