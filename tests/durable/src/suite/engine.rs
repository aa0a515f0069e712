//! The backend seam itself: claims with leases, fencing, retries and dead letters, graceful
//! release, rescue of expired leases by the elected replica, pruning, wake-ups.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hosted::durable::{Retention, Settled};

use crate::store::{Store, Tuning};

const KEEP: Retention = Retention::new(Duration::from_hours(1), Some(Duration::from_hours(1)));

/// Contract 1, 3, 4.
pub async fn a_claimed_job_completes_once_and_a_second_result_is_stale<S: Store>() {
    let Some(store) = S::fresh("complete", Tuning::default()).await else {
        return;
    };
    let (a, b) = (store.backend().await, store.backend().await);
    let id = a.enqueue("q", r#"{"n":1}"#, 3).await.unwrap();
    let claimed = a.claim("q", 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease.id, id);
    assert_eq!(claimed[0].lease.attempt, 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&claimed[0].payload).unwrap(),
        serde_json::json!({ "n": 1 })
    );
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

/// Contract 4.
pub async fn completions_sent_together_are_fenced_one_by_one<S: Store>() {
    let Some(store) = S::fresh("batch", Tuning::default()).await else {
        return;
    };
    let a = store.backend().await;
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

/// Contract 4, 5, 8.
pub async fn an_expired_lease_is_rescued_by_the_leader_and_the_stale_attempt_rejected<S: Store>() {
    let tuning = Tuning::default().lease(Duration::from_millis(300));
    let Some(store) = S::fresh("rescue", tuning).await else {
        return;
    };
    let (a, b) = (store.backend().await, store.backend().await);
    a.enqueue("q", "1", 3).await.unwrap();
    let first = a.claim("q", 1).await.unwrap().remove(0);
    // A live lease is not rescued.
    let done = b.maintain(KEEP).await.unwrap();
    assert_eq!(done.rescued, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // `b` holds the maintenance lease from its first round.
    let done = b.maintain(KEEP).await.unwrap();
    assert!(done.term.is_some());
    assert_eq!(done.rescued, 1);
    let second = b.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(second.lease.attempt, 2, "a crash counts an attempt");
    assert_eq!(a.complete(&first.lease).await.unwrap(), Settled::Stale);
    assert_eq!(b.complete(&second.lease).await.unwrap(), Settled::Completed);
}

/// Contract 3.
pub async fn a_heartbeat_keeps_the_lease_alive<S: Store>() {
    let tuning = Tuning::default().lease(Duration::from_millis(300));
    let Some(store) = S::fresh("heartbeat", tuning).await else {
        return;
    };
    let (a, b) = (store.backend().await, store.backend().await);
    a.enqueue("q", "1", 1).await.unwrap();
    let job = a.claim("q", 1).await.unwrap().remove(0);
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(a.heartbeat(&[job.lease]).await.unwrap(), vec![job.lease.id]);
        assert_eq!(b.maintain(KEEP).await.unwrap().rescued, 0);
    }
    assert_eq!(a.complete(&job.lease).await.unwrap(), Settled::Completed);
    assert!(
        a.heartbeat(&[job.lease]).await.unwrap().is_empty(),
        "nothing left to renew"
    );
}

/// Contract 5, 6.
pub async fn out_of_attempts_a_rescued_job_is_dead_with_the_reason<S: Store>() {
    let tuning = Tuning::default().lease(Duration::from_millis(100));
    let Some(store) = S::fresh("rescue_dead", tuning).await else {
        return;
    };
    let a = store.backend().await;
    let id = a.enqueue("q", "1", 1).await.unwrap();
    a.claim("q", 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(a.maintain(KEEP).await.unwrap().rescued, 1);
    let dead = a.dead_letters("q", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert!(
        dead[0].error.contains("lease of attempt 1 expired"),
        "{}",
        dead[0].error
    );
}

/// Contract 6, and the dead letters' operations.
pub async fn retries_wait_for_their_persisted_time_then_the_job_is_dead_with_the_last_error<
    S: Store,
>() {
    let Some(store) = S::fresh("retries", Tuning::default()).await else {
        return;
    };
    let a = store.backend().await;
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
    assert!(!a.discard_dead(id).await.unwrap(), "already gone");
    assert!(a.dead_letters("q", 10).await.unwrap().is_empty());
}

/// Contract 7.
pub async fn a_released_job_goes_back_at_once_without_counting_an_attempt<S: Store>() {
    let Some(store) = S::fresh("release", Tuning::default()).await else {
        return;
    };
    let (a, b) = (store.backend().await, store.backend().await);
    a.enqueue("q", "1", 1).await.unwrap();
    let first = a.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(a.release(&first.lease).await.unwrap(), Settled::Released);
    let second = b.claim("q", 1).await.unwrap().remove(0);
    assert_eq!(second.lease.attempt, 1, "a release is not an attempt");
    assert_ne!(second.lease.claim, first.lease.claim);
    assert_eq!(a.complete(&first.lease).await.unwrap(), Settled::Stale);
    assert_eq!(b.complete(&second.lease).await.unwrap(), Settled::Completed);
}

/// Contract 8.
pub async fn one_replica_leads_maintenance_with_a_term<S: Store>() {
    let tuning = Tuning::default().lease(Duration::from_millis(100));
    let Some(store) = S::fresh("leader", tuning).await else {
        return;
    };
    let (a, b) = (store.backend().await, store.backend().await);
    assert_eq!(a.maintain(KEEP).await.unwrap().term, Some(1));
    assert_eq!(b.maintain(KEEP).await.unwrap().term, None);
    assert_eq!(a.maintain(KEEP).await.unwrap().term, Some(1));
    // The maintenance lease outlives three leases (and at least a second), then passes on.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(b.maintain(KEEP).await.unwrap().term, Some(2));
    assert_eq!(a.maintain(KEEP).await.unwrap().term, None);
}

/// Operations: completed jobs go after `retention`, and dead ones are kept meanwhile.
pub async fn completed_jobs_are_pruned_after_the_retention<S: Store>() {
    let Some(store) = S::fresh("prune", Tuning::default()).await else {
        return;
    };
    let a = store.backend().await;
    a.enqueue("q", "1", 1).await.unwrap();
    let job = a.claim("q", 1).await.unwrap().remove(0);
    a.complete(&job.lease).await.unwrap();
    assert_eq!(a.maintain(KEEP).await.unwrap().pruned, 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let done = a
        .maintain(Retention::new(
            Duration::from_millis(10),
            Some(Duration::from_hours(1)),
        ))
        .await
        .unwrap();
    assert_eq!((done.pruned, done.pruned_dead), (1, 0));
    assert_eq!(a.counts("q").await.unwrap().completed, 0);
}

/// Operations: dead jobs go after their own retention, counted from their last attempt; with
/// none (`"never"`) they stay until retried or discarded.
pub async fn dead_jobs_are_pruned_after_their_own_retention_or_kept<S: Store>() {
    let Some(store) = S::fresh("prune_dead", Tuning::default()).await else {
        return;
    };
    let a = store.backend().await;
    for _ in 0..2 {
        a.enqueue("q", "1", 1).await.unwrap();
    }
    a.enqueue("q", "2", 1).await.unwrap();
    let jobs = a.claim("q", 3).await.unwrap();
    // Two dead, one completed.
    for job in &jobs[..2] {
        assert_eq!(
            a.fail(&job.lease, "boom", None).await.unwrap(),
            Settled::Dead
        );
    }
    a.complete(&jobs[2].lease).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let never = Retention::new(Duration::from_hours(1), None);
    assert_eq!(a.maintain(never).await.unwrap().pruned_dead, 0, "kept");
    assert_eq!(
        a.maintain(KEEP).await.unwrap().pruned_dead,
        0,
        "not old enough"
    );
    assert_eq!(a.counts("q").await.unwrap().dead, 2);
    let short = Retention::new(Duration::from_hours(1), Some(Duration::from_millis(10)));
    let done = a.maintain(short).await.unwrap();
    assert_eq!((done.pruned, done.pruned_dead), (0, 2));
    let counts = a.counts("q").await.unwrap();
    assert_eq!(
        (counts.dead, counts.completed),
        (0, 1),
        "the completed job is kept"
    );
    assert!(a.dead_letters("q", 10).await.unwrap().is_empty());
    // Only the elected replica prunes.
    a.enqueue("q", "3", 1).await.unwrap();
    let job = a.claim("q", 1).await.unwrap().remove(0);
    a.fail(&job.lease, "boom", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = store.backend().await;
    let done = b.maintain(short).await.unwrap();
    assert_eq!((done.term, done.pruned_dead), (None, 0), "not the leader");
    assert_eq!(a.counts("q").await.unwrap().dead, 1);
}

/// Contract 9.
pub async fn a_notification_wakes_an_idle_worker_long_before_its_poll<S: Store>() {
    let Some(store) = S::fresh("notify", Tuning::default()).await else {
        return;
    };
    let (a, b) = (store.backend().await, store.backend().await);
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

/// Contract 9: correctness never depends on a notification.
pub async fn with_listen_off_an_idle_worker_waits_for_its_poll<S: Store>() {
    let tuning = Tuning {
        listen: false,
        ..Tuning::default()
    };
    let Some(store) = S::fresh("poll_only", tuning).await else {
        return;
    };
    let (a, b) = (store.backend().await, store.backend().await);
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

/// Contract 3.
pub async fn concurrent_claimers_never_share_a_job<S: Store>() {
    let Some(store) = S::fresh("concurrent", Tuning::default()).await else {
        return;
    };
    let a = store.backend().await;
    for n in 0..200 {
        a.enqueue("q", &n.to_string(), 1).await.unwrap();
    }
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let backend = store.backend().await;
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

/// Issue 15: where a job was sent from is kept with it, for its run's span.
pub async fn a_job_keeps_where_it_was_sent_from_and_a_plain_enqueue_keeps_nothing<S: Store>() {
    let Some(store) = S::fresh("origin", Tuning::default()).await else {
        return;
    };
    let a = store.backend().await;
    let origin = r#"{"run":"tick{service=app::digest tick=42}"}"#;
    a.enqueue_from("q", "1", 1, Some(origin)).await.unwrap();
    a.enqueue("q", "2", 1).await.unwrap();
    let claimed = a.claim("q", 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].origin.as_deref(), Some(origin));
    assert_eq!(claimed[1].origin, None);
}

/// Contract 8: a tick of a schedule is claimed at most once, however many replicas race for
/// it, and the ticks are kept until pruned; every replica reads the one clock of the store.
pub async fn a_tick_is_claimed_once_however_many_replicas_race_for_it<S: Store>() {
    let Some(store) = S::fresh("tick_claims", Tuning::default()).await else {
        return;
    };
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push(store.backend().await);
    }
    // One clock: a reading on one replica after a reading on another is not earlier.
    let mut clock = replicas[0].clock_us().await.unwrap();
    for replica in replicas.iter().cycle().take(12) {
        let now = replica.clock_us().await.unwrap();
        assert!(
            now >= clock,
            "the store's clock went back: {now} after {clock}"
        );
        clock = now;
    }
    let period = 1_000_000;
    let first = (clock / period + 1) * period;
    for (round, due) in (0..10).map(|round| (round, first + round * period)) {
        let raced = futures_util::future::join_all(replicas.iter().map(|replica| {
            let replica = Arc::clone(replica);
            tokio::spawn(async move { replica.claim_tick("app::tick", due).await })
        }))
        .await;
        let won = raced
            .into_iter()
            .filter(|claimed| *claimed.as_ref().unwrap().as_ref().unwrap())
            .count();
        assert_eq!(won, 1, "tick {due}: claimed once among four replicas");
        assert!(
            !replicas[usize::try_from(round % 4).unwrap()]
                .claim_tick("app::tick", due)
                .await
                .unwrap(),
            "a tick claimed stays claimed"
        );
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    assert!(
        a.claim_tick("app::other", first).await.unwrap(),
        "each schedule has ticks of its own"
    );
    let last = first + 9 * period;
    assert_eq!(b.last_tick("app::tick").await.unwrap(), Some(last));
    assert_eq!(b.last_tick("app::never").await.unwrap(), None);
    // Forgetting the older ticks keeps the later ones claimed, and the other schedule's.
    assert_eq!(
        a.prune_ticks("app::tick", first + 5 * period)
            .await
            .unwrap(),
        5
    );
    assert!(!b.claim_tick("app::tick", first + 5 * period).await.unwrap());
    assert_eq!(b.last_tick("app::tick").await.unwrap(), Some(last));
    assert_eq!(b.last_tick("app::other").await.unwrap(), Some(first));
}
