//! A durable queued service in a host, against a real server: the same `Queue<T>` sends, the
//! same handler runs with retries and timeouts, a handler learns its job, a payload that no
//! longer deserialises is dead-lettered while the queue goes on, a transactional send exists
//! only if its transaction commits, a transactional completion records its effect once, and the
//! stop releases the leases it cannot finish.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::config::ConfigSources;
use hosted::di::RunContext;
use hosted::durable::{Backend as _, DurableConfig, Job, JobTransaction, durable_queued};
use hosted::host::{HostBuilder, RunningHost};
use hosted::queue::QueueOptions;
use hosted::registry::ServiceDescriptor;
use hosted::{Host, Queue};
use hosted_durable_tests::{config, eventually, toml};
use serde::{Deserialize, Serialize};
use sqlx_core::query::query;
use sqlx_core::row::Row as _;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::Postgres;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Email {
    to: String,
}

type Seen = Arc<Mutex<Vec<(String, Job)>>>;

fn host_with(config: &DurableConfig, service: ServiceDescriptor) -> HostBuilder {
    let configuration = ConfigSources::new()
        .toml("test.toml", toml(config))
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

async fn count(config: &DurableConfig, host: &RunningHost, state: &str) -> i64 {
    let queue = host.get::<Queue<Email>>().await.unwrap();
    let backend = queue.durable_backend().expect("a durable queue");
    query::<Postgres>(AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE state = '{state}'",
        config.schema
    )))
    .fetch_one(backend.pool())
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn sent_items_are_handled_once_each_with_their_job() {
    let Some(config) = config("handled") else {
        return;
    };
    let seen = Seen::default();
    let host = start(host_with(
        &config,
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

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_next_attempt_number() {
    let Some(config) = config("retried") else {
        return;
    };
    let seen = Seen::default();
    let host = start(host_with(
        &config,
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
            count(&config, &host, "completed").await == 1
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

#[tokio::test]
async fn a_timed_out_attempt_goes_to_the_dead_letters_with_its_error() {
    let Some(config) = config("timeout") else {
        return;
    };
    let host = start(host_with(
        &config,
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
    let backend = Arc::clone(queue.durable_backend().unwrap());
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

#[tokio::test]
async fn a_payload_that_no_longer_deserialises_is_dead_lettered_and_the_queue_goes_on() {
    let Some(config) = config("bad_payload") else {
        return;
    };
    let seen = Seen::default();
    let host = start(host_with(
        &config,
        recording(&seen, QueueOptions::new(1), false),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    let backend = Arc::clone(queue.durable_backend().unwrap());
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

#[tokio::test]
async fn a_transactional_send_exists_only_if_its_transaction_commits() {
    let Some(config) = config("tx_send") else {
        return;
    };
    let seen = Seen::default();
    let host = start(host_with(
        &config,
        recording(&seen, QueueOptions::new(1), false),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    let pool = queue.durable_backend().unwrap().pool().clone();
    let mut tx = pool.begin().await.unwrap();
    queue
        .send_in(
            &mut tx,
            Email {
                to: "rolled back".into(),
            },
        )
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    queue
        .send_in(
            &mut tx,
            Email {
                to: "committed".into(),
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            count(&config, &host, "completed").await == 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let total: i64 = query::<Postgres>(AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".jobs",
        config.schema
    )))
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(total, 1, "the rolled-back send left no job");
    let handled: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(to, _)| to.clone())
        .collect();
    assert_eq!(handled, vec!["committed".to_owned()]);
    assert!(host.stop().await.is_success());
}

#[tokio::test]
async fn a_transactional_completion_commits_the_effect_with_the_job_and_rolls_back_a_failure() {
    let Some(config) = config("tx_complete") else {
        return;
    };
    let schema = config.schema.clone();
    let effects = format!("\"{schema}\".effects");
    let host = start(host_with(
        &config,
        durable_queued(
            "app::outbox",
            QueueOptions::new(1)
                .with_retries(1)
                .with_retry_backoff(Duration::from_millis(20)),
            {
                let effects = effects.clone();
                move |email: Email, cx: RunContext| {
                    let effects = effects.clone();
                    async move {
                        let job = cx.resolve::<Job>().await?;
                        let tx = cx.resolve::<JobTransaction>().await?;
                        let mut conn = tx.connection().await?;
                        query::<Postgres>(AssertSqlSafe(format!(
                            "INSERT INTO {effects} (job, attempt, address) VALUES ($1, $2, $3)"
                        )))
                        .bind(job.id())
                        .bind(i32::try_from(job.attempt()).unwrap())
                        .bind(&email.to)
                        .execute(&mut *conn)
                        .await?;
                        if job.attempt() == 1 {
                            return Err::<(), hosted::BoxError>("the first attempt fails".into());
                        }
                        Ok(())
                    }
                }
            },
        ),
    ))
    .await;
    let queue = host.get::<Queue<Email>>().await.unwrap();
    let pool = queue.durable_backend().unwrap().pool().clone();
    query::<Postgres>(AssertSqlSafe(format!(
        "CREATE TABLE {effects} (job bigint, attempt int, address text)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    queue.send(Email { to: "once".into() }).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            count(&config, &host, "completed").await == 1
        })
        .await
    );
    let rows: Vec<(i32, String)> = query::<Postgres>(AssertSqlSafe(format!(
        "SELECT attempt, address FROM {effects}"
    )))
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
    assert_eq!(
        rows,
        vec![(2, "once".to_owned())],
        "the failed attempt rolled back"
    );
    assert!(host.stop().await.is_success());
}

#[tokio::test]
async fn the_stop_releases_unfinished_jobs_at_once_without_counting_an_attempt() {
    let Some(mut config) = config("release_on_stop") else {
        return;
    };
    // A long lease: another worker may take the job only because it was released.
    config.lease = Duration::from_mins(1);
    let started = Arc::new(tokio::sync::Notify::new());
    let host = start(host_with(
        &config,
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
    let backend = Arc::clone(queue.durable_backend().unwrap());
    queue.send(Email { to: "long".into() }).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the job started");
    drop(queue);
    assert!(host.stop().await.is_success());
    let other = hosted::durable::PgBackend::connect(&config).await.unwrap();
    let claimed = hosted::durable::Backend::claim(&other, "app::outbox", 1)
        .await
        .unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "released at once, not after the 60 s lease"
    );
    assert_eq!(claimed[0].lease.attempt, 1, "a release is not an attempt");
    drop(backend);
}
