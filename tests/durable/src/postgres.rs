//! The PostgreSQL [`Store`]: a schema of the test's own on the test binary's server
//! (`hosted-pg-harness`), or on a cluster of its own for a test that restarts it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hosted::di::RunContext;
use hosted::durable::{
    Backend, DurableConfig, Job, JobId, JobTransaction, PgBackend, SCHEMA_VERSION,
};
use hosted::{BoxError, Config, Queue};
use hosted_pg_harness::Server;
use serde::Serialize;
use sqlx_core::query::query;
use sqlx_core::row::Row as _;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnection, Postgres as Pg};

use crate::relay::Relay;
use crate::store::{Effect, JobRow, JobState, Settings, Store, Tuning, Unreachable};

/// A configuration for `test` on the test binary's server, in a fresh schema; `None` (after a
/// message) when no server can be had outside CI.
///
/// # Panics
/// When the harness hands out a URL that does not parse, or (in CI) no server can be had.
#[must_use]
pub fn config(test: &str) -> Option<DurableConfig> {
    let server = hosted_pg_harness::server()?;
    Some(configured(server, &server.schema(test), Tuning::default()))
}

fn configured(server: &Server, schema: &str, tuning: Tuning) -> DurableConfig {
    let mut config = DurableConfig::new(server.url()).expect("the harness's URL is valid");
    schema.clone_into(&mut config.schema);
    config.pool_size = 4;
    config.lease = tuning.lease;
    config.poll_interval = tuning.poll_interval;
    config.sweep_interval = tuning.sweep_interval;
    config.listen = tuning.listen;
    config.dead_retention = tuning.dead_retention;
    config
}

/// The TOML of a `[durable]` section for `config`.
#[must_use]
pub fn toml(config: &DurableConfig) -> String {
    format!(
        "[durable]\nurl = \"{}\"\nschema = \"{}\"\npool_size = {}\nlease = \"{}ms\"\npoll_interval = \"{}ms\"\nsweep_interval = \"{}ms\"\n",
        config.url.expose(),
        config.schema,
        config.pool_size,
        config.lease.as_millis(),
        config.poll_interval.as_millis(),
        config.sweep_interval.as_millis(),
    )
}

/// Records an [`Effect`] in `<schema>.effects` on `connection` (the job's transaction's).
///
/// # Errors
/// When the statement fails.
pub async fn insert_effect(
    connection: &mut PgConnection,
    schema: &str,
    job: &Job,
    n: i64,
) -> Result<(), BoxError> {
    query::<Pg>(AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".effects (job, n, attempt, pid) VALUES ($1, $2, $3, $4)"
    )))
    .bind(job.id())
    .bind(n)
    .bind(i32::try_from(job.attempt())?)
    .bind(i32::try_from(std::process::id())?)
    .execute(connection)
    .await?;
    Ok(())
}

/// A schema of the test's own, with the tables the suite reads (`effects`, `tick_runs`).
#[derive(Debug)]
pub struct Postgres {
    /// The test's own cluster, when it has one.
    own: Option<Server>,
    url: String,
    schema: String,
    tuning: Tuning,
    /// The suite's own connection, to read the rows.
    reader: PgBackend,
}

impl Postgres {
    async fn open(
        server: Option<Server>,
        shared: Option<&Server>,
        test: &str,
        tuning: Tuning,
    ) -> Self {
        let on = server.as_ref().or(shared).expect("a server");
        let schema = on.schema(test);
        let config = configured(on, &schema, tuning);
        PgBackend::migrate(&config).await.expect("migrated");
        let reader = PgBackend::connect(&config).await.expect("connected");
        for table in [
            "effects (job bigint NOT NULL, n bigint NOT NULL, attempt int NOT NULL, pid int NOT NULL)",
            "tick_runs (number bigint NOT NULL, pid int NOT NULL)",
        ] {
            query::<Pg>(AssertSqlSafe(format!("CREATE TABLE \"{schema}\".{table}")))
                .execute(reader.pool())
                .await
                .expect("the suite's tables");
        }
        Self {
            url: on.url().to_owned(),
            own: server,
            schema,
            tuning,
            reader,
        }
    }

    /// The configuration of this store.
    ///
    /// # Panics
    /// Never: its URL was checked when it was made.
    #[must_use]
    pub fn config(&self) -> DurableConfig {
        let mut config = DurableConfig::new(&self.url).expect("a valid URL");
        config.schema.clone_from(&self.schema);
        config.pool_size = 4;
        config.lease = self.tuning.lease;
        config.poll_interval = self.tuning.poll_interval;
        config.sweep_interval = self.tuning.sweep_interval;
        config.listen = self.tuning.listen;
        config.dead_retention = self.tuning.dead_retention;
        config
    }

    /// The suite's own connection.
    #[must_use]
    pub fn reader(&self) -> &PgBackend {
        &self.reader
    }

