//! Runs two replicas of the durable grace-period manager against one PostgreSQL database (the
//! harness's throwaway server, or `HOSTED_TEST_DATABASE_URL`): every order past its grace period
//! is confirmed once, with exactly one event enqueued in the same transaction; every event is
//! published at least once, also when the replica holding it is killed; orders still in their
//! grace period, or cancelled, are left alone.

use std::time::{Duration, Instant};

use hosted_tests::process::{HANG, Process};
use sqlx_core::pool::PoolOptions;
use sqlx_core::query::query;
use sqlx_core::row::Row as _;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgPool, Postgres};

static DATABASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct Database {
    runtime: tokio::runtime::Runtime,
    pool: PgPool,
    url: String,
}

impl Database {
    /// A database of this test's own on the harness's server.
    fn create(server: &hosted_pg_harness::Server) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let n = DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("grace_{}_{n}", std::process::id());
        let (url, pool) = runtime.block_on(async {
            let admin: PgPool = PoolOptions::<Postgres>::new()
                .max_connections(1)
                .connect(server.url())
                .await
                .expect("the harness's server");
            query::<Postgres>(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let (base, _) = server.url().rsplit_once('/').unwrap();
            let url = format!("{base}/{name}");
            let pool = PoolOptions::<Postgres>::new()
                .max_connections(2)
                .connect(&url)
                .await
                .unwrap();
            (url, pool)
        });
        Self { runtime, pool, url }
    }

    fn execute(&self, sql: &str) {
        self.runtime
            .block_on(query::<Postgres>(AssertSqlSafe(sql.to_owned())).execute(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    fn pairs(&self, sql: &str) -> Vec<(i64, String)> {
        self.runtime
            .block_on(query::<Postgres>(AssertSqlSafe(sql.to_owned())).fetch_all(&self.pool))
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }

    fn numbers(&self, sql: &str) -> Vec<i64> {
        self.runtime
            .block_on(query::<Postgres>(AssertSqlSafe(sql.to_owned())).fetch_all(&self.pool))
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }
}

fn replica(url: &str) -> Process {
    let mut command = Process::command(env!("CARGO_BIN_EXE_grace_period_durable"));
    command
        .env("HOSTED_DURABLE__URL", url)
        .env("HOSTED_DURABLE__LEASE", "2s")
        .env("HOSTED_DURABLE__SWEEP_INTERVAL", "200ms")
        .env("HOSTED_DURABLE__POLL_INTERVAL", "200ms")
        .env("HOSTED_GRACE_PERIOD__SECONDS", "60")
        .env("RUST_LOG", "info");
    Process::start(command)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_replicas_confirm_each_order_once_and_publish_each_event_at_least_once() {
    let Some(server) = hosted_pg_harness::server() else {
        return;
    };
    let database = Database::create(server);
    database.execute(
        "CREATE TABLE orders (
             id bigserial PRIMARY KEY,
             placed_at timestamptz NOT NULL DEFAULT now(),
             status text NOT NULL DEFAULT 'submitted',
             confirmed_at timestamptz
         )",
    );
    // 1-3 ended long ago, 4-5 have just begun, 6 ends about 3 s into the run, 7 was cancelled.
    database.execute(
        "INSERT INTO orders (placed_at, status) VALUES
             (now() - interval '1 hour', 'submitted'),
             (now() - interval '2 minutes', 'submitted'),
             (now() - interval '61 seconds', 'submitted'),
             (now(), 'submitted'),
             (now(), 'submitted'),
             (now() - interval '57 seconds', 'submitted'),
             (now() - interval '1 hour', 'cancelled')",
    );
    let a = replica(&database.url);
    let mut b = replica(&database.url);
    let published = "SELECT DISTINCT order_id FROM published_events ORDER BY order_id";
    wait_until("orders 1-3 are published", || {
        database.numbers("SELECT count(*) FROM pg_tables WHERE tablename = 'published_events'")
            == [1]
            && database.numbers(published) == [1, 2, 3]
    });
    // One replica dies; the other goes on alone, and publishes order 6 when its period ends.
    let mut a = a;
    a.kill();
    wait_until("order 6 is published", || {
        database.numbers(published) == [1, 2, 3, 6]
    });
    b.signal("TERM");
    assert_eq!(b.wait_exit(HANG), 0, "{}", b.transcript());

    assert_eq!(
        database.pairs("SELECT id, status FROM orders ORDER BY id"),
        [
            (1, "confirmed"),
            (2, "confirmed"),
            (3, "confirmed"),
            (4, "submitted"),
            (5, "submitted"),
            (6, "confirmed"),
            (7, "cancelled"),
        ]
        .map(|(id, status)| (id, status.to_owned()))
    );
    assert_eq!(
        database.numbers("SELECT count(*) FROM hosted.jobs"),
        [4],
        "one event enqueued per confirmed order, with its confirmation"
    );
    assert_eq!(
        database.numbers("SELECT count(*) FROM hosted.jobs WHERE state <> 'completed'"),
        [0],
        "every event published"
    );
    b.assert_no_log_line(&["application stopped after failures"]);
}

/// As `scripts/durable-example.sh` runs it, `2>&1 | sed …`, and the `sed` is killed: the replica
/// still stops on SIGTERM, with exit 0 (what it has to log goes nowhere, and nothing panics).
#[test]
fn a_replica_whose_output_pipe_is_gone_still_stops_on_sigterm() {
    use std::io::BufRead as _;

    let Some(server) = hosted_pg_harness::server() else {
        return;
    };
    let database = Database::create(server);
    let (reader, writer) = std::io::pipe().expect("a pipe");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_grace_period_durable"))
        .env("HOSTED_DURABLE__URL", &database.url)
        .env("HOSTED_GRACE_PERIOD__SECONDS", "1")
        .env("HOSTED_GRACE_PERIOD__DEMO_ORDERS", "true")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(writer.try_clone().expect("the pipe's writer"))
        .stderr(writer)
        .spawn()
        .expect("the example starts");
    let mut lines = std::io::BufReader::new(reader).lines();
    let published = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("OrderConfirmed published"));
    assert!(published, "the replica runs");
    // The reader goes away, as a killed `sed` does; the replica keeps logging into the pipe.
    drop(lines);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "still running");
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the replica ignored SIGTERM once its output pipe was gone");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}
