//! A durable queued service in a host of this process: the same `Queue<T>` sends, the same
//! handler runs with retries and timeouts, a handler learns its job, a payload that no longer
//! deserialises is dead-lettered while the queue goes on, a transactional send exists only if
//! its transaction commits, a transactional completion records its effect once, the stop
//! releases the leases it cannot finish, the elected replica prunes dead jobs, and a stalled
//! attempt shows in the metrics and in its job's span.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::config::ConfigSources;
use hosted::di::RunContext;
use hosted::durable::{Backend, Job, durable_queued};
use hosted::host::{HostBuilder, RunningHost};
use hosted::queue::QueueOptions;
use hosted::registry::ServiceDescriptor;
use hosted::status::HostStatus;
use hosted::{Host, Queue};
use serde::{Deserialize, Serialize};

use crate::eventually;
use crate::store::{JobState, Pause as _, Settings, Store, Tuning, in_state};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Email {
    to: String,
}

type Seen = Arc<Mutex<Vec<(String, Job)>>>;

fn host_with(settings: &Settings, service: ServiceDescriptor) -> HostBuilder {
    let configuration = ConfigSources::new()
        .toml("test.toml", settings.toml())
        .load()
        .expect("readable configuration");
    Host::builder()
        .add_service(service)
        .configuration(configuration)
        .shutdown_timeout(Duration::from_secs(2))
}

fn recording(seen: &Seen, options: QueueOptions, fail_first: bool) -> ServiceDescriptor {
    let seen = Arc::clone(seen);
    durable_queued(
        "app::outbox",
        options,
        move |email: Email, cx: RunContext| {
            let seen = Arc::clone(&seen);
            async move {
                let job = cx.resolve::<Job>().await?;
                seen.lock().unwrap().push((email.to.clone(), job));
                if fail_first && job.attempt() == 1 {
                    return Err::<(), hosted::BoxError>("first attempts fail".into());
                }
                Ok(())
            }
        },
    )
}

async fn start(builder: HostBuilder) -> RunningHost {
    builder
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("started")
}

async fn completed<S: Store>(store: &S) -> usize {
    in_state(&store.jobs().await, JobState::Completed)
}

/// Contract 1.
pub async fn sent_items_are_handled_once_each_with_their_job<S: Store>() {
    let Some(store) = S::fresh("handled", Tuning::default()).await else {
        return;
    };
    let seen = Seen::default();
    let host = start(host_with(
        &store.settings(),
        recording(&seen, QueueOptions::new(1).with_workers(4), false),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    for n in 0..40 {
        queue
            .send(Email {
                to: format!("user{n}"),
            })
            .await
            .expect("durable once sent");
    }
    assert_eq!(store.jobs().await.len(), 40, "each stored once sent");
    assert!(
        eventually(Duration::from_secs(20), || async {
            seen.lock().unwrap().len() >= 40
        })
        .await
    );
    assert!(host.stop().await.is_success());
    let seen = seen.lock().unwrap();
    let mut addresses: Vec<&str> = seen.iter().map(|(to, _)| to.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), 40, "each item once");
    assert!(
        seen.iter()
            .all(|(_, job)| job.attempt() == 1 && job.max_attempts() == 1)
    );
}

/// Contract 6.
pub async fn a_failed_attempt_is_retried_with_the_next_attempt_number<S: Store>() {
    let Some(store) = S::fresh("retried", Tuning::default()).await else {
        return;
    };
    let seen = Seen::default();
    let host = start(host_with(
        &store.settings(),
        recording(
            &seen,
            QueueOptions::new(1)
                .with_retries(2)
                .with_retry_backoff(Duration::from_millis(50)),
            true,
        ),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    queue.send(Email { to: "a".into() }).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            seen.lock().unwrap().len() >= 2
        })
        .await
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            completed(&store).await == 1
        })
        .await
    );
    let attempts: Vec<(u32, i64)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, job)| (job.attempt(), job.id()))
        .collect();
    assert_eq!(attempts[0].0, 1);
    assert_eq!(attempts[1].0, 2);
    assert_eq!(
        attempts[0].1, attempts[1].1,
        "the same job id on every attempt"
    );
    assert!(host.stop().await.is_success());
}

