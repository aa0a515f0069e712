//! The PostgreSQL [`Backend`]: jobs claimed with `FOR UPDATE SKIP LOCKED`, ownership in columns
//! (a lease renewed by heartbeat, a claim number fencing every result), never in session state;
//! wake-ups through `LISTEN`/`NOTIFY` on a dedicated connection, with polling as the fallback.

mod migrations;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx_core::error::Error as SqlxError;
use sqlx_core::executor::Executor;
use sqlx_core::pool::PoolOptions;
use sqlx_core::query::query;
use sqlx_core::row::Row as _;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnection, PgListener, PgPool, Postgres};
use tokio::sync::{Notify, oneshot};

use self::migrations::{LATEST, MIGRATIONS};

/// The schema version this build's embedded migrations bring the store to.
pub const SCHEMA_VERSION: i32 = LATEST;
use super::{
    Backend, Claimed, DeadJob, DurableConfig, DurableError, JobId, Lease, Maintenance, Migrate,
    QueueCounts, Retention, Settled,
};
use crate::util::BoxFuture;

/// The statements, with the schema written in once.
#[derive(Debug)]
struct Sql {
    enqueue: String,
    claim: String,
    heartbeat: String,
    complete: String,
    complete_many: String,
    fail: String,
    release: String,
    elect: String,
    rescue: String,
    prune: String,
    prune_dead: String,
    counts: String,
    dead_letters: String,
    retry_dead: String,
    discard_dead: String,
    notify: String,
    clock: String,
    claim_tick: String,
    last_tick: String,
    prune_ticks: String,
}