    async fn rows(&self, sql: &str) -> Vec<sqlx_postgres::PgRow> {
        // A restart drops the pool's connections: the statement is retried until it reconnects.
        for _ in 0..600 {
            match query::<Pg>(AssertSqlSafe(
                sql.replace("{s}", &format!("\"{}\"", self.schema)),
            ))
            .fetch_all(self.reader.pool())
            .await
            {
                Ok(rows) => return rows,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        panic!("the store cannot be read: {sql}")
    }
}

impl Store for Postgres {
    type Stall = Relay;

    const SCHEMA_VERSION: i32 = SCHEMA_VERSION;

    async fn fresh(test: &str, tuning: Tuning) -> Option<Self> {
        let server = hosted_pg_harness::server()?;
        Some(Self::open(None, Some(server), test, tuning).await)
    }

    async fn fresh_on_own_server(test: &str, tuning: Tuning) -> Option<Self> {
        hosted_pg_harness::server()?;
        let own = Server::own().expect("a cluster of the test's own");
        Some(Self::open(Some(own), None, test, tuning).await)
    }

    async fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(PgBackend::connect(&self.config()).await.expect("connected"))
    }

    fn settings(&self) -> Settings {
        let ms = |duration: Duration| format!("{}ms", duration.as_millis());
        Settings::default()
            .with("durable.url", &self.url)
            .with("durable.schema", &self.schema)
            .with("durable.pool_size", "4")
            .with("durable.lease", ms(self.tuning.lease))
            .with("durable.poll_interval", ms(self.tuning.poll_interval))
            .with("durable.sweep_interval", ms(self.tuning.sweep_interval))
            .with("durable.listen", self.tuning.listen.to_string())
            .with(
                "durable.dead_retention",
                self.tuning.dead_retention.map_or("never".to_owned(), ms),
            )
    }

    async fn stallable(&self) -> (Settings, Relay) {
        let port = self
            .url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|port| port.parse::<u16>().ok())
            .expect("a URL with a port");
        let relay = Relay::start(port).await;
        let relayed = self
            .url
            .replace(&format!(":{port}/"), &format!(":{}/", relay.port()));
        (self.settings().with("durable.url", relayed), relay)
    }

    async fn restart(&self) {
        let cluster = self
            .own
            .as_ref()
            .and_then(Server::cluster)
            .expect("a store on a cluster of the test's own");
        cluster.restart().expect("pg_ctl restart");
    }

    fn unreachable(&self) -> Unreachable {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Unreachable {
            settings: self
                .settings()
                .with(
                    "durable.url",
                    format!("postgres://app:hunter2@127.0.0.1:{port}/app"),
                )
                .with("durable.connect_timeout", "2s"),
            key: "durable.url".to_owned(),
            secret: "hunter2".to_owned(),
            masked: "postgres://app:***@127.0.0.1".to_owned(),
        }
    }

    async fn set_schema_version(&self, version: i32) {
        self.rows(&format!(
            "UPDATE {{s}}.schema_version SET version = {version}"
        ))
        .await;
    }

    fn worker_binary(&self) -> PathBuf {
        // Cargo builds the package's binaries beside the `deps` folder holding the test binary.
        let exe = std::env::current_exe().expect("the test binary's path");
        let worker = exe
            .parent()
            .and_then(|deps| deps.parent())
            .map(|dir| dir.join(format!("durable-worker{}", std::env::consts::EXE_SUFFIX)))
            .expect("the target folder");
        assert!(
            worker.is_file(),
            "the worker binary is built with the tests of `hosted-durable-tests`: {}",
            worker.display()
        );
        worker
    }

    async fn jobs(&self) -> Vec<JobRow> {
        self.rows("SELECT id, state, attempt FROM {s}.jobs ORDER BY id")
            .await
            .iter()
            .map(|row| JobRow {
                id: row.get(0),
                state: match row.get::<String, _>(1).as_str() {
                    "available" => JobState::Available,
                    "running" => JobState::Running,
                    "completed" => JobState::Completed,
                    "dead" => JobState::Dead,
                    other => panic!("a job in the state `{other}`"),
                },
                attempt: u32::try_from(row.get::<i32, _>(2)).expect("a positive attempt"),
            })
            .collect()
    }

    async fn effects(&self) -> Vec<Effect> {
        self.rows("SELECT job, n, attempt, pid FROM {s}.effects ORDER BY job")
            .await
            .iter()
            .map(|row| Effect {
                job: row.get::<JobId, _>(0),
                n: row.get(1),
                attempt: u32::try_from(row.get::<i32, _>(2)).expect("a positive attempt"),
                pid: u32::try_from(row.get::<i32, _>(3)).expect("a pid"),
            })
            .collect()
    }

    async fn tick_runs(&self) -> Vec<(i64, u32)> {
        self.rows("SELECT number, pid FROM {s}.tick_runs ORDER BY number")
            .await
            .iter()
            .map(|row| {
                (
                    row.get(0),
                    u32::try_from(row.get::<i32, _>(1)).expect("a pid"),
                )
            })
            .collect()
    }

    async fn send_in<T: Serialize + Send + Sync + 'static>(
        &self,
        queue: &Queue<T>,
        item: T,
        commit: bool,
    ) {
        let pool = queue.durable_backend().expect("a durable queue").pool();
        let mut tx = pool.begin().await.expect("a transaction");
        assert!(
            queue.send_in(&mut tx, item).await.is_ok(),
            "the transactional send failed"
        );
        if commit {
            tx.commit().await.expect("committed");
        } else {
            tx.rollback().await.expect("rolled back");
        }
    }

    async fn record_effect(cx: &RunContext, n: i64) -> Result<(), BoxError> {
        let job = cx.resolve::<Job>().await?;
        let tx = cx.resolve::<JobTransaction>().await?;
        let config = cx.resolve::<Config<DurableConfig>>().await?;
        let mut connection = tx.connection().await?;
        insert_effect(&mut connection, &config.schema, &job, n).await
    }
}