/// Contract 6.
pub async fn a_timed_out_attempt_goes_to_the_dead_letters_with_its_error<S: Store>() {
    let Some(store) = S::fresh("timeout", Tuning::default()).await else {
        return;
    };
    let host = start(host_with(
        &store.settings(),
        durable_queued(
            "app::outbox",
            QueueOptions::new(1).with_timeout(Duration::from_millis(100)),
            |_: Email, _: RunContext| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
            },
        ),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    queue.send(Email { to: "slow".into() }).await.unwrap();
    let backend = store.backend().await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            !backend
                .dead_letters("app::outbox", 10)
                .await
                .unwrap()
                .is_empty()
        })
        .await
    );
    let dead = backend.dead_letters("app::outbox", 10).await.unwrap();
    assert!(dead[0].error.contains("timed out"), "{:?}", dead[0]);
    assert!(host.stop().await.is_success());
}

/// Contract 6 (bad input).
pub async fn a_payload_that_no_longer_deserialises_is_dead_lettered_and_the_queue_goes_on<
    S: Store,
>() {
    let Some(store) = S::fresh("bad_payload", Tuning::default()).await else {
        return;
    };
    let seen = Seen::default();
    let host = start(host_with(
        &store.settings(),
        recording(&seen, QueueOptions::new(1), false),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    let backend = store.backend().await;
    // A row written by an older build, whose `Email` had another shape.
    backend
        .enqueue("app::outbox", r#"{"address": 7}"#, 3)
        .await
        .unwrap();
    queue.send(Email { to: "after".into() }).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            !seen.lock().unwrap().is_empty()
                && !backend
                    .dead_letters("app::outbox", 10)
                    .await
                    .unwrap()
                    .is_empty()
        })
        .await
    );
    let dead = backend.dead_letters("app::outbox", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].error.contains("no longer deserialises") && dead[0].error.contains("Email"),
        "{}",
        dead[0].error
    );
    assert_eq!(dead[0].attempts, 1, "not retried: it can never succeed");
    assert!(host.stop().await.is_success());
}

/// Contract 1.
pub async fn a_transactional_send_exists_only_if_its_transaction_commits<S: Store>() {
    let Some(store) = S::fresh("tx_send", Tuning::default()).await else {
        return;
    };
    let seen = Seen::default();
    let host = start(host_with(
        &store.settings(),
        recording(&seen, QueueOptions::new(1), false),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    let rolled_back = Email {
        to: "rolled back".into(),
    };
    store.send_in(&queue, rolled_back, false).await;
    store
        .send_in(
            &queue,
            Email {
                to: "committed".into(),
            },
            true,
        )
        .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            completed(&store).await == 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.jobs().await.len(),
        1,
        "the rolled-back send left no job"
    );
    let handled: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(to, _)| to.clone())
        .collect();
    assert_eq!(handled, vec!["committed".to_owned()]);
    assert!(host.stop().await.is_success());
}

/// Contract 4: with a transactional completion, each job's effect is recorded exactly once.
pub async fn a_transactional_completion_commits_the_effect_with_the_job_and_rolls_back_a_failure<
    S: Store,
>() {
    let Some(store) = S::fresh("tx_complete", Tuning::default()).await else {
        return;
    };
    let host = start(host_with(
        &store.settings(),
        durable_queued(
            "app::outbox",
            QueueOptions::new(1)
                .with_retries(1)
                .with_retry_backoff(Duration::from_millis(20)),
            |_: Email, cx: RunContext| async move {
                S::record_effect(&cx, 7).await?;
                let job = cx.resolve::<Job>().await?;
                if job.attempt() == 1 {
                    return Err::<(), hosted::BoxError>("the first attempt fails".into());
                }
                Ok(())
            },
        ),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    queue.send(Email { to: "once".into() }).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            completed(&store).await == 1
        })
        .await
    );
    let effects: Vec<(u32, i64)> = store
        .effects()
        .await
        .iter()
        .map(|effect| (effect.attempt, effect.n))
        .collect();
    assert_eq!(effects, vec![(2, 7)], "the failed attempt rolled back");
    assert!(host.stop().await.is_success());
}

