//! A worker process for the process-level durable tests: one durable queue whose handler waits
//! `WORK_MS` (a random part of it, with `WORK_RANDOM=1`), then records its effect in
//! `<schema>.effects` through the job's transaction, so each completed job has exactly one row.
//! It marks the start and the end of each job on stderr (`worker::started`, `worker::ended`).
//! With `NOOP=1` the handler does nothing (for the benchmark). With `RECORD_TICKS=1` a once-per-cluster timer records each tick it runs in
//! `<schema>.tick_runs`. The store comes from `HOSTED_DURABLE__*`, like any deployment's.

use std::time::Duration;

use hosted::durable::{DurableConfig, Job, JobTransaction};
use hosted::{CancellationToken, Config};
use serde::{Deserialize, Serialize};
use sqlx_core::query::query;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::Postgres;

/// One unit of work.
#[derive(Serialize, Deserialize)]
struct Work {
    n: i64,
}

fn work_time() -> Duration {
    let ms: u64 = std::env::var("WORK_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(20);
    if std::env::var("WORK_RANDOM").is_ok_and(|on| on == "1") {
        Duration::from_millis(fastrand::u64(0..=ms))
    } else {
        Duration::from_millis(ms)
    }
}

#[hosted::queued(
    durable,
    name = "work",
    workers = 4,
    retries = 10,
    retry_backoff = "50ms",
    retry_max_backoff = "200ms"
)]
async fn work(
    item: Work,
    job: Job,
    tx: JobTransaction,
    config: Config<DurableConfig>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    if std::env::var("NOOP").is_ok_and(|on| on == "1") {
        return Ok(());
    }
    // Read by the kill test, which picks a victim holding a job.
    eprintln!("{}", hosted_durable_tests::worker::started(job.id()));
    tokio::select! {
        () = tokio::time::sleep(work_time()) => {}
        () = stop.cancelled() => anyhow::bail!("cancelled by the stop"),
    }
    let mut connection = tx.connection().await?;
    hosted_durable_tests::postgres::insert_effect(&mut connection, &config.schema, &job, item.n)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    eprintln!("{}", hosted_durable_tests::worker::ended(job.id()));
    Ok(())
}

/// With `RECORD_TICKS=1`, records each tick it runs in `<schema>.tick_runs`.
#[hosted::timed(every = "100ms", once_per_cluster, name = "ticker")]
async fn ticker(
    tick: hosted::Tick,
    config: Config<DurableConfig>,
    queue: hosted::Queue<Work>,
) -> anyhow::Result<()> {
    if std::env::var("RECORD_TICKS").is_ok_and(|on| on == "1") {
        let backend = queue.durable_backend().expect("a durable queue");
        query::<Postgres>(AssertSqlSafe(format!(
            "INSERT INTO \"{}\".tick_runs (number, pid) VALUES ($1, $2)",
            config.schema
        )))
        .bind(i64::try_from(tick.number())?)
        .bind(i32::try_from(std::process::id())?)
        .execute(backend.pool())
        .await?;
    }
    Ok(())
}

fn main() {
    hosted::run!();
}