impl Sql {
    #[expect(
        clippy::too_many_lines,
        reason = "one statement a field, each written once"
    )]
    fn new(schema: &str) -> Self {
        let s = quoted(schema);
        let held = "id = $1 AND claim = $2 AND state = 'running'";
        let channel = channel(schema);
        Self {
            enqueue: format!(
                "WITH job AS (INSERT INTO {s}.jobs (queue, payload, max_attempts, origin) \
                 VALUES ($1, $2::jsonb, $3, $4) RETURNING id, queue) \
                 SELECT id, pg_notify('{channel}', queue) FROM job"
            ),
            claim: format!(
                "WITH next AS (SELECT id FROM {s}.jobs \
                   WHERE state = 'available' AND queue = $1 AND run_at <= now() \
                   ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE {s}.jobs j SET state = 'running', attempt = j.attempt + 1, \
                   claim = j.claim + 1, lease_owner = $3, \
                   lease_expires_at = now() + $4 * interval '1 millisecond' \
                 FROM next WHERE j.id = next.id \
                 RETURNING j.id, j.claim, j.attempt, j.max_attempts, j.payload::text, j.origin"
            ),
            heartbeat: format!(
                "UPDATE {s}.jobs SET lease_expires_at = now() + $2 * interval '1 millisecond' \
                 WHERE state = 'running' AND lease_owner = $1 \
                   AND (id, claim) IN (SELECT * FROM unnest($3::bigint[], $4::bigint[])) \
                 RETURNING id"
            ),
            complete: format!(
                "UPDATE {s}.jobs SET state = 'completed', finished_at = now(), \
                   lease_owner = NULL, lease_expires_at = NULL WHERE {held}"
            ),
            complete_many: format!(
                "UPDATE {s}.jobs j SET state = 'completed', finished_at = now(), \
                   lease_owner = NULL, lease_expires_at = NULL \
                 FROM unnest($1::bigint[], $2::bigint[]) AS done(id, claim) \
                 WHERE j.id = done.id AND j.claim = done.claim AND j.state = 'running' \
                 RETURNING j.id"
            ),
            fail: format!(
                "UPDATE {s}.jobs SET \
                   state = CASE WHEN $3::bigint IS NULL OR attempt >= max_attempts \
                     THEN 'dead' ELSE 'available' END, \
                   run_at = CASE WHEN $3::bigint IS NULL OR attempt >= max_attempts \
                     THEN run_at ELSE now() + $3 * interval '1 millisecond' END, \
                   finished_at = CASE WHEN $3::bigint IS NULL OR attempt >= max_attempts \
                     THEN now() END, \
                   last_error = $4, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE {held} RETURNING state"
            ),
            release: format!(
                "WITH job AS (UPDATE {s}.jobs SET state = 'available', attempt = attempt - 1, \
                   run_at = now(), lease_owner = NULL, lease_expires_at = NULL \
                   WHERE {held} RETURNING queue) \
                 SELECT pg_notify('{channel}', queue) FROM job"
            ),
            elect: format!(
                "INSERT INTO {s}.leaders (name, holder, term, expires_at) \
                 VALUES ('maintenance', $1, 1, now() + $2 * interval '1 millisecond') \
                 ON CONFLICT (name) DO UPDATE SET \
                   term = CASE WHEN leaders.holder = EXCLUDED.holder \
                     THEN leaders.term ELSE leaders.term + 1 END, \
                   holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
                 WHERE leaders.holder = EXCLUDED.holder OR leaders.expires_at < now() \
                 RETURNING term"
            ),
            rescue: format!(
                "WITH leader AS (SELECT 1 FROM {s}.leaders WHERE name = 'maintenance' \
                   AND holder = $1 AND term = $2 AND expires_at > now()), \
                 rescued AS (UPDATE {s}.jobs SET \
                   state = CASE WHEN attempt >= max_attempts THEN 'dead' ELSE 'available' END, \
                   finished_at = CASE WHEN attempt >= max_attempts THEN now() END, \
                   last_error = 'the lease of attempt ' || attempt || ' expired: its worker (' \
                     || coalesce(lease_owner, '?') || ') stopped renewing it', \
                   lease_owner = NULL, lease_expires_at = NULL, run_at = now() \
                   WHERE state = 'running' AND lease_expires_at < now() \
                     AND EXISTS (SELECT 1 FROM leader) RETURNING queue) \
                 SELECT queue, pg_notify('{channel}', queue) FROM rescued"
            ),
            prune: format!(
                "DELETE FROM {s}.jobs WHERE state = 'completed' \
                   AND finished_at < now() - $3 * interval '1 millisecond' \
                   AND EXISTS (SELECT 1 FROM {s}.leaders WHERE name = 'maintenance' \
                     AND holder = $1 AND term = $2 AND expires_at > now())"
            ),
            prune_dead: format!(
                "DELETE FROM {s}.jobs WHERE state = 'dead' \
                   AND finished_at < now() - $3 * interval '1 millisecond' \
                   AND EXISTS (SELECT 1 FROM {s}.leaders WHERE name = 'maintenance' \
                     AND holder = $1 AND term = $2 AND expires_at > now())"
            ),
            counts: format!(
                "SELECT count(*) FILTER (WHERE state = 'available'), \
                   count(*) FILTER (WHERE state = 'running'), \
                   count(*) FILTER (WHERE state = 'completed'), \
                   count(*) FILTER (WHERE state = 'dead'), \
                   (extract(epoch FROM now() - min(run_at) \
                     FILTER (WHERE state = 'available' AND run_at <= now())) * 1000)::bigint \
                 FROM {s}.jobs WHERE queue = $1"
            ),
            dead_letters: format!(
                "SELECT id, queue, payload::text, attempt, coalesce(last_error, '') \
                 FROM {s}.jobs WHERE state = 'dead' AND queue = $1 \
                 ORDER BY finished_at DESC, id DESC LIMIT $2"
            ),
            retry_dead: format!(
                "WITH job AS (UPDATE {s}.jobs SET state = 'available', attempt = 0, \
                   run_at = now(), finished_at = NULL WHERE id = $1 AND state = 'dead' \
                   RETURNING queue) \
                 SELECT pg_notify('{channel}', queue) FROM job"
            ),
            discard_dead: format!("DELETE FROM {s}.jobs WHERE id = $1 AND state = 'dead'"),
            notify: format!("SELECT pg_notify('{channel}', $1)"),
            // `clock_timestamp()`, not `now()`: the time of the reading, not of the
            // transaction's start.
            clock: "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint".to_owned(),
            claim_tick: format!(
                "INSERT INTO {s}.ticks (schedule, due_us, run_by) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING"
            ),
            last_tick: format!("SELECT max(due_us) FROM {s}.ticks WHERE schedule = $1"),
            prune_ticks: format!("DELETE FROM {s}.ticks WHERE schedule = $1 AND due_us < $2"),
        }
    }
}

/// A schema name, quoted for SQL. Configuration only lets through lowercase names of letters,
/// digits and `_`, so nothing needs escaping; quoting keeps reserved words usable.
fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// The notification channel of a schema's jobs.
fn channel(schema: &str) -> String {
    format!("hosted_jobs_{schema}")
}

