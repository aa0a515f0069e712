//! The backend seam against a real PostgreSQL server: claims with leases, fencing, retries and
//! dead letters, graceful release, rescue of expired leases by the elected replica, wake-ups,
//! migrations. Written against `dyn Backend`, so another backend runs the same suite.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hosted::durable::{Backend, DurableConfig, DurableError, Migrate, PgBackend, Settled};
use hosted_durable_tests::config;

async fn backend(config: &DurableConfig) -> Arc<dyn Backend> {
    Arc::new(PgBackend::connect(config).await.expect("connected"))
}

#[tokio::test]
async fn a_claimed_job_completes_once_and_a_second_result_is_stale() {
    let Some(config) = config("complete") else {
        return;
    };
    let (a, b) = (backend(&config).await, backend(&config).await);
    let id = a.enqueue("q", r#"{"n":1}"#, 3).await.unwrap();
    let claimed = a.claim("q", 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease.id, id);
    assert_eq!(claimed[0].lease.attempt, 1);
    assert_eq!(claimed[0].payload, r#"{"n": 1}"#);
    assert!(
        b.claim("q", 10).await.unwrap().is_empty(),
        "one lease per job"
    );
    assert!(
        a.claim("other", 10).await.unwrap().is_empty(),
        "queues are apart"
    );
    assert_eq!(
        a.complete(&claimed[0].lease).await.unwrap(),
        Settled::Completed
    );
    assert_eq!(a.complete(&claimed[0].lease).await.unwrap(), Settled::Stale);
    assert_eq!(
        a.fail(&claimed[0].lease, "late", None).await.unwrap(),
        Settled::Stale
    );
    let counts = a.counts("q").await.unwrap();
    assert_eq!(
        (counts.waiting, counts.running, counts.completed),
        (0, 0, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_sent_together_are_fenced_one_by_one() {
    let Some(config) = config("batch") else {
        return;
    };
    let a = backend(&config).await;
    for n in 0..40 {
        a.enqueue("q", &format!(r#"{{"n":{n}}}"#), 3).await.unwrap();
    }
    let claimed = a.claim("q", 40).await.unwrap();
    assert_eq!(claimed.len(), 40);
    // Every fourth completed already: its second completion, in a batch with the others, is
    // stale and the others are not.
    for job in claimed.iter().step_by(4) {
        assert_eq!(a.complete(&job.lease).await.unwrap(), Settled::Completed);
    }
    let settled = futures_util::future::join_all(claimed.iter().map(|job| {
        let a = Arc::clone(&a);
        let lease = job.lease;
        async move { tokio::spawn(async move { a.complete(&lease).await }).await }
    }))
    .await;
    for (index, settled) in settled.into_iter().enumerate() {
        let expected = if index % 4 == 0 {
            Settled::Stale
        } else {
            Settled::Completed
        };
        assert_eq!(settled.unwrap().unwrap(), expected, "job {index}");
    }
    let counts = a.counts("q").await.unwrap();
    assert_eq!((counts.running, counts.completed), (0, 40));
}

#[tokio::test]
async fn an_expired_lease_is_rescued_by_the_leader_and_the_stale_attempt_rejected() {
    let Some(mut config) = config("rescue") else {
        return;
    };
    config.lease = Duration::from_millis(300);
    let (a, b) = (backend(&config).await, backend(&config).await);
    a.enqueue("q", "1", 3).await.unwrap();
    let first = a.claim("q", 1).await.unwrap().remove(0);
    // A live lease is not rescued.
    let done = b.maintain(Duration::from_hours(1)).await.unwrap();
    assert_eq!(done.rescued, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // `b` holds the maintenance lease from its first round.
    let done = b.maintain(Duration::from_hours(1)).await.unwrap();
    assert!(done.term.is_some());
    assert_eq!(done.rescued, 1);
    let second = b.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(second.lease.attempt, 2, "a crash counts an attempt");
    assert_eq!(a.complete(&first.lease).await.unwrap(), Settled::Stale);
    assert_eq!(b.complete(&second.lease).await.unwrap(), Settled::Completed);
}

#[tokio::test]
async fn a_heartbeat_keeps_the_lease_alive() {
    let Some(mut config) = config("heartbeat") else {
        return;
    };
    config.lease = Duration::from_millis(300);
    let (a, b) = (backend(&config).await, backend(&config).await);
    a.enqueue("q", "1", 1).await.unwrap();
    let job = a.claim("q", 1).await.unwrap().remove(0);
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(a.heartbeat(&[job.lease]).await.unwrap(), 1);
        assert_eq!(
            b.maintain(Duration::from_hours(1)).await.unwrap().rescued,
            0
        );
    }
    assert_eq!(a.complete(&job.lease).await.unwrap(), Settled::Completed);
    assert_eq!(
        a.heartbeat(&[job.lease]).await.unwrap(),
        0,
        "nothing left to renew"
    );
}

#[tokio::test]
async fn out_of_attempts_a_rescued_job_is_dead_with_the_reason() {
    let Some(mut config) = config("rescue_dead") else {
        return;
    };
    config.lease = Duration::from_millis(100);
    let a = backend(&config).await;
    let id = a.enqueue("q", "1", 1).await.unwrap();
    a.claim("q", 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        a.maintain(Duration::from_hours(1)).await.unwrap().rescued,
        1
    );
    let dead = a.dead_letters("q", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert!(
        dead[0].error.contains("lease of attempt 1 expired"),
        "{}",
        dead[0].error
    );
}

#[tokio::test]
async fn retries_wait_for_their_persisted_time_then_the_job_is_dead_with_the_last_error() {
    let Some(config) = config("retries") else {
        return;
    };
    let a = backend(&config).await;
    let id = a.enqueue("q", "1", 2).await.unwrap();
    let first = a.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(
        a.fail(&first.lease, "boom 1", Some(Duration::from_millis(400)))
            .await
            .unwrap(),
        Settled::Retrying
    );
    assert!(
        a.claim("q", 1).await.unwrap().is_empty(),
        "not before its run-after time"
    );
    assert_eq!(a.counts("q").await.unwrap().waiting, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = a.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(second.lease.attempt, 2);
    assert_eq!(
        a.fail(&second.lease, "boom 2", Some(Duration::from_millis(1)))
            .await
            .unwrap(),
        Settled::Dead,
        "attempts exhausted"
    );
    let dead = a.dead_letters("q", 10).await.unwrap();
    assert_eq!(
        (dead[0].id, dead[0].attempts, dead[0].error.as_str()),
        (id, 2, "boom 2")
    );
    assert_eq!(a.counts("q").await.unwrap().dead, 1);
    // Operations: retry puts it back with fresh attempts; discard deletes a dead one.
    assert!(a.retry_dead(id).await.unwrap());
    assert!(!a.retry_dead(id).await.unwrap(), "no longer dead");
    let again = a.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(again.lease.attempt, 1);
    assert_eq!(
        a.fail(&again.lease, "boom 3", None).await.unwrap(),
        Settled::Dead
    );
    assert!(a.discard_dead(id).await.unwrap());
    assert!(a.dead_letters("q", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_released_job_goes_back_at_once_without_counting_an_attempt() {
    let Some(config) = config("release") else {
        return;
    };
    let (a, b) = (backend(&config).await, backend(&config).await);
    a.enqueue("q", "1", 1).await.unwrap();
    let first = a.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(a.release(&first.lease).await.unwrap(), Settled::Released);
    let second = b.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(second.lease.attempt, 1, "a release is not an attempt");
    assert_ne!(second.lease.claim, first.lease.claim);
    assert_eq!(a.complete(&first.lease).await.unwrap(), Settled::Stale);
    assert_eq!(b.complete(&second.lease).await.unwrap(), Settled::Completed);
}

#[tokio::test]
async fn one_replica_leads_maintenance_with_a_term() {
    let Some(mut config) = config("leader") else {
        return;
    };
    config.lease = Duration::from_millis(100);
    let (a, b) = (backend(&config).await, backend(&config).await);
    let first = a.maintain(Duration::from_hours(1)).await.unwrap().term;
    assert_eq!(first, Some(1));
    assert_eq!(
        b.maintain(Duration::from_hours(1)).await.unwrap().term,
        None
    );
    assert_eq!(
        a.maintain(Duration::from_hours(1)).await.unwrap().term,
        Some(1)
    );
    // The maintenance lease outlives three leases (and at least a second), then passes on.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(
        b.maintain(Duration::from_hours(1)).await.unwrap().term,
        Some(2)
    );
    assert_eq!(
        a.maintain(Duration::from_hours(1)).await.unwrap().term,
        None
    );
}

#[tokio::test]
async fn finished_jobs_are_pruned_after_the_retention() {
    let Some(config) = config("prune") else {
        return;
    };
    let a = backend(&config).await;
    a.enqueue("q", "1", 1).await.unwrap();
    let job = a.claim("q", 1).await.unwrap().remove(0);
    a.complete(&job.lease).await.unwrap();
    assert_eq!(a.maintain(Duration::from_hours(1)).await.unwrap().pruned, 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        a.maintain(Duration::from_millis(10)).await.unwrap().pruned,
        1
    );
    assert_eq!(a.counts("q").await.unwrap().completed, 0);
}

#[tokio::test]
async fn a_notification_wakes_an_idle_worker_long_before_its_poll() {
    let Some(config) = config("notify") else {
        return;
    };
    let (a, b) = (backend(&config).await, backend(&config).await);
    // Let the listener connect.
    b.wait_for_work("q", Duration::from_millis(300)).await;
    let started = tokio::time::Instant::now();
    let waiting = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.wait_for_work("q", Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.enqueue("q", "1", 1).await.unwrap();
    waiting.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "woken by the notification, not the 30 s poll"
    );
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_job() {
    let Some(config) = config("concurrent") else {
        return;
    };
    let a = backend(&config).await;
    for n in 0..200 {
        a.enqueue("q", &n.to_string(), 1).await.unwrap();
    }
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let backend = backend(&config).await;
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = backend.claim("q", 7).await.unwrap();
                if jobs.is_empty() {
                    return mine;
                }
                for job in jobs {
                    assert_eq!(
                        backend.complete(&job.lease).await.unwrap(),
                        Settled::Completed
                    );
                    mine.push(job.lease.id);
                }
            }
        }));
    }
    let mut seen = HashSet::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            assert!(seen.insert(id), "job {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 200);
}

#[tokio::test]
async fn migrations_are_versioned_and_a_wrong_version_is_reported() {
    let Some(mut config) = config("migrations") else {
        return;
    };
    // Manual: an empty schema is not used.
    config.migrate = Migrate::Manual;
    let error = PgBackend::connect(&config).await.unwrap_err();
    assert!(
        matches!(
            error,
            DurableError::SchemaVersion {
                found: 0,
                expected: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(PgBackend::check(&config).await.is_err());
    PgBackend::migrate(&config).await.unwrap();
    PgBackend::migrate(&config).await.unwrap(); // idempotent
    PgBackend::check(&config).await.unwrap();
    let backend = PgBackend::connect(&config).await.unwrap();
    sqlx_core::query::query::<sqlx_postgres::Postgres>(sqlx_core::sql_str::AssertSqlSafe(format!(
        "UPDATE \"{}\".schema_version SET version = 99",
        config.schema
    )))
    .execute(backend.pool())
    .await
    .unwrap();
    config.migrate = Migrate::Auto;
    let error = PgBackend::connect(&config).await.unwrap_err();
    assert!(
        matches!(error, DurableError::SchemaVersion { found: 99, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("newer build"), "{error}");
    assert!(PgBackend::check(&config).await.is_err());
}

#[tokio::test]
async fn concurrent_migrations_from_several_processes_apply_once() {
    let Some(config) = config("migrate_race") else {
        return;
    };
    let config = Arc::new(config);
    let racing: Vec<_> = (0..4)
        .map(|_| {
            let config = Arc::clone(&config);
            tokio::spawn(async move { PgBackend::migrate(&config).await })
        })
        .collect();
    for one in racing {
        one.await.unwrap().unwrap();
    }
    PgBackend::check(&config).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_reported_with_the_password_masked() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config =
        DurableConfig::new(&format!("postgres://app:hunter2@127.0.0.1:{port}/db")).unwrap();
    config.connect_timeout = Duration::from_millis(500);
    let error = PgBackend::check(&config).await.unwrap_err();
    let shown = error.to_string();
    assert!(matches!(error, DurableError::Unreachable { .. }), "{shown}");
    assert!(shown.contains("app:***@127.0.0.1"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn with_listen_off_an_idle_worker_waits_for_its_poll() {
    let Some(mut config) = config("poll_only") else {
        return;
    };
    config.listen = false;
    let (a, b) = (backend(&config).await, backend(&config).await);
    let started = tokio::time::Instant::now();
    let waiting = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.wait_for_work("q", Duration::from_millis(400)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.enqueue("q", "1", 1).await.unwrap();
    waiting.await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not woken by the notification: it polls"
    );
    assert_eq!(
        b.claim("q", 1).await.unwrap().len(),
        1,
        "the poll finds the job"
    );
}

#[tokio::test]
async fn a_job_keeps_where_it_was_sent_from_and_a_plain_enqueue_keeps_nothing() {
    let Some(config) = config("origin") else {
        return;
    };
    let a = backend(&config).await;
    let origin = r#"{"run":"tick{service=app::digest tick=42}"}"#;
    a.enqueue_from("q", "1", 1, Some(origin)).await.unwrap();
    a.enqueue("q", "2", 1).await.unwrap();
    let claimed = a.claim("q", 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].origin.as_deref(), Some(origin));
    assert_eq!(claimed[1].origin, None);
}
