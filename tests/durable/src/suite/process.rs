//! Real worker processes (the store's worker binary) against a real server: killed with
//! SIGKILL, stopped with SIGTERM, stalled behind a paused connection, left running across a
//! server restart, and three replicas of a once-per-cluster timer. Every accepted job ends
//! completed or dead, none is lost, and with transactional completion each job's effect is
//! recorded exactly once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use hosted::durable::Backend;

use crate::eventually;
use crate::store::{JobState, Pause as _, Store, Tuning, in_state};
use crate::worker::{Work, Worker};

async fn enqueue(backend: &Arc<dyn Backend>, from: i64, count: i64) {
    for n in from..from + count {
        backend
            .enqueue("work", &format!(r#"{{"n":{n}}}"#), 11)
            .await
            .expect("enqueued");
    }
}

async fn all_finished<S: Store>(store: &S, jobs: usize) -> bool {
    let rows = store.jobs().await;
    in_state(&rows, JobState::Completed) + in_state(&rows, JobState::Dead) == jobs
}

/// Every job completed or dead, none waiting or running, and exactly one effect per completed
/// job (none for the others).
async fn assert_settled_exactly_once<S: Store>(store: &S, jobs: usize) {
    let rows = store.jobs().await;
    assert_eq!(rows.len(), jobs, "every accepted job is still there");
    let open: Vec<_> = rows
        .iter()
        .filter(|job| !matches!(job.state, JobState::Completed | JobState::Dead))
        .collect();
    assert!(
        open.is_empty(),
        "none lost: every job ended completed or dead: {open:?}"
    );
    let mut effects: HashMap<i64, usize> = HashMap::new();
    for effect in store.effects().await {
        *effects.entry(effect.job).or_default() += 1;
    }
    for job in &rows {
        let recorded = effects.get(&job.id).copied().unwrap_or(0);
        match job.state {
            JobState::Completed => assert_eq!(recorded, 1, "job {}: one effect", job.id),
            _ => assert_eq!(
                recorded, 0,
                "job {}: no effect without its completion",
                job.id
            ),
        }
    }
    assert_eq!(
        effects.len(),
        in_state(&rows, JobState::Completed),
        "no effect of a job that does not exist"
    );
}

/// Contract 2, 4, 5, and exactly once with a transactional completion.
pub async fn kill_9_of_one_of_three_workers_mid_job_loses_nothing_and_records_each_effect_once<
    S: Store,
>() {
    let tuning = Tuning::default().lease(Duration::from_millis(1500));
    let Some(store) = S::fresh("kill9", tuning).await else {
        return;
    };
    let backend = store.backend().await;
    let settings = store.settings();
    let work = Work::up_to(150);
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::spawn(&store, &settings, &work))
        .collect();
    let trials = 20;
    let per_trial = 15;
    for trial in 0..trials {
        enqueue(&backend, trial * per_trial, per_trial).await;
        // A worker holding a job, found within the trial's jobs (each up to 150 ms), so that the
        // kill cuts a job off: random kills often hit a worker that had finished its jobs or not
        // started yet, and the check below that some job was run again failed in whole-suite runs.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..50))).await;
        let holding = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(index) = workers.iter().position(Worker::holds_a_job) {
                    return index;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
        let victim = workers.remove(holding.unwrap_or_else(|_| fastrand::usize(..workers.len())));
        victim.kill9().await;
        workers.push(Worker::spawn(&store, &settings, &work));
    }
    let jobs = usize::try_from(trials * per_trial).unwrap();
    assert!(
        eventually(Duration::from_mins(1), || all_finished(&store, jobs)).await,
        "the jobs of the killed workers were rescued and finished"
    );
    for worker in &mut workers {
        assert!(worker.is_running(), "{}", worker.log());
    }
    assert_settled_exactly_once(&store, jobs).await;
    let rows = store.jobs().await;
    assert!(
        rows.iter().any(|job| job.attempt > 1),
        "some jobs were cut off by a kill and run again"
    );
    for worker in workers {
        let (status, log) = worker.terminate().await;
        assert!(status.success(), "{log}");
    }
}

/// Contract 7.
pub async fn sigterm_drains_within_budget_and_releases_unfinished_leases_at_once<S: Store>() {
    // A lease far longer than the test: another worker gets the jobs only through the release.
    let tuning = Tuning::default().lease(Duration::from_mins(2));
    let Some(store) = S::fresh("sigterm", tuning).await else {
        return;
    };
    let backend = store.backend().await;
    let settings = store.settings();
    let slow = Worker::spawn(&store, &settings, &Work::taking(60_000));
    enqueue(&backend, 0, 4).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            in_state(&store.jobs().await, JobState::Running) == 4
        })
        .await,
        "{}",
        slow.log()
    );
    let started = tokio::time::Instant::now();
    let (_, log) = slow.terminate().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "within the 3 s budget"
    );
    assert!(log.contains("durable queue stopped"), "{log}");
    assert!(
        log.contains("claimed=4") && log.contains("released=4"),
        "the final line accounts for every job claimed: {log}"
    );
    let rows = store.jobs().await;
    assert!(
        rows.iter()
            .all(|job| job.state == JobState::Available && job.attempt == 0),
        "released, the attempt not counted: {rows:?}"
    );
    let fast = Worker::spawn(&store, &settings, &Work::taking(10));
    assert!(
        eventually(Duration::from_secs(20), || all_finished(&store, 4)).await,
        "another worker took them without waiting for the 120 s lease: {}",
        fast.log()
    );
    assert_settled_exactly_once(&store, 4).await;
    assert!(
        store
            .effects()
            .await
            .iter()
            .all(|effect| effect.attempt == 1),
        "each ran once, as its first attempt"
    );
    let (status, log) = fast.terminate().await;
    assert!(status.success(), "{log}");
}