/// Contract 7.
pub async fn the_stop_releases_unfinished_jobs_at_once_without_counting_an_attempt<S: Store>() {
    // A long lease: another worker may take the job only because it was released.
    let tuning = Tuning::default().lease(Duration::from_mins(1));
    let Some(store) = S::fresh("release_on_stop", tuning).await else {
        return;
    };
    let started = Arc::new(tokio::sync::Notify::new());
    let host = start(host_with(
        &store.settings(),
        durable_queued("app::outbox", QueueOptions::new(1), {
            let started = Arc::clone(&started);
            move |_: Email, cx: RunContext| {
                let started = Arc::clone(&started);
                async move {
                    started.notify_one();
                    // Ends only when cancelled by the stop.
                    cx.stop_token().cancelled().await;
                    Err::<(), hosted::BoxError>("cancelled".into())
                }
            }
        }),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    queue.send(Email { to: "long".into() }).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the job started");
    drop(queue);
    assert!(host.stop().await.is_success());
    let other = store.backend().await;
    let claimed = other.claim("app::outbox", 1).await.unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "released at once, not after the 60 s lease"
    );
    assert_eq!(claimed[0].lease.attempt, 1, "a release is not an attempt");
}

/// Operations: `durable.dead_retention`, applied by the replica that leads maintenance.
pub async fn the_maintenance_replica_prunes_dead_jobs_after_their_retention<S: Store>() {
    let tuning = Tuning {
        dead_retention: Some(Duration::from_secs(1)),
        ..Tuning::default()
    };
    let Some(store) = S::fresh("dead_retention", tuning).await else {
        return;
    };
    let host = start(host_with(
        &store.settings(),
        durable_queued(
            "app::outbox",
            QueueOptions::new(1),
            |email: Email, _: RunContext| async move {
                if email.to == "poison" {
                    return Err::<(), hosted::BoxError>("poison".into());
                }
                Ok(())
            },
        ),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    queue
        .send(Email {
            to: "poison".into(),
        })
        .await
        .unwrap();
    queue.send(Email { to: "fine".into() }).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            let jobs = store.jobs().await;
            in_state(&jobs, JobState::Dead) == 1 && in_state(&jobs, JobState::Completed) == 1
        })
        .await,
        "one dead, one completed"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            in_state(&store.jobs().await, JobState::Dead) == 0
        })
        .await,
        "the dead job was pruned after its second"
    );
    assert_eq!(
        in_state(&store.jobs().await, JobState::Completed),
        1,
        "the completed job is kept for `retention`"
    );
    assert!(host.stop().await.is_success());
}

/// A `tracing` writer into memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// A subscriber writing here, this thread's default until the guard drops.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let captured = captured.clone();
                move || captured.clone()
            })
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The Prometheus exposition shows one lost lease and one rejected result for `service`.
fn assert_exposed(status: &HostStatus, service: &str) {
    let exposition = hosted::prometheus::render(status).expect("the Prometheus recorder");
    for metric in [
        "hosted_queue_lease_lost_total",
        "hosted_queue_stale_results_rejected_total",
    ] {
        let line = format!("{metric}{{service=\"{service}\"}} 1");
        assert!(exposition.contains(&line), "{line} in:\n{exposition}");
    }
}

fn queue_counts(status: &HostStatus, service: &str) -> (u64, u64) {
    status
        .snapshot()
        .services
        .iter()
        .find(|snapshot| snapshot.name == service)
        .and_then(|snapshot| snapshot.queue.as_ref())
        .map_or((0, 0), |queue| {
            (queue.lease_lost, queue.stale_results_rejected)
        })
}