/// The durable store on PostgreSQL: a pool, the statements, this process's worker id, and the
/// wake-ups its notification listener hands out.
#[derive(Debug)]
pub struct PgBackend {
    pool: PgPool,
    schema: String,
    url: String,
    worker: String,
    lease: Duration,
    sql: Sql,
    wakers: Arc<Wakers>,
    listener: tokio::task::JoinHandle<()>,
    /// Why the store is unreachable, since the last statement that could not reach it; `None`
    /// once one reached it again.
    outage: Mutex<Option<String>>,
    /// Whether the web host's readiness reports this store already.
    #[cfg(feature = "web")]
    pub(crate) in_readiness: std::sync::atomic::AtomicBool,
    /// Completions waiting for the next batch.
    completions: Mutex<Vec<Completion>>,
    /// Held by whoever runs a batch of completions; the others queue behind it.
    completing: tokio::sync::Mutex<()>,
}

/// A completion waiting for its batch, and where its result goes.
type Completion = (Lease, oneshot::Sender<Result<Settled, DurableError>>);

/// One wake-up per queue this process drains; a notification or a reconnect wakes it.
#[derive(Debug, Default)]
struct Wakers {
    by_queue: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakers {
    fn of(&self, queue: &str) -> Arc<Notify> {
        let mut by_queue = self.by_queue.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(by_queue.entry(queue.to_owned()).or_default())
    }

    fn wake(&self, queue: &str) {
        let by_queue = self.by_queue.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(notify) = by_queue.get(queue) {
            notify.notify_one();
        }
    }

    fn wake_all(&self) {
        let by_queue = self.by_queue.lock().unwrap_or_else(PoisonError::into_inner);
        for notify in by_queue.values() {
            notify.notify_one();
        }
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgBackend {
    /// Connects to the store of `config`, and checks (with `migrate = "manual"`) or brings
    /// (`"auto"`) its schema to this build's version.
    ///
    /// # Errors
    /// When the database is unreachable, or its schema at a version this build cannot use.
    pub async fn connect(config: &DurableConfig) -> Result<Self, DurableError> {
        let url = config.url.masked();
        let pool = PoolOptions::<Postgres>::new()
            // One more for the notification listener's dedicated connection.
            .max_connections(config.pool_size + 1)
            .acquire_timeout(config.connect_timeout)
            .connect_with(config.url.options.clone())
            .await
            .map_err(|error| unreachable(&url, &error))?;
        let schema = config.schema.clone();
        match config.migrate {
            Migrate::Auto => {
                migrate(&pool, &schema, &url).await?;
            }
            Migrate::Manual => check_version(&pool, &schema, &url).await?,
        }
        let wakers = Arc::new(Wakers::default());
        let listener = if config.listen {
            tokio::spawn(listen(pool.clone(), channel(&schema), Arc::clone(&wakers)))
        } else {
            tokio::spawn(async {})
        };
        Ok(Self {
            sql: Sql::new(&schema),
            worker: worker_id(),
            pool,
            schema,
            url,
            lease: config.lease,
            wakers,
            listener,
            outage: Mutex::new(None),
            #[cfg(feature = "web")]
            in_readiness: std::sync::atomic::AtomicBool::new(false),
            completions: Mutex::new(Vec::new()),
            completing: tokio::sync::Mutex::new(()),
        })
    }

    /// Brings the schema of `config` to this build's version, whatever `migrate` says: the
    /// deployment step for `migrate = "manual"`. Safe to run from several processes at once.
    ///
    /// # Errors
    /// When the database is unreachable, or its schema newer than this build.
    pub async fn migrate(config: &DurableConfig) -> Result<Migrated, DurableError> {
        let url = config.url.masked();
        let pool = one_connection(config, &url).await?;
        let migrated = migrate(&pool, &config.schema, &url).await;
        pool.close().await;
        migrated
    }

    /// Checks that the store of `config` is reachable and its schema at this build's version
    /// (or behind it, with `migrate = "auto"`): what `--check` asks.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), without changing anything.
    /// Returns the version found (behind this build's only with `migrate = "auto"`, when the
    /// start will bring it up).
    pub async fn check(config: &DurableConfig) -> Result<i32, DurableError> {
        let url = config.url.masked();
        let pool = one_connection(config, &url).await?;
        let found = schema_version(&pool, &config.schema, &url).await;
        pool.close().await;
        let found = found?;
        if found > LATEST || (found < LATEST && config.migrate == Migrate::Manual) {
            return Err(version_error(&config.schema, found));
        }
        Ok(found)
    }

    /// The counts of `queues` in the store of `config`, read without changing anything (and
    /// without migrating): what `--list` shows. A schema not migrated yet has no jobs.
    ///
    /// # Errors
    /// When the database is unreachable, or its schema at a version this build cannot read.
    pub async fn inspect(
        config: &DurableConfig,
        queues: &[&str],
    ) -> Result<(i32, Vec<QueueCounts>), DurableError> {
        let url = config.url.masked();
        let pool = one_connection(config, &url).await?;
        let inspected = async {
            let found = schema_version(&pool, &config.schema, &url).await?;
            if found == 0 {
                return Ok((0, vec![QueueCounts::default(); queues.len()]));
            }
            if found > LATEST {
                return Err(version_error(&config.schema, found));
            }
            let sql = Sql::new(&config.schema);
            let mut counts = Vec::with_capacity(queues.len());
            for queue in queues {
                let row = Self::statement(&sql.counts)
                    .bind(*queue)
                    .fetch_one(&pool)
                    .await
                    .map_err(|error| database_error(&url, &error))?;
                counts.push(read_counts(&row).map_err(|error| database_error(&url, &error))?);
            }
            Ok((found, counts))
        }
        .await;
        pool.close().await;
        inspected
    }

    /// The version of the schema this build brings a store to.
    #[must_use]
    pub fn schema_version() -> i32 {
        LATEST
    }

    /// The pool, for the handler's own queries and the transactional send.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema the tables live in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// This process's worker id, as the `lease_owner` column shows it.
    #[must_use]
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Stores a job through the caller's connection, inside the caller's transaction: the job
    /// exists if and only if that transaction commits (the outbox pattern). Its notification
    /// goes out at the commit.
    ///
    /// # Errors
    /// When the statement fails (the caller's transaction is then aborted, as PostgreSQL does).
    pub async fn enqueue_in(
        &self,
        connection: &mut PgConnection,
        queue: &str,
        payload: &str,
        max_attempts: u32,
    ) -> Result<JobId, DurableError> {
        self.enqueue_in_from(connection, queue, payload, max_attempts, None)
            .await
    }

    /// As [`enqueue_in`](Self::enqueue_in), keeping where the job was sent from, as
    /// [`Backend::enqueue_from`] does.
    ///
    /// # Errors
    /// When the statement fails (the caller's transaction is then aborted, as PostgreSQL does).
    pub async fn enqueue_in_from(
        &self,
        connection: &mut PgConnection,
        queue: &str,
        payload: &str,
        max_attempts: u32,
        origin: Option<&str>,
    ) -> Result<JobId, DurableError> {
        let row = query::<Postgres>(AssertSqlSafe(self.sql.enqueue.clone()))
            .bind(queue)
            .bind(payload)
            .bind(attempts(max_attempts))
            .bind(origin)
            .fetch_one(connection)
            .await
            .map_err(|error| self.error(&error))?;
        row.try_get(0).map_err(|error| self.error(&error))
    }

    /// Completes the job inside `connection`'s transaction, fenced as
    /// [`complete`](Backend::complete) is: on [`Settled::Stale`] the caller rolls back.
    pub(crate) async fn complete_in(
        &self,
        connection: &mut PgConnection,
        lease: &Lease,
    ) -> Result<Settled, DurableError> {
        let done = query::<Postgres>(AssertSqlSafe(self.sql.complete.clone()))
            .bind(lease.id)
            .bind(lease.claim)
            .execute(connection)
            .await
            .map_err(|error| self.error(&error))?;
        Ok(if done.rows_affected() == 1 {
            Settled::Completed
        } else {
            Settled::Stale
        })
    }

    fn error(&self, error: &SqlxError) -> DurableError {
        let error = match error {
            // The server going down answers the statements in flight with `57P01`
            // (admin_shutdown) and its kin, class 57 and 08: the store is unreachable.
            SqlxError::Database(database)
                if database
                    .code()
                    .is_some_and(|code| code.starts_with("57") || code.starts_with("08")) =>
            {
                unreachable(&self.url, error)
            }
            SqlxError::Database(database) => DurableError::Database(database.to_string()),
            other => unreachable(&self.url, other),
        };
        if matches!(error, DurableError::Unreachable { .. }) {
            *self.outage.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
        }
        error
    }

    /// A statement reached the store.
    fn reached(&self) {
        let mut outage = self.outage.lock().unwrap_or_else(PoisonError::into_inner);
        if outage.is_some() {
            *outage = None;
        }
    }

    /// Whether the store was reachable at the last statement: `Err` with why not, until a
    /// statement reaches it again. Cheap (a flag), for readiness checks.
    ///
    /// # Errors
    /// Since a statement found the store unreachable.
    pub fn reachable(&self) -> Result<(), String> {
        self.outage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .map_or(Ok(()), Err)
    }

    fn statement(
        sql: &str,
    ) -> sqlx_core::query::Query<'static, Postgres, sqlx_postgres::PgArguments> {
        query::<Postgres>(AssertSqlSafe(sql.to_owned()))
    }
}

/// A unique id for this process's workers: the host name, the process id and a random part (a
/// restarted process with the same pid is another worker).
fn worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

fn attempts(max_attempts: u32) -> i32 {
    i32::try_from(max_attempts.max(1)).unwrap_or(i32::MAX)
}

/// A duration in milliseconds for an `interval`, held under PostgreSQL's range for one (a
/// `retention = "1000000y"` means "forever", not a refused statement).
fn millis(duration: Duration) -> i64 {
    const LONGEST: i64 = 100_000_000_000_000; // about 3,000 years
    i64::try_from(duration.as_millis()).map_or(LONGEST, |ms| ms.min(LONGEST))
}

/// What [`PgBackend::migrate`] did: the schema's version before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migrated {
    /// The version found (0: a schema never migrated).
    pub from: i32,
    /// The version now: this build's.
    pub to: i32,
}

/// A pool of one connection, for the one-off steps (`--check`, `--migrate`, `--list`).
async fn one_connection(config: &DurableConfig, url: &str) -> Result<PgPool, DurableError> {
    PoolOptions::<Postgres>::new()
        .max_connections(1)
        .acquire_timeout(config.connect_timeout)
        .connect_with(config.url.options.clone())
        .await
        .map_err(|error| unreachable(url, &error))
}

fn read_counts(row: &sqlx_postgres::PgRow) -> Result<QueueCounts, SqlxError> {
    let count = |i: usize| -> Result<u64, SqlxError> {
        Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
    };
    let oldest: Option<i64> = row.try_get(4)?;
    Ok(QueueCounts {
        waiting: count(0)?,
        running: count(1)?,
        completed: count(2)?,
        dead: count(3)?,
        oldest_waiting: oldest.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

fn database_error(url: &str, error: &SqlxError) -> DurableError {
    match error {
        SqlxError::Database(database) => DurableError::Database(database.to_string()),
        other => unreachable(url, other),
    }
}

fn unreachable(url: &str, error: &SqlxError) -> DurableError {
    DurableError::Unreachable {
        url: url.to_owned(),
        message: error.to_string(),
    }
}

fn version_error(schema: &str, found: i32) -> DurableError {
    DurableError::SchemaVersion {
        schema: schema.to_owned(),
        found,
        expected: LATEST,
        hint: if found > LATEST {
            "the schema was migrated by a newer build: deploy that build, or point \
             `durable.schema` at another schema"
        } else {
            "with `durable.migrate = \"manual\"`, migrate it first (run the binary with \
             `--migrate`, or call `PgBackend::migrate`), or set `durable.migrate = \"auto\"`"
        },
    }
}

/// The schema's version; 0 when it has none yet.
async fn schema_version(pool: &PgPool, schema: &str, url: &str) -> Result<i32, DurableError> {
    let exists: bool = query::<Postgres>(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'schema_version')",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .and_then(|row| row.try_get(0))
    .map_err(|error| unreachable(url, &error))?;
    if !exists {
        return Ok(0);
    }
    query::<Postgres>(AssertSqlSafe(format!(
        "SELECT coalesce(max(version), 0) FROM {}.schema_version",
        quoted(schema)
    )))
    .fetch_one(pool)
    .await
    .and_then(|row| row.try_get(0))
    .map_err(|error| DurableError::Database(error.to_string()))
}

async fn check_version(pool: &PgPool, schema: &str, url: &str) -> Result<(), DurableError> {
    let found = schema_version(pool, schema, url).await?;
    if found == LATEST {
        Ok(())
    } else {
        Err(version_error(schema, found))
    }
}

/// Applies the migrations the schema lacks, one transaction each, serialised across processes
/// by a transaction-scoped advisory lock (released at commit, never held by a session).
async fn migrate(pool: &PgPool, schema: &str, url: &str) -> Result<Migrated, DurableError> {
    let database = |error: SqlxError| match error {
        SqlxError::Database(error) => DurableError::Database(error.to_string()),
        other => unreachable(url, &other),
    };
    let s = quoted(schema);
    let mut from = None;
    loop {
        let mut tx = pool.begin().await.map_err(database)?;
        query::<Postgres>("SELECT pg_advisory_xact_lock(hashtext('hosted-migrate:' || $1))")
            .bind(schema)
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        tx.execute(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {s}; \
             CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)"
        )))
        .await
        .map_err(database)?;
        let found: i32 = query::<Postgres>(AssertSqlSafe(format!(
            "SELECT coalesce(max(version), 0) FROM {s}.schema_version"
        )))
        .fetch_one(&mut *tx)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(database)?;
        let from = *from.get_or_insert(found);
        if found > LATEST {
            return Err(version_error(schema, found));
        }
        if found == LATEST {
            tx.commit().await.map_err(database)?;
            return Ok(Migrated { from, to: found });
        }
        let index = usize::try_from(found).unwrap_or(0);
        let next = found + 1;
        tx.execute(AssertSqlSafe(MIGRATIONS[index].replace("{schema}", &s)))
            .await
            .map_err(database)?;
        tx.execute(AssertSqlSafe(format!(
            "DELETE FROM {s}.schema_version; INSERT INTO {s}.schema_version VALUES ({next})"
        )))
        .await
        .map_err(database)?;
        tx.commit().await.map_err(database)?;
        tracing::info!(
            schema,
            version = next,
            "migrated the durable store's schema"
        );
    }
}

/// The notification listener: one dedicated connection `LISTEN`ing on the schema's channel,
/// waking the queue each notification names. When the connection drops it reconnects with
/// backoff and wakes every queue, since notifications may have been missed meanwhile; polling
/// covers the rest.
async fn listen(pool: PgPool, channel: String, wakers: Arc<Wakers>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "the notification listener cannot connect; polling meanwhile");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(error) = listener.listen(&channel).await {
            tracing::debug!(%error, "cannot LISTEN; polling meanwhile");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(100);
        wakers.wake_all();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => wakers.wake(notification.payload()),
                // The connection dropped; `try_recv` reconnects on the next call.
                Ok(None) => {
                    wakers.wake_all();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::debug!(%error, "the notification listener lost its connection");
                    wakers.wake_all();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    break;
                }
            }
        }
    }
}