/// Contract 3, 4, 5, with a live worker: its connection stalls past the lease.
pub async fn a_stalled_worker_past_its_lease_has_its_stale_completion_rejected<S: Store>() {
    let tuning = Tuning::default().lease(Duration::from_secs(1));
    let Some(store) = S::fresh("stalled", tuning).await else {
        return;
    };
    let backend = store.backend().await;
    let (relayed, stall) = store.stallable().await;
    let stalled = Worker::spawn(&store, &relayed, &Work::taking(500));
    enqueue(&backend, 0, 1).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            in_state(&store.jobs().await, JobState::Running) == 1
        })
        .await,
        "{}",
        stalled.log()
    );
    stall.pause(true);
    let rescuer = Worker::spawn(&store, &store.settings(), &Work::taking(10));
    assert!(
        eventually(Duration::from_secs(20), || all_finished(&store, 1)).await,
        "the live worker's lease expired and another worker completed the job: {}",
        rescuer.log()
    );
    // Longer than the lease in all.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stall.pause(false);
    assert!(
        eventually(Duration::from_secs(20), || async {
            stalled.log().contains("the result was rejected")
        })
        .await,
        "the stale attempt's completion was rejected and reported: {}",
        stalled.log()
    );
    assert_settled_exactly_once(&store, 1).await;
    let effects = store.effects().await;
    assert_eq!(
        (effects[0].pid, effects[0].attempt),
        (rescuer.pid(), 2),
        "the effect is the rescuer's alone"
    );
    let (status, log) = stalled.terminate().await;
    assert!(status.success(), "{log}");
    let (status, log) = rescuer.terminate().await;
    assert!(status.success(), "{log}");
}

/// Contract 10.
pub async fn a_server_restart_mid_run_loses_nothing_and_completes_nothing_twice<S: Store>() {
    let tuning = Tuning::default().lease(Duration::from_secs(2));
    let Some(store) = S::fresh_on_own_server("restart", tuning).await else {
        return;
    };
    let backend = store.backend().await;
    let settings = store.settings();
    let mut workers: Vec<Worker> = (0..2)
        .map(|_| Worker::spawn(&store, &settings, &Work::up_to(60)))
        .collect();
    let jobs = 300;
    enqueue(&backend, 0, 300).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            in_state(&store.jobs().await, JobState::Completed) > 10
        })
        .await
    );
    store.restart().await;
    // The suite's own reads reconnect too; the restart came mid-run.
    let after = in_state(&store.jobs().await, JobState::Completed);
    assert!(after < jobs, "the restart came before the end of the run");
    assert!(
        eventually(Duration::from_secs(90), || all_finished(&store, jobs)).await,
        "{}",
        workers[0].log()
    );
    for worker in &mut workers {
        assert!(worker.is_running(), "the host survives: {}", worker.log());
    }
    assert_settled_exactly_once(&store, jobs).await;
    for worker in workers {
        let (status, log) = worker.terminate().await;
        assert!(status.success(), "{log}");
    }
}

/// `libfaketime`, to run a replica whose wall clock is off; installed with `apt-get` when
/// missing and running as root. `None` outside CI when it cannot be had.
fn faketime() -> Option<PathBuf> {
    let find = || {
        [
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/faketime/libfaketime.so.1",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
    };
    if let Some(found) = find() {
        return Some(found);
    }
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg("[ \"$(id -u)\" = 0 ] && flock /tmp/hosted-apt.lock sh -c 'apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfaketime'")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let found = find();
    assert!(
        found.is_some() || !hosted_pg_harness::in_ci(),
        "libfaketime is needed to skew a replica's clock, and could not be installed"
    );
    if found.is_none() {
        eprintln!("skipping the skewed replica: libfaketime is not installed");
    }
    found
}

/// Contract 8.
pub async fn three_replicas_run_each_tick_of_a_once_per_cluster_schedule_exactly_once<S: Store>() {
    let Some(store) = S::fresh("ticks", Tuning::default()).await else {
        return;
    };
    let settings = store.settings();
    let record = Work::taking(10).env("RECORD_TICKS", "1");
    let mut workers = vec![
        Worker::spawn(&store, &settings, &record),
        Worker::spawn(&store, &settings, &record),
    ];
    // The third replica's wall clock runs 5 s ahead (or, without libfaketime, it is not skewed).
    let skewed = faketime().map_or_else(
        || record.clone(),
        |library| {
            record
                .clone()
                .env("LD_PRELOAD", library.display().to_string())
                .env("FAKETIME", "+5s")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        },
    );
    workers.push(Worker::spawn(&store, &settings, &skewed));
    assert!(
        eventually(Duration::from_secs(30), || async {
            store.tick_runs().await.len() >= 70
        })
        .await,
        "{}",
        workers[0].log()
    );
    let rows = store.tick_runs().await;
    for pair in rows.windows(2) {
        assert_ne!(pair[0].0, pair[1].0, "tick {} ran twice", pair[0].0);
        assert_eq!(
            pair[0].0 + 1,
            pair[1].0,
            "a tick was lost after {}",
            pair[0].0
        );
    }
    // 60 consecutive ticks, all there and each once, whichever replica ran it.
    let window = &rows[5..65];
    assert_eq!(window.len(), 60);
    assert_eq!(window[59].0 - window[0].0, 59);
    for worker in workers {
        let (status, log) = worker.terminate().await;
        assert!(status.success(), "{log}");
    }
}
