//! The conformance suite at the process level: real worker processes (`durable-worker`) against
//! a real server, killed with SIGKILL, stopped with SIGTERM, stalled behind a paused TCP relay,
//! and left running across a `pg_ctl restart`. Every accepted job ends completed or dead, none
//! is lost, and with transactional completion each job's effect is recorded exactly once.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hosted::durable::{Backend as _, DurableConfig, PgBackend};
use hosted_durable_tests::{config, eventually};
use sqlx_core::query::query;
use sqlx_core::row::Row as _;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::Postgres;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn spawn(config: &DurableConfig, url: &str, work_ms: u64, random: bool) -> Self {
        Self::spawn_with(config, url, work_ms, random, &[])
    }

    /// As `spawn`, with more environment variables.
    fn spawn_with(
        config: &DurableConfig,
        url: &str,
        work_ms: u64,
        random: bool,
        env: &[(&str, String)],
    ) -> Self {
        let log = std::env::temp_dir().join(format!(
            "hosted-durable-worker-{}-{}.log",
            std::process::id(),
            fastrand::u64(..)
        ));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_durable-worker"))
            .arg("--host.shutdown_timeout=3s")
            .env("HOSTED_DURABLE__URL", url)
            .env("HOSTED_DURABLE__SCHEMA", &config.schema)
            .env("HOSTED_DURABLE__POOL_SIZE", "4")
            .env(
                "HOSTED_DURABLE__LEASE",
                format!("{}ms", config.lease.as_millis()),
            )
            .env("HOSTED_DURABLE__POLL_INTERVAL", "200ms")
            .env("HOSTED_DURABLE__SWEEP_INTERVAL", "200ms")
            .env("WORK_MS", work_ms.to_string())
            .env("WORK_RANDOM", if random { "1" } else { "0" })
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("the worker binary starts");
        Self { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status and the log.
    async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the worker exits within its budget")
            .expect("an exit status");
        (status, self.log())
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

async fn prepared(config: &DurableConfig) -> PgBackend {
    PgBackend::migrate(config).await.expect("migrated");
    let backend = PgBackend::connect(config).await.expect("connected");
    query::<Postgres>(AssertSqlSafe(format!(
        "CREATE TABLE \"{}\".effects (job bigint NOT NULL, n bigint NOT NULL, attempt int NOT NULL, pid int NOT NULL)",
        config.schema
    )))
    .execute(backend.pool())
    .await
    .expect("the effects table");
    query::<Postgres>(AssertSqlSafe(format!(
        "CREATE TABLE \"{}\".tick_runs (number bigint NOT NULL, pid int NOT NULL)",
        config.schema
    )))
    .execute(backend.pool())
    .await
    .expect("the tick_runs table");
    backend
}

async fn scalar(backend: &PgBackend, sql: String) -> i64 {
    query::<Postgres>(AssertSqlSafe(sql))
        .fetch_one(backend.pool())
        .await
        .map_or(-1, |row| row.get::<i64, _>(0))
}

async fn enqueue(backend: &PgBackend, from: i64, count: i64) {
    for n in from..from + count {
        backend
            .enqueue("work", &format!(r#"{{"n":{n}}}"#), 11)
            .await
            .expect("enqueued");
    }
}

/// Every job completed or dead, none waiting or running, and exactly one effect per completed
/// job (none for the others).
async fn assert_settled_exactly_once(backend: &PgBackend, schema: &str, jobs: i64) {
    let s = format!("\"{schema}\"");
    let total = scalar(backend, format!("SELECT count(*) FROM {s}.jobs")).await;
    assert_eq!(total, jobs, "every accepted job is still there");
    let open = scalar(
        backend,
        format!("SELECT count(*) FROM {s}.jobs WHERE state NOT IN ('completed', 'dead')"),
    )
    .await;
    assert_eq!(open, 0, "none lost: every job ended completed or dead");
    let twice = scalar(
        backend,
        format!(
            "SELECT count(*) FROM (SELECT job FROM {s}.effects GROUP BY job HAVING count(*) > 1) t"
        ),
    )
    .await;
    assert_eq!(twice, 0, "no effect recorded twice");
    let missing = scalar(
        backend,
        format!(
            "SELECT count(*) FROM {s}.jobs j WHERE j.state = 'completed' \
             AND NOT EXISTS (SELECT 1 FROM {s}.effects e WHERE e.job = j.id)"
        ),
    )
    .await;
    assert_eq!(missing, 0, "every completed job has its effect");
    let orphan = scalar(
        backend,
        format!(
            "SELECT count(*) FROM {s}.effects e WHERE NOT EXISTS \
             (SELECT 1 FROM {s}.jobs j WHERE j.id = e.job AND j.state = 'completed')"
        ),
    )
    .await;
    assert_eq!(orphan, 0, "no effect without its completion");
}

async fn all_finished(backend: &PgBackend, schema: &str, jobs: i64) -> bool {
    scalar(
        backend,
        format!("SELECT count(*) FROM \"{schema}\".jobs WHERE state IN ('completed', 'dead')"),
    )
    .await
        == jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_of_three_workers_mid_job_loses_nothing_and_records_each_effect_once() {
    let Some(mut config) = config("kill9") else {
        return;
    };
    config.lease = Duration::from_millis(1500);
    let backend = prepared(&config).await;
    let url = config.url.expose().to_owned();
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::spawn(&config, &url, 150, true))
        .collect();
    let trials = 20;
    let per_trial = 15;
    for trial in 0..trials {
        enqueue(&backend, trial * per_trial, per_trial).await;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(50..400))).await;
        let victim = workers.remove(fastrand::usize(..workers.len()));
        victim.kill9().await;
        workers.push(Worker::spawn(&config, &url, 150, true));
    }
    let jobs = trials * per_trial;
    assert!(
        eventually(Duration::from_mins(1), || all_finished(
            &backend,
            &config.schema,
            jobs
        ))
        .await,
        "the jobs of the killed workers were rescued and finished"
    );
    for worker in &mut workers {
        assert!(worker.is_running(), "{}", worker.log());
    }
    assert_settled_exactly_once(&backend, &config.schema, jobs).await;
    let rescued = scalar(
        &backend,
        format!(
            "SELECT count(*) FROM \"{}\".jobs WHERE attempt > 1",
            config.schema
        ),
    )
    .await;
    assert!(
        rescued > 0,
        "some jobs were cut off by a kill and run again"
    );
    for worker in workers {
        let (status, log) = worker.terminate().await;
        assert!(status.success(), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_within_budget_and_releases_unfinished_leases_at_once() {
    let Some(mut config) = config("sigterm") else {
        return;
    };
    // A lease far longer than the test: another worker gets the jobs only through the release.
    config.lease = Duration::from_mins(2);
    let backend = prepared(&config).await;
    let url = config.url.expose().to_owned();
    let slow = Worker::spawn(&config, &url, 60_000, false);
    enqueue(&backend, 0, 4).await;
    let running = format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE state = 'running'",
        config.schema
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            scalar(&backend, running.clone()).await == 4
        })
        .await,
        "{}",
        slow.log()
    );
    let started = tokio::time::Instant::now();
    let (status, log) = slow.terminate().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "within the 3 s budget"
    );
    assert!(log.contains("durable queue stopped"), "{log}");
    assert!(
        log.contains("claimed=4") && log.contains("released=4"),
        "the final line accounts for every job claimed: {log}"
    );
    let _ = status;
    let waiting = format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE state = 'available' AND attempt = 0",
        config.schema
    );
    assert_eq!(
        scalar(&backend, waiting).await,
        4,
        "released, the attempt not counted"
    );
    let fast = Worker::spawn(&config, &url, 10, false);
    assert!(
        eventually(Duration::from_secs(20), || all_finished(
            &backend,
            &config.schema,
            4
        ))
        .await,
        "another worker took them without waiting for the 120 s lease: {}",
        fast.log()
    );
    assert_settled_exactly_once(&backend, &config.schema, 4).await;
    let first_attempts = format!(
        "SELECT count(*) FROM \"{}\".effects WHERE attempt = 1",
        config.schema
    );
    assert_eq!(scalar(&backend, first_attempts).await, 4);
    let (status, log) = fast.terminate().await;
    assert!(status.success(), "{log}");
}

