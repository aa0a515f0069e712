//! The conformance suite (`hosted_durable_tests::suite`), instantiated for PostgreSQL, and what
//! only PostgreSQL has: its migrations, its URL, its `[durable]` keys.

use std::sync::Arc;
use std::time::Duration;

use hosted::config::ConfigSources;
use hosted::durable::{DurableConfig, DurableError, Migrate, PgBackend, SCHEMA_VERSION};
use hosted::registry::Problem;
use hosted_durable_tests::config;

hosted_durable_tests::conformance!(hosted_durable_tests::postgres::Postgres);

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
                expected: SCHEMA_VERSION,
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

/// `durable.dead_retention` is checked when the configuration is read, with its key, its source
/// and the form expected; `"never"` keeps dead jobs.
#[test]
fn a_bad_dead_retention_stops_the_build_with_its_key_source_and_expected_form() {
    let build = |value: &str| {
        let configuration = ConfigSources::new()
            .toml(
                "app.toml",
                format!(
                    "[durable]\nurl = \"postgres://app@127.0.0.1:1/app\"\ndead_retention = {value}\n"
                ),
            )
            .load()
            .expect("readable configuration");
        hosted::Host::builder()
            .add_service(hosted::durable::durable_queued(
                "app::outbox",
                hosted::queue::QueueOptions::new(1),
                |_: String, _: hosted::di::RunContext| async {},
            ))
            .configuration(configuration)
            .build()
    };
    for (value, expected) in [
        (
            "\"0s\"",
            "expected a positive duration like \"7d\", or \"never\"",
        ),
        (
            "\"a week\"",
            "expected a duration like \"7d\", or \"never\"",
        ),
    ] {
        let Err(error) = build(value) else {
            panic!("{value} refused");
        };
        let problems = error.problems();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let problem = problems
            .iter()
            .find_map(|problem| match problem {
                Problem::Config {
                    key,
                    origin,
                    message,
                } if key == "durable.dead_retention" => Some((origin.to_string(), message.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("a problem at `durable.dead_retention`: {shown:?}"));
        assert!(problem.0.contains("app.toml"), "the source: {problem:?}");
        assert!(problem.1.contains(expected), "{problem:?}");
    }
    assert!(build("\"never\"").is_ok());
    assert!(build("\"30d\"").is_ok());
    let defaults = DurableConfig::new("postgres://app@db/app").unwrap();
    assert_eq!(
        defaults.retention(),
        hosted::durable::Retention::new(
            Duration::from_hours(24),
            Some(Duration::from_hours(24 * 7))
        ),
        "a day for completed jobs, a week for dead ones"
    );
}
