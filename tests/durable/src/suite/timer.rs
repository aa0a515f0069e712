//! Once-per-cluster timers in hosts of this process: ticks are the schedule's occurrences on
//! the store's clock, numbered alike on every replica; ticks missed while no replica ran are
//! skipped by default, or run at start within the `backfill` window.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::config::ConfigSources;
use hosted::di::RunContext;
use hosted::durable::cluster_timed;
use hosted::timer::TimerOptions;
use hosted::{Host, Tick};

use crate::store::{Store, Tuning};

const PERIOD: Duration = Duration::from_millis(200);

/// Runs `hosts` replicas of a once-per-cluster timer of `PERIOD` for a little over a second;
/// returns the numbers of the ticks they ran, sorted.
async fn run_for<S: Store>(store: &S, backfill: Option<Duration>, hosts: usize) -> Vec<u64> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut running = Vec::new();
    for _ in 0..hosts {
        let configuration = ConfigSources::new()
            .toml("test.toml", store.settings().toml())
            .load()
            .expect("readable configuration");
        let seen = Arc::clone(&seen);
        let host = Host::builder()
            .add_service(cluster_timed(
                "app::tick",
                TimerOptions::every(PERIOD),
                backfill,
                move |cx: RunContext| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let tick = cx.resolve::<Tick>().await?;
                        seen.lock().unwrap().push(tick.number());
                        Ok::<(), hosted::BoxError>(())
                    }
                },
            ))
            .configuration(configuration)
            .build()
            .expect("a valid host")
            .start()
            .await
            .expect("started");
        running.push(host);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for host in running {
        assert!(host.stop().await.is_success());
    }
    let mut numbers = seen.lock().unwrap().clone();
    numbers.sort_unstable();
    numbers
}

/// The slot the store's clock is in now, after claiming, through the seam as an earlier
/// replica would have, the tick `ago` slots before it.
async fn seed_last_tick<S: Store>(store: &S, ago: i64) -> i64 {
    let backend = store.backend().await;
    let period = i64::try_from(PERIOD.as_micros()).unwrap();
    let slot = backend.clock_us().await.unwrap() / period;
    assert!(
        backend
            .claim_tick("app::tick", (slot - ago) * period)
            .await
            .unwrap()
    );
    slot
}

/// Contract 8.
pub async fn two_hosts_share_each_tick_and_number_them_alike<S: Store>() {
    let Some(store) = S::fresh("shared_ticks", Tuning::default()).await else {
        return;
    };
    let numbers = run_for(&store, None, 2).await;
    assert!(numbers.len() >= 3, "{numbers:?}");
    for pair in numbers.windows(2) {
        assert_eq!(
            pair[0] + 1,
            pair[1],
            "each tick once, none lost: {numbers:?}"
        );
    }
}

/// Contract 8: without `backfill`, what no replica ran is not run later.
pub async fn missed_ticks_are_skipped_by_default<S: Store>() {
    let Some(store) = S::fresh("skip_missed", Tuning::default()).await else {
        return;
    };
    let slot = seed_last_tick(&store, 20).await;
    let numbers = run_for(&store, None, 1).await;
    assert!(!numbers.is_empty());
    assert!(
        numbers[0] > u64::try_from(slot).unwrap(),
        "nothing before the start ran: {numbers:?} (start at slot {slot})"
    );
}

/// Contract 8: with `backfill`, the ticks missed within the window run at start, each once.
pub async fn missed_ticks_within_the_backfill_window_run_at_start<S: Store>() {
    let Some(store) = S::fresh("backfill", Tuning::default()).await else {
        return;
    };
    // 20 ticks missed; the window holds the last 5 of them (one second of 200 ms ticks).
    let slot = seed_last_tick(&store, 20).await;
    let numbers = run_for(&store, Some(Duration::from_secs(1)), 1).await;
    let slot = u64::try_from(slot).unwrap();
    let back_filled: Vec<u64> = numbers.iter().copied().filter(|n| *n <= slot).collect();
    assert!(
        (4..=6).contains(&back_filled.len()),
        "the ticks of the last second ran: {numbers:?} (start at slot {slot})"
    );
    assert!(
        back_filled.iter().all(|n| *n > slot - 7),
        "none older than the window: {numbers:?}"
    );
    for pair in numbers.windows(2) {
        assert_eq!(pair[0] + 1, pair[1], "once each, none lost: {numbers:?}");
    }
}
