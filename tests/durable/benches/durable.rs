//! Durable queues against a hand-written minimal `SKIP LOCKED` loop with the same lease
//! columns, in one run, on a throwaway PostgreSQL server on the same machine.
//!
//! * Throughput: 20,000 no-op jobs, enqueued beforehand, drained by one and by three worker
//!   processes (`durable-worker` with `NOOP=1`, 8 workers each), against the hand-written loop
//!   with as many concurrent claimers (one connection each). Jobs per second between the first
//!   and the last completion, read from the rows.
//! * Latency: 300 jobs enqueued one by one, 10 ms apart, into an idle in-process durable queue;
//!   enqueue-to-start p50 and p99, woken by `LISTEN`/`NOTIFY` and by polling only (1 s), beside
//!   the hand-written loop polling every 1 s.
//!
//! ```sh
//! cargo bench -p hosted-durable-tests --bench durable
//! cargo bench -p hosted-durable-tests --bench durable -- one   # one process's throughput only
//! ```
//!
//! Each round prints its figures and the load average (`/proc/loadavg`) when it ended, since
//! the machine may be shared, and what each job cost, which that load does not move: the
//! database's transactions per job (`pg_stat_database.xact_commit`; a statement outside a
//! transaction is one, so this counts the round trips that commit) and the client's CPU time
//! per job (the worker processes', or the benchmark's own for the hand-written loop).

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "figures for a report: counts far below 2^52, indices of a few hundred samples"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hosted::Host;
use hosted::config::ConfigSources;
use hosted::di::RunContext;
use hosted::durable::{Backend as _, DurableConfig, Job, PgBackend, durable_queued};
use hosted::queue::QueueOptions;
use sqlx_core::pool::PoolOptions;
use sqlx_core::query::query;
use sqlx_core::row::Row as _;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgPool, Postgres};

const JOBS: i64 = 20_000;
const WORKERS_PER_PROCESS: usize = 8;
const LATENCY_JOBS: usize = 300;

fn config(url: &str, schema: &str) -> DurableConfig {
    let mut config = DurableConfig::new(url).unwrap();
    schema.clone_into(&mut config.schema);
    config.pool_size = 10;
    config
}

async fn fill(config: &DurableConfig) -> PgPool {
    PgBackend::migrate(config).await.unwrap();
    let pool = PoolOptions::<Postgres>::new()
        .max_connections(32)
        .connect(config.url.expose())
        .await
        .unwrap();
    query::<Postgres>(AssertSqlSafe(format!(
        "INSERT INTO \"{}\".jobs (queue, payload, max_attempts) \
         SELECT 'work', jsonb_build_object('n', n), 1 FROM generate_series(1, $1) n",
        config.schema
    )))
    .bind(JOBS)
    .execute(&pool)
    .await
    .unwrap();
    pool
}

