//! What the durable store adds to the command line, on a real binary (`durable-worker`) and a
//! real PostgreSQL server, beside the suite (whose `commands::` tests check `--check` on an
//! unreachable store and on a schema at another version): `--migrate` is the deployment step
//! of `migrate = "manual"`, without which the start refuses; `--list` shows each durable
//! queue's depth; a URL that is not a PostgreSQL URL stops the start and `--check` with exit
//! 78, and `--list` masks it.

use std::process::Output;
use std::time::Duration;

use hosted::durable::{Backend as _, DurableConfig, EXIT_UNREACHABLE, PgBackend, SCHEMA_VERSION};
use hosted_durable_tests::config;
use sqlx_core::query::query;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::Postgres;

/// Runs the worker binary with `args`, its store from `HOSTED_DURABLE__*` (`url` overrides the
/// configuration's), and more environment variables.
fn run(config: Option<&DurableConfig>, url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_durable-worker"));
    command
        .args(args)
        .env("HOSTED_DURABLE__URL", url)
        .env("HOSTED_DURABLE__CONNECT_TIMEOUT", "2s")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn");
    if let Some(config) = config {
        command.env("HOSTED_DURABLE__SCHEMA", &config.schema);
    }
    command.envs(env.iter().copied());
    command.output().expect("the worker runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A URL with a password, on a port nothing listens on.
fn unreachable_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    format!("postgres://app:hunter2@127.0.0.1:{port}/app")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_manual_migrations_the_start_refuses_a_schema_behind_until_migrate_has_run() {
    let Some(config) = config("manual") else {
        return;
    };
    let url = config.url.expose().to_owned();
    let manual = [("HOSTED_DURABLE__MIGRATE", "manual")];
    let output = run(
        Some(&config),
        &url,
        &["--host.startup_timeout=20s"],
        &manual,
    );
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("at version 0"), "{text}");
    assert!(text.contains("--migrate"), "the fix is named: {text}");

    let output = run(Some(&config), &url, &["--migrate"], &manual);
    let text = self::text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("from version 0 to {SCHEMA_VERSION}")),
        "{text}"
    );
    let output = run(Some(&config), &url, &["--migrate"], &manual);
    let text = self::text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("at version {SCHEMA_VERSION} already")),
        "{text}"
    );

    // Now the start goes through: a job sent before is run.
    let backend = PgBackend::connect(&config).await.expect("connected");
    query::<Postgres>(AssertSqlSafe(format!(
        "CREATE TABLE \"{}\".effects (job bigint, n bigint, attempt int, pid int)",
        config.schema
    )))
    .execute(backend.pool())
    .await
    .expect("the effects table");
    backend
        .enqueue("work", r#"{"n":1}"#, 3)
        .await
        .expect("enqueued");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_durable-worker"))
        .env("HOSTED_DURABLE__URL", &url)
        .env("HOSTED_DURABLE__SCHEMA", &config.schema)
        .env("HOSTED_DURABLE__MIGRATE", "manual")
        .env("WORK_MS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the worker starts");
    let done = hosted_durable_tests::eventually(Duration::from_secs(20), || async {
        backend
            .counts("work")
            .await
            .is_ok_and(|counts| counts.completed == 1)
    })
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert!(done, "the migrated store runs its jobs");

    // `--migrate` on an unreachable store: the key, its source, exit 69.
    let output = run(Some(&config), &unreachable_url(), &["--migrate"], &[]);
    let text = self::text(&output);
    assert_eq!(output.status.code(), Some(EXIT_UNREACHABLE), "{text}");
    assert!(text.contains("`durable.url`"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_each_durable_queue_depth_and_the_age_of_its_oldest_waiting_job() {
    let Some(config) = config("list") else {
        return;
    };
    let url = config.url.expose().to_owned();
    // Before any migration: the queue, with nothing in it, and nothing created.
    let output = run(Some(&config), &url, &["--list"], &[]);
    let text = text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("DURABLE QUEUE"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["work", "0", "0", "0", "-"]),
        "{text}"
    );
    assert!(text.contains("at version 0"), "{text}");

    PgBackend::migrate(&config).await.expect("migrated");
    let backend = PgBackend::connect(&config).await.expect("connected");
    for n in 0..4 {
        backend
            .enqueue("work", &format!(r#"{{"n":{n}}}"#), 3)
            .await
            .expect("enqueued");
    }
    let s = format!("\"{}\"", config.schema);
    query::<Postgres>(AssertSqlSafe(format!(
        "UPDATE {s}.jobs SET run_at = now() - interval '90 seconds', created_at = now() - interval '90 seconds' WHERE id = (SELECT min(id) FROM {s}.jobs)"
    )))
    .execute(backend.pool())
    .await
    .unwrap();
    query::<Postgres>(AssertSqlSafe(format!(
        "UPDATE {s}.jobs SET state = 'dead', finished_at = now() WHERE id = (SELECT max(id) FROM {s}.jobs)"
    )))
    .execute(backend.pool())
    .await
    .unwrap();
    let claimed = backend.claim("work", 1).await.expect("claimed");
    assert_eq!(claimed.len(), 1);
    let output = run(Some(&config), &url, &["--list"], &[]);
    let text = self::text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let row: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with("DURABLE QUEUE"))
        .nth(1)
        .expect("the queue's row")
        .split_whitespace()
        .collect();
    // The oldest (90 s) was claimed; of the two waiting, the oldest waited well under a minute.
    assert_eq!(&row[..4], ["work", "2", "1", "1"], "{text}");
    assert!(row[4].ends_with("ms") || row[4].ends_with('s'), "{text}");
    assert!(
        text.contains(&format!("at version {SCHEMA_VERSION}")),
        "{text}"
    );

    // An unreachable store does not stop the listing.
    let output = run(Some(&config), &unreachable_url(), &["--list"], &[]);
    let text = self::text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("counts unavailable"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
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
