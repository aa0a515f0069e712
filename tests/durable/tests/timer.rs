//! Once-per-cluster timers in a host: ticks are the schedule's occurrences on the database's
//! clock, numbered alike on every replica; ticks missed while no replica ran are skipped by
//! default, or run at start within the `backfill` window.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::config::ConfigSources;
use hosted::di::RunContext;
use hosted::durable::{DurableConfig, PgBackend, cluster_timed};
use hosted::timer::TimerOptions;
use hosted::{Host, Tick};
use hosted_durable_tests::{config, toml};
use sqlx_core::query::query;
use sqlx_core::row::Row as _;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::Postgres;

const PERIOD: Duration = Duration::from_millis(200);

async fn run_for(config: &DurableConfig, backfill: Option<Duration>, hosts: usize) -> Vec<u64> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut running = Vec::new();
    for _ in 0..hosts {
        let configuration = ConfigSources::new()
            .toml("test.toml", toml(config))
            .load()
            .unwrap();
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
            .unwrap()
            .start()
            .await
            .unwrap();
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

/// The slot number the database's clock is in now, and a tick claimed `ago` slots before it.
async fn seed_last_tick(config: &DurableConfig, ago: i64) -> i64 {
    PgBackend::migrate(config).await.unwrap();
    let backend = PgBackend::connect(config).await.unwrap();
    let now_us: i64 =
        query::<Postgres>("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
            .fetch_one(backend.pool())
            .await
            .unwrap()
            .get(0);
    let period = i64::try_from(PERIOD.as_micros()).unwrap();
    let slot = now_us / period;
    query::<Postgres>(AssertSqlSafe(format!(
        "INSERT INTO \"{}\".ticks (schedule, due_us, run_by) VALUES ('app::tick', $1, 'earlier')",
        config.schema
    )))
    .bind((slot - ago) * period)
    .execute(backend.pool())
    .await
    .unwrap();
    slot
}

#[tokio::test]
async fn two_hosts_share_each_tick_and_number_them_alike() {
    let Some(config) = config("shared_ticks") else {
        return;
    };
    let numbers = run_for(&config, None, 2).await;
    assert!(numbers.len() >= 3, "{numbers:?}");
    for pair in numbers.windows(2) {
        assert_eq!(
            pair[0] + 1,
            pair[1],
            "each tick once, none lost: {numbers:?}"
        );
    }
}

#[tokio::test]
async fn missed_ticks_are_skipped_by_default() {
    let Some(config) = config("skip_missed") else {
        return;
    };
    let slot = seed_last_tick(&config, 20).await;
    let numbers = run_for(&config, None, 1).await;
    assert!(!numbers.is_empty());
    assert!(
        numbers[0] > u64::try_from(slot).unwrap(),
        "nothing before the start ran: {numbers:?} (start at slot {slot})"
    );
}

#[tokio::test]
async fn missed_ticks_within_the_backfill_window_run_at_start() {
    let Some(config) = config("backfill") else {
        return;
    };
    // 20 ticks missed; the window holds the last 5 of them (one second of 200 ms ticks).
    let slot = seed_last_tick(&config, 20).await;
    let numbers = run_for(&config, Some(Duration::from_secs(1)), 1).await;
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