impl Backend for PgBackend {
    fn enqueue<'a>(
        &'a self,
        queue: &'a str,
        payload: &'a str,
        max_attempts: u32,
    ) -> BoxFuture<'a, Result<JobId, DurableError>> {
        self.enqueue_from(queue, payload, max_attempts, None)
    }

    fn enqueue_from<'a>(
        &'a self,
        queue: &'a str,
        payload: &'a str,
        max_attempts: u32,
        origin: Option<&'a str>,
    ) -> BoxFuture<'a, Result<JobId, DurableError>> {
        Box::pin(async move {
            let row = Self::statement(&self.sql.enqueue)
                .bind(queue)
                .bind(payload)
                .bind(attempts(max_attempts))
                .bind(origin)
                .fetch_one(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            row.try_get(0).map_err(|error| self.error(&error))
        })
    }

    fn claim<'a>(
        &'a self,
        queue: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, DurableError>> {
        Box::pin(async move {
            let rows = Self::statement(&self.sql.claim)
                .bind(queue)
                .bind(i64::from(limit))
                .bind(&self.worker)
                .bind(millis(self.lease))
                .fetch_all(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            self.reached();
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                let read = || -> Result<Claimed, SqlxError> {
                    let attempt: i32 = row.try_get(2)?;
                    let max_attempts: i32 = row.try_get(3)?;
                    Ok(Claimed {
                        lease: Lease {
                            id: row.try_get(0)?,
                            claim: row.try_get(1)?,
                            attempt: u32::try_from(attempt).unwrap_or(0),
                        },
                        max_attempts: u32::try_from(max_attempts).unwrap_or(1),
                        payload: row.try_get(4)?,
                        origin: row.try_get(5)?,
                    })
                };
                claimed.push(read().map_err(|error| self.error(&error))?);
            }
            // Oldest first, as claimed.
            claimed.sort_by_key(|job| job.lease.id);
            Ok(claimed)
        })
    }

    fn heartbeat<'a>(
        &'a self,
        leases: &'a [Lease],
    ) -> BoxFuture<'a, Result<Vec<JobId>, DurableError>> {
        Box::pin(async move {
            if leases.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<i64> = leases.iter().map(|lease| lease.id).collect();
            let claims: Vec<i64> = leases.iter().map(|lease| lease.claim).collect();
            let renewed = Self::statement(&self.sql.heartbeat)
                .bind(&self.worker)
                .bind(millis(self.lease))
                .bind(ids)
                .bind(claims)
                .fetch_all(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            self.reached();
            renewed
                .iter()
                .map(|row| row.try_get::<JobId, _>(0))
                .collect::<Result<_, _>>()
                .map_err(|error| self.error(&error))
        })
    }

    fn complete<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Settled, DurableError>> {
        Box::pin(self.complete_batched(*lease))
    }

    fn fail<'a>(
        &'a self,
        lease: &'a Lease,
        error: &'a str,
        retry_in: Option<Duration>,
    ) -> BoxFuture<'a, Result<Settled, DurableError>> {
        Box::pin(async move {
            let row = Self::statement(&self.sql.fail)
                .bind(lease.id)
                .bind(lease.claim)
                .bind(retry_in.map(millis))
                .bind(error)
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            let Some(row) = row else {
                return Ok(Settled::Stale);
            };
            let state: String = row.try_get(0).map_err(|error| self.error(&error))?;
            Ok(if state == "dead" {
                Settled::Dead
            } else {
                Settled::Retrying
            })
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Settled, DurableError>> {
        Box::pin(async move {
            let row = Self::statement(&self.sql.release)
                .bind(lease.id)
                .bind(lease.claim)
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            Ok(if row.is_some() {
                Settled::Released
            } else {
                Settled::Stale
            })
        })
    }

    fn maintain(&self, retention: Retention) -> BoxFuture<'_, Result<Maintenance, DurableError>> {
        Box::pin(async move {
            // The lease outlives a few sweeps, so one slow round does not hand it over.
            let term: Option<i64> = Self::statement(&self.sql.elect)
                .bind(&self.worker)
                .bind(millis(self.lease.max(Duration::from_secs(1))) * 3)
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| self.error(&error))?
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(|error| self.error(&error))?;
            let Some(term) = term else {
                return Ok(Maintenance::default());
            };
            let rescued = Self::statement(&self.sql.rescue)
                .bind(&self.worker)
                .bind(term)
                .fetch_all(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            let pruned = Self::statement(&self.sql.prune)
                .bind(&self.worker)
                .bind(term)
                .bind(millis(retention.completed))
                .execute(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            let pruned_dead = match retention.dead {
                Some(kept) => Self::statement(&self.sql.prune_dead)
                    .bind(&self.worker)
                    .bind(term)
                    .bind(millis(kept))
                    .execute(&self.pool)
                    .await
                    .map_err(|error| self.error(&error))?
                    .rows_affected(),
                None => 0,
            };
            Ok(Maintenance {
                term: Some(term),
                rescued: rescued.len() as u64,
                pruned: pruned.rows_affected(),
                pruned_dead,
            })
        })
    }

    fn wait_for_work<'a>(&'a self, queue: &'a str, poll: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let notify = self.wakers.of(queue);
            let _ = tokio::time::timeout(poll, notify.notified()).await;
        })
    }

    fn counts<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueCounts, DurableError>> {
        Box::pin(async move {
            let row = Self::statement(&self.sql.counts)
                .bind(queue)
                .fetch_one(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            read_counts(&row).map_err(|error| self.error(&error))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        queue: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<DeadJob>, DurableError>> {
        Box::pin(async move {
            let rows = Self::statement(&self.sql.dead_letters)
                .bind(queue)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            rows.iter()
                .map(|row| {
                    let attempts: i32 = row.try_get(3)?;
                    Ok(DeadJob {
                        id: row.try_get(0)?,
                        queue: row.try_get(1)?,
                        payload: row.try_get(2)?,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                        error: row.try_get(4)?,
                    })
                })
                .collect::<Result<_, SqlxError>>()
                .map_err(|error| self.error(&error))
        })
    }

    fn retry_dead(&self, id: JobId) -> BoxFuture<'_, Result<bool, DurableError>> {
        Box::pin(async move {
            let row = Self::statement(&self.sql.retry_dead)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            Ok(row.is_some())
        })
    }

    fn discard_dead(&self, id: JobId) -> BoxFuture<'_, Result<bool, DurableError>> {
        Box::pin(async move {
            let done = Self::statement(&self.sql.discard_dead)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn clock_us(&self) -> BoxFuture<'_, Result<i64, DurableError>> {
        Box::pin(async move {
            let clock = Self::statement(&self.sql.clock)
                .fetch_one(&self.pool)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|error| self.error(&error))?;
            self.reached();
            Ok(clock)
        })
    }

    fn claim_tick<'a>(
        &'a self,
        schedule: &'a str,
        due_us: i64,
    ) -> BoxFuture<'a, Result<bool, DurableError>> {
        Box::pin(async move {
            // The primary key (schedule, due_us) lets one insert through; the others conflict.
            let done = Self::statement(&self.sql.claim_tick)
                .bind(schedule)
                .bind(due_us)
                .bind(&self.worker)
                .execute(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn last_tick<'a>(
        &'a self,
        schedule: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, DurableError>> {
        Box::pin(async move {
            Self::statement(&self.sql.last_tick)
                .bind(schedule)
                .fetch_one(&self.pool)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|error| self.error(&error))
        })
    }

    fn prune_ticks<'a>(
        &'a self,
        schedule: &'a str,
        before_us: i64,
    ) -> BoxFuture<'a, Result<u64, DurableError>> {
        Box::pin(async move {
            let done = Self::statement(&self.sql.prune_ticks)
                .bind(schedule)
                .bind(before_us)
                .execute(&self.pool)
                .await
                .map_err(|error| self.error(&error))?;
            Ok(done.rows_affected())
        })
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

impl PgBackend {
    /// Completes jobs in batches: each completion joins the batch waiting; whoever's turn it is
    /// sends the whole batch as one statement, fenced row by row on (job, claim), while the
    /// next batch gathers behind it. A lone completion goes at once.
    async fn complete_batched(&self, lease: Lease) -> Result<Settled, DurableError> {
        let (sender, mut receiver) = oneshot::channel();
        self.completions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((lease, sender));
        let turn = self.completing.lock().await;
        if let Ok(settled) = receiver.try_recv() {
            return settled;
        }
        // The completions of jobs that finished at the same moment join this batch rather than
        // wait for the next (a lone completion still goes at once: a yield is no wait).
        tokio::task::yield_now().await;
        let mut batch = std::mem::take(
            &mut *self
                .completions
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        batch.sort_unstable_by_key(|(lease, _)| lease.id);
        let ids: Vec<i64> = batch.iter().map(|(lease, _)| lease.id).collect();
        let claims: Vec<i64> = batch.iter().map(|(lease, _)| lease.claim).collect();
        let done = Self::statement(&self.sql.complete_many)
            .bind(ids)
            .bind(claims)
            .fetch_all(&self.pool)
            .await;
        match done {
            Ok(rows) => {
                self.reached();
                let completed: std::collections::HashSet<i64> =
                    rows.iter().filter_map(|row| row.try_get(0).ok()).collect();
                for (lease, sender) in batch {
                    let _ = sender.send(Ok(if completed.contains(&lease.id) {
                        Settled::Completed
                    } else {
                        Settled::Stale
                    }));
                }
            }
            Err(error) => {
                let error = self.error(&error);
                for (_, sender) in batch {
                    let _ = sender.send(Err(error.clone()));
                }
            }
        }
        drop(turn);
        receiver.await.unwrap_or_else(|_| {
            Err(DurableError::Database(
                "the batch carrying this completion was abandoned".to_owned(),
            ))
        })
    }

    /// Wakes this process's workers of `queue` and every other replica's, as an enqueue does.
    ///
    /// # Errors
    /// When the database is unreachable.
    pub async fn notify(&self, queue: &str) -> Result<(), DurableError> {
        Self::statement(&self.sql.notify)
            .bind(queue)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(&error))?;
        Ok(())
    }
}