/// A TCP relay that can stop passing bytes, both ways, without closing anything: a live but
/// stalled connection.
struct Relay {
    port: u16,
    paused: Arc<AtomicBool>,
}

impl Relay {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let paused = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&paused);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pipe(client_read, server_write, Arc::clone(&flag)));
                tokio::spawn(pipe(server_read, client_write, Arc::clone(&flag)));
            }
        });
        Self { port, paused }
    }

    fn pause(&self, on: bool) {
        self.paused.store(on, Ordering::SeqCst);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    paused: Arc<AtomicBool>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        while paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_past_its_lease_has_its_stale_completion_rejected() {
    let Some(mut config) = config("stalled") else {
        return;
    };
    config.lease = Duration::from_secs(1);
    let backend = prepared(&config).await;
    let direct = config.url.expose().to_owned();
    let port = direct
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|port| port.parse::<u16>().ok())
        .expect("a URL with a port");
    let relay = Relay::start(port).await;
    let relayed = direct.replace(&format!(":{port}/"), &format!(":{}/", relay.port));
    let stalled = Worker::spawn(&config, &relayed, 500, false);
    enqueue(&backend, 0, 1).await;
    let running = format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE state = 'running'",
        config.schema
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            scalar(&backend, running.clone()).await == 1
        })
        .await,
        "{}",
        stalled.log()
    );
    relay.pause(true);
    let rescuer = Worker::spawn(&config, &direct, 10, false);
    assert!(
        eventually(Duration::from_secs(20), || all_finished(
            &backend,
            &config.schema,
            1
        ))
        .await,
        "the live worker's lease expired and another worker completed the job: {}",
        rescuer.log()
    );
    // Longer than the lease in all.
    tokio::time::sleep(Duration::from_millis(500)).await;
    relay.pause(false);
    let log_of_stalled = || stalled.log();
    assert!(
        eventually(Duration::from_secs(20), || async {
            log_of_stalled().contains("the result was rejected")
        })
        .await,
        "the stale attempt's completion was rejected and reported: {}",
        stalled.log()
    );
    assert_settled_exactly_once(&backend, &config.schema, 1).await;
    let by = scalar(
        &backend,
        format!("SELECT pid::bigint FROM \"{}\".effects", config.schema),
    )
    .await;
    assert_eq!(
        by,
        i64::from(rescuer.pid()),
        "the effect is the rescuer's alone"
    );
    let (status, log) = stalled.terminate().await;
    assert!(status.success(), "{log}");
    let (status, log) = rescuer.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_run_loses_nothing_and_completes_nothing_twice() {
    if hosted_pg_harness::server().is_none() {
        return;
    }
    let server = hosted_pg_harness::Server::own().expect("a cluster of this test's own");
    let cluster = server.cluster().expect("started here");
    let mut config = DurableConfig::new(server.url()).unwrap();
    config.schema = server.schema("restart");
    config.lease = Duration::from_secs(2);
    let backend = prepared(&config).await;
    let url = config.url.expose().to_owned();
    let mut workers: Vec<Worker> = (0..2)
        .map(|_| Worker::spawn(&config, &url, 60, true))
        .collect();
    let jobs = 300;
    enqueue(&backend, 0, jobs).await;
    let done = format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE state = 'completed'",
        config.schema
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            scalar(&backend, done.clone()).await > 10
        })
        .await
    );
    cluster.restart().expect("pg_ctl restart");
    // The test's own pool reconnects too; the restart came mid-run.
    let after = loop {
        let count = scalar(&backend, done.clone()).await;
        if count >= 0 {
            break count;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(after < jobs, "the restart came before the end of the run");
    assert!(
        eventually(Duration::from_secs(90), || all_finished(
            &backend,
            &config.schema,
            jobs
        ))
        .await,
        "{}",
        workers[0].log()
    );
    for worker in &mut workers {
        assert!(worker.is_running(), "the host survives: {}", worker.log());
    }
    assert_settled_exactly_once(&backend, &config.schema, jobs).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_each_tick_of_a_once_per_cluster_schedule_exactly_once() {
    let Some(config) = config("ticks") else {
        return;
    };
    let backend = prepared(&config).await;
    let url = config.url.expose().to_owned();
    let record = ("RECORD_TICKS", "1".to_owned());
    let mut workers = vec![
        Worker::spawn_with(&config, &url, 10, false, std::slice::from_ref(&record)),
        Worker::spawn_with(&config, &url, 10, false, std::slice::from_ref(&record)),
    ];
    // The third replica's wall clock runs 5 s ahead (or, without libfaketime, it is not skewed).
    let skewed = faketime().map(|library| {
        vec![
            record.clone(),
            ("LD_PRELOAD", library.display().to_string()),
            ("FAKETIME", "+5s".to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ]
    });
    workers.push(Worker::spawn_with(
        &config,
        &url,
        10,
        false,
        skewed.as_deref().unwrap_or(std::slice::from_ref(&record)),
    ));
    let runs = format!("SELECT count(*) FROM \"{}\".tick_runs", config.schema);
    assert!(
        eventually(Duration::from_secs(30), || async {
            scalar(&backend, runs.clone()).await >= 70
        })
        .await,
        "{}",
        workers[0].log()
    );
    let rows: Vec<(i64, i32)> = query::<Postgres>(AssertSqlSafe(format!(
        "SELECT number, pid FROM \"{}\".tick_runs ORDER BY number",
        config.schema
    )))
    .fetch_all(backend.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
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

#[test]
fn a_url_that_is_not_postgres_stops_the_start_with_its_key_and_source() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_durable-worker"))
        .env("HOSTED_DURABLE__URL", "mysql://app:hunter2@db/app")
        .env("NO_COLOR", "1")
        .output()
        .expect("the worker runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(78), "{text}");
    assert!(text.contains("durable.url"), "{text}");
    assert!(text.contains("HOSTED_DURABLE__URL"), "{text}");
    assert!(text.contains("expected a PostgreSQL URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn list_masks_the_database_url() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_durable-worker"))
        .arg("--list")
        .env("HOSTED_DURABLE__URL", "postgres://app:hunter2@db/app")
        .env("NO_COLOR", "1")
        .output()
        .expect("the worker runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("durable.url"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn check_reports_a_bad_url_with_exit_78() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_durable-worker"))
        .arg("--check")
        .env(
            "HOSTED_DURABLE__URL",
            "postgres://app:hunter2@db:notaport/app",
        )
        .env("NO_COLOR", "1")
        .output()
        .expect("the worker runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(78), "{text}");
    assert!(text.contains("durable.url"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