async fn rate(pool: &PgPool, schema: &str) -> f64 {
    let row = query::<Postgres>(AssertSqlSafe(format!(
        "SELECT count(*), extract(epoch FROM max(finished_at) - min(finished_at))::float8 \
         FROM \"{schema}\".jobs WHERE state = 'completed'"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    let count: i64 = row.get(0);
    let seconds: f64 = row.get(1);
    count as f64 / seconds
}

/// Waits until every job is completed; returns how many statements it took to see it.
async fn wait_done(pool: &PgPool, schema: &str) -> i64 {
    let mut polls = 0;
    loop {
        polls += 1;
        let open: i64 = query::<Postgres>(AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{schema}\".jobs WHERE state <> 'completed'"
        )))
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0);
        if open == 0 {
            return polls;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One round's figures: jobs per second, and what each job cost, which the load of a shared
/// machine does not move: the database's transactions (each statement outside a transaction
/// is one: a round trip and a commit) and the client's CPU time.
struct Round {
    rate: f64,
    transactions_per_job: f64,
    cpu_us_per_job: f64,
}

/// The transactions the database has committed so far (`pg_stat_database`), on a connection of
/// its own, once the backends that ran the round have exited and reported theirs.
async fn committed(url: &str) -> i64 {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pool = PoolOptions::<Postgres>::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let count = query::<Postgres>(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    pool.close().await;
    count
}

/// The CPU time (user and system) of process `pid` so far, in microseconds, from
/// `/proc/<pid>/stat` (in clock ticks of 10 ms, Linux's `USER_HZ`).
fn cpu_us(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0, utime field 11, stime field 12.
    (ticks(11) + ticks(12)) * 10_000.0
}

async fn hosted_throughput(url: &str, processes: usize, round: usize) -> Round {
    let schema = format!("bench_hosted_{processes}_{round}");
    let config = config(url, &schema);
    let pool = fill(&config).await;
    pool.close().await;
    let before = committed(url).await;
    let pool = PoolOptions::<Postgres>::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_durable-worker"))
                .env("HOSTED_DURABLE__URL", url)
                .env("HOSTED_DURABLE__SCHEMA", &schema)
                .env(
                    "HOSTED_DURABLE__POOL_SIZE",
                    (2 * WORKERS_PER_PROCESS).to_string(),
                )
                .env(
                    "HOSTED_SERVICES__WORK__WORKERS",
                    WORKERS_PER_PROCESS.to_string(),
                )
                .env("NOOP", "1")
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        })
        .collect();
    let polls = wait_done(&pool, &schema).await;
    let cpu: f64 = children
        .iter()
        .filter_map(tokio::process::Child::id)
        .map(|pid| cpu_us(&pid.to_string()))
        .sum();
    drop(children);
    let rate = rate(&pool, &schema).await;
    pool.close().await;
    // Less the benchmark's own: its polls, `rate`'s and the first reading's.
    let transactions = committed(url).await - before - polls - 2;
    Round {
        rate,
        transactions_per_job: transactions as f64 / JOBS as f64,
        cpu_us_per_job: cpu / JOBS as f64,
    }
}

/// The hand-written loop: claim one job with `SKIP LOCKED` and a lease, complete it.
async fn manual_throughput(url: &str, claimers: usize, round: usize) -> Round {
    let schema = format!("bench_manual_{claimers}_{round}");
    let config = config(url, &schema);
    let pool = fill(&config).await;
    pool.close().await;
    let before = committed(url).await;
    let pool = PoolOptions::<Postgres>::new()
        .max_connections(32)
        .connect(url)
        .await
        .unwrap();
    let cpu_before = cpu_us("self");
    let claim = format!(
        "UPDATE \"{schema}\".jobs SET state = 'running', attempt = attempt + 1, claim = claim + 1, \
           lease_owner = 'manual', lease_expires_at = now() + interval '30 seconds' \
         WHERE id = (SELECT id FROM \"{schema}\".jobs WHERE state = 'available' AND queue = 'work' \
           AND run_at <= now() ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, claim"
    );
    let complete = format!(
        "UPDATE \"{schema}\".jobs SET state = 'completed', finished_at = now(), lease_owner = NULL, \
           lease_expires_at = NULL WHERE id = $1 AND claim = $2 AND state = 'running'"
    );
    let tasks: Vec<_> = (0..claimers)
        .map(|_| {
            let (pool, claim, complete) = (pool.clone(), claim.clone(), complete.clone());
            tokio::spawn(async move {
                loop {
                    let Some(row) = query::<Postgres>(AssertSqlSafe(claim.clone()))
                        .fetch_optional(&pool)
                        .await
                        .unwrap()
                    else {
                        return;
                    };
                    let (id, claim): (i64, i64) = (row.get(0), row.get(1));
                    query::<Postgres>(AssertSqlSafe(complete.clone()))
                        .bind(id)
                        .bind(claim)
                        .execute(&pool)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let cpu = cpu_us("self") - cpu_before;
    let rate = rate(&pool, &schema).await;
    pool.close().await;
    // Less the benchmark's own: `rate`'s and the first reading's.
    let transactions = committed(url).await - before - 2;
    Round {
        rate,
        transactions_per_job: transactions as f64 / JOBS as f64,
        cpu_us_per_job: cpu / JOBS as f64,
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.50), at(0.99))
}

async fn hosted_latency(url: &str, listen: bool) -> (Duration, Duration) {
    let schema = format!("bench_latency_{listen}");
    let mut config = config(url, &schema);
    config.listen = listen;
    PgBackend::migrate(&config).await.unwrap();
    let started: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let toml = format!(
        "[durable]\nurl = \"{url}\"\nschema = \"{schema}\"\nlisten = {listen}\npoll_interval = \"1s\"\n"
    );
    let host = Host::builder()
        .add_service(durable_queued(
            "work",
            QueueOptions::new(1).with_workers(4),
            {
                let started = Arc::clone(&started);
                move |_: serde_json::Value, cx: RunContext| {
                    let started = Arc::clone(&started);
                    async move {
                        let job = cx.resolve::<Job>().await?;
                        started.lock().unwrap().push((job.id(), Instant::now()));
                        Ok::<(), hosted::BoxError>(())
                    }
                }
            },
        ))
        .configuration(
            ConfigSources::new()
                .toml("bench.toml", toml)
                .load()
                .unwrap(),
        )
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let backend = PgBackend::connect(&config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent = Vec::new();
    for n in 0..LATENCY_JOBS {
        let at = Instant::now();
        let id = backend.enqueue("work", &n.to_string(), 1).await.unwrap();
        sent.push((id, at));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while started.lock().unwrap().len() < LATENCY_JOBS {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = host.stop().await;
    let started: std::collections::HashMap<i64, Instant> =
        started.lock().unwrap().iter().copied().collect();
    percentiles(
        sent.iter()
            .map(|(id, at)| started[id].duration_since(*at))
            .collect(),
    )
}

async fn manual_latency(url: &str) -> (Duration, Duration) {
    let schema = "bench_latency_manual";
    let config = config(url, schema);
    PgBackend::migrate(&config).await.unwrap();
    let pool = PoolOptions::<Postgres>::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap();
    let claim = format!(
        "UPDATE \"{schema}\".jobs SET state = 'running', attempt = attempt + 1, claim = claim + 1, \
           lease_owner = 'manual', lease_expires_at = now() + interval '30 seconds' \
         WHERE id = (SELECT id FROM \"{schema}\".jobs WHERE state = 'available' AND queue = 'work' \
           AND run_at <= now() ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id"
    );
    let started: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let poller = tokio::spawn({
        let (pool, started) = (pool.clone(), Arc::clone(&started));
        async move {
            loop {
                match query::<Postgres>(AssertSqlSafe(claim.clone()))
                    .fetch_optional(&pool)
                    .await
                    .unwrap()
                {
                    Some(row) => started.lock().unwrap().push((row.get(0), Instant::now())),
                    None => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        }
    });
    let backend = PgBackend::connect(&config).await.unwrap();
    let mut sent = Vec::new();
    for n in 0..LATENCY_JOBS {
        let at = Instant::now();
        let id = backend.enqueue("work", &n.to_string(), 1).await.unwrap();
        sent.push((id, at));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while started.lock().unwrap().len() < LATENCY_JOBS {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    poller.abort();
    let started: std::collections::HashMap<i64, Instant> =
        started.lock().unwrap().iter().copied().collect();
    percentiles(
        sent.iter()
            .map(|(id, at)| started[id].duration_since(*at))
            .collect(),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The 1-minute load average, for the figures taken on a shared machine.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn main() {
    let one_only = std::env::args().skip(1).any(|arg| arg == "one");
    let server = hosted_pg_harness::Server::own().expect("a PostgreSQL server for the benchmark");
    let url = server.url().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("durable queue throughput, {JOBS} no-op jobs (median of 3 rounds, alternating)");
        for processes in if one_only { vec![1] } else { vec![1, 3] } {
            let claimers = processes * WORKERS_PER_PROCESS;
            let (mut hosted, mut manual) = (Vec::new(), Vec::new());
            for round in 0..3 {
                let ours = hosted_throughput(&url, processes, round).await;
                let hosted_load = load();
                let theirs = manual_throughput(&url, claimers, round).await;
                println!(
                    "    round {round}: hosted {:.0} jobs/s (load {hosted_load}; per job {:.2} \
                     transactions, {:.1} µs of CPU), hand-written {:.0} jobs/s (load {}; per job \
                     {:.2} transactions, {:.1} µs of CPU)",
                    ours.rate,
                    ours.transactions_per_job,
                    ours.cpu_us_per_job,
                    theirs.rate,
                    load(),
                    theirs.transactions_per_job,
                    theirs.cpu_us_per_job,
                );
                hosted.push(ours.rate);
                manual.push(theirs.rate);
            }
            let (hosted, manual) = (median(hosted), median(manual));
            println!(
                "  {processes} process(es) x {WORKERS_PER_PROCESS} workers: hosted {hosted:.0} jobs/s, \
                 hand-written SKIP LOCKED loop ({claimers} claimers) {manual:.0} jobs/s, ratio {:.2}",
                hosted / manual
            );
        }
        if one_only {
            return;
        }
        println!("enqueue-to-start latency, {LATENCY_JOBS} jobs 10 ms apart into an idle queue");
        for listen in [true, false] {
            let (p50, p99) = hosted_latency(&url, listen).await;
            println!(
                "  hosted, {}: p50 {p50:.2?}, p99 {p99:.2?}",
                if listen { "LISTEN/NOTIFY" } else { "polling only (1 s)" }
            );
        }
        let (p50, p99) = manual_latency(&url).await;
        println!("  hand-written loop, polling (1 s): p50 {p50:.2?}, p99 {p99:.2?}");
    });
}