/// Contract 3, 4, and issue 15's durable metrics and job span: an attempt whose connection
/// stalls past its lease is taken back and completed by another worker; its heartbeat then
/// finds the claim gone (`hosted_queue_lease_lost_total`, once) and its own completion is
/// refused (`hosted_queue_stale_results_rejected_total`), logged in the job's span with the
/// service, the job, the attempt and where it was sent from.
///
/// Runs on a current-thread runtime: the capturing subscriber is this thread's.
pub async fn a_stalled_attempt_is_counted_as_lease_lost_and_stale_in_its_job_span<S: Store>() {
    const SERVICE: &str = "app::stalled";
    let tuning = Tuning::default().lease(Duration::from_secs(1));
    let Some(store) = S::fresh("stalled_metrics", tuning).await else {
        return;
    };
    let (captured, _default) = Captured::install();
    let (settings, stall) = store.stallable().await;
    let started = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Notify::new());
    let host = start(host_with(
        &settings,
        durable_queued(SERVICE, QueueOptions::new(1), {
            let (started, finish) = (Arc::clone(&started), Arc::clone(&finish));
            move |_: Email, _: RunContext| {
                let (started, finish) = (Arc::clone(&started), Arc::clone(&finish));
                async move {
                    started.notify_one();
                    finish.notified().await;
                }
            }
        }),
    ))
    .await;
    let status = host.get::<HostStatus>().await.unwrap();
    let direct = store.backend().await;
    let sender = r#"{"run":"tick{service=app::sender tick=7}"}"#;
    let id = direct
        .enqueue_from(SERVICE, r#"{"to":"late"}"#, 3, Some(sender))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the job started");
    stall.pause(true);
    // Once the lease (and the stalled replica's maintenance lease) ran out, another replica
    // takes the job back and completes it.
    let rescuer: &dyn Backend = &*direct;
    assert!(
        eventually(Duration::from_secs(15), || async {
            rescuer
                .maintain(hosted::durable::Retention::new(
                    Duration::from_hours(1),
                    None,
                ))
                .await
                .is_ok_and(|done| done.rescued == 1)
        })
        .await,
        "rescued by the other replica"
    );
    let second = rescuer.claim(SERVICE, 1).await.unwrap().remove(0);
    assert_eq!((second.lease.id, second.lease.attempt), (id, 2));
    assert_eq!(
        rescuer.complete(&second.lease).await.unwrap(),
        hosted::durable::Settled::Completed
    );
    stall.pause(false);
    assert!(
        eventually(Duration::from_secs(10), || async {
            queue_counts(&status, SERVICE).0 >= 1
        })
        .await,
        "the heartbeat found the claim gone: {}",
        captured.text()
    );
    // More beats while the attempt still runs: the one lost claim is counted once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    finish.notify_one();
    assert!(
        eventually(Duration::from_secs(10), || async {
            queue_counts(&status, SERVICE).1 == 1
        })
        .await,
        "the stale completion was rejected: {}",
        captured.text()
    );
    assert_eq!(queue_counts(&status, SERVICE), (1, 1));
    assert_exposed(&status, SERVICE);
    let log = captured.text();
    let rejected = log
        .lines()
        .find(|line| line.contains("the result was rejected"))
        .unwrap_or_else(|| panic!("the rejection is logged: {log}"));
    let span = format!(
        "job{{service={SERVICE} job={id} attempt=1 sent_from=tick{{service=app::sender tick=7}}}}"
    );
    assert!(
        rejected.contains(&span),
        "in the job's span {span}: {rejected}"
    );
    let jobs = store.jobs().await;
    assert_eq!(
        (jobs.len(), jobs[0].state, jobs[0].attempt),
        (1, JobState::Completed, 2),
        "the rescuer's completion stands"
    );
    assert!(host.stop().await.is_success());
}
