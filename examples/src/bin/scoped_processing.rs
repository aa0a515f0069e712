//! Seed 002's "scoped processing service", against a real SQLite database.
//!
//! A background service uses a scoped processing service, which writes through a scoped unit of
//! work: one SQLite transaction, opened on first use in the run's scope and committed when the
//! run ends well (rolled back when it fails). .NET makes the hosted service create that scope by
//! hand; here every run of a hosted function has one.
//!
//! ```sh
//! cargo run -p hosted-examples --bin scoped_processing
//! ```
//!
//! Environment: `SCOPED_PROCESSING_DB` (database file, default `scoped_processing.db`, created
//! if missing), `SCOPED_PROCESSING_INTERVAL_MS` (pause between two pieces of work, default
//! 10000 as in the seed), `SCOPED_PROCESSING_FAIL_AT` (fail the run at that count, to see the
//! rollback).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::{CancellationToken, Dispose, ScopeExit};
use rusqlite::Connection;

/// Where the database lives and how the example behaves, read once at startup.
#[derive(Debug)]
struct Settings {
    database: PathBuf,
    interval: Duration,
    fail_at: Option<i64>,
}

fn variable<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={text:?} is not valid")),
        Err(_) => Ok(None),
    }
}

#[hosted::singleton]
fn settings() -> anyhow::Result<Settings> {
    Ok(Settings {
        database: variable("SCOPED_PROCESSING_DB")?
            .unwrap_or_else(|| PathBuf::from("scoped_processing.db")),
        interval: Duration::from_millis(
            variable("SCOPED_PROCESSING_INTERVAL_MS")?.unwrap_or(10_000),
        ),
        fail_at: variable("SCOPED_PROCESSING_FAIL_AT")?,
    })
}

/// The database file, created with its table before any service starts.
struct Database {
    path: PathBuf,
}

#[hosted::singleton]
fn database(settings: Arc<Settings>) -> rusqlite::Result<Database> {
    let connection = Connection::open(&settings.database)?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS work (
             id INTEGER PRIMARY KEY,
             count INTEGER NOT NULL,
             done_at TEXT NOT NULL DEFAULT (datetime('now'))
         );",
    )?;
    tracing::info!(path = %settings.database.display(), "database ready");
    Ok(Database {
        path: settings.database.clone(),
    })
}

/// One transaction per scope: the `DbContext` of the seed.
struct UnitOfWork {
    connection: Mutex<Connection>,
}

#[hosted::scoped]
fn unit_of_work(database: Arc<Database>) -> rusqlite::Result<UnitOfWork> {
    let connection = Connection::open(&database.path)?;
    connection.execute_batch("BEGIN")?;
    Ok(UnitOfWork {
        connection: Mutex::new(connection),
    })
}

impl UnitOfWork {
    fn record(&self, count: i64) -> rusqlite::Result<()> {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connection.execute("INSERT INTO work (count) VALUES (?1)", [count])?;
        Ok(())
    }
}

impl Dispose for UnitOfWork {
    async fn dispose(&self, exit: ScopeExit) {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (statement, done) = match exit {
            ScopeExit::Succeeded => ("COMMIT", "committed"),
            ScopeExit::Failed => ("ROLLBACK", "rolled back"),
        };
        match connection.execute_batch(statement) {
            Ok(()) => tracing::info!("unit of work {done}"),
            Err(error) => tracing::error!(%error, "unit of work could not be {done}"),
        }
    }
}

/// The seed's `IScopedProcessingService`.
trait ScopedProcessingService: Send + Sync {
    fn do_work(&self, stop: CancellationToken) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The seed's `ScopedProcessingService`, scoped: it shares the run's unit of work.
#[hosted::scoped]
struct ScopedProcessing {
    unit: Arc<UnitOfWork>,
    settings: Arc<Settings>,
}

impl ScopedProcessingService for ScopedProcessing {
    async fn do_work(&self, stop: CancellationToken) -> anyhow::Result<()> {
        let mut execution_count = 0;
        while !stop.is_cancelled() {
            execution_count += 1;
            tracing::info!("Scoped Processing Service is working. Count: {execution_count}");
            self.unit.record(execution_count)?;
            if Some(execution_count) == self.settings.fail_at {
                anyhow::bail!("failing on purpose at count {execution_count}");
            }
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(self.settings.interval) => {}
            }
        }
        Ok(())
    }
}

/// The seed's `ConsumeScopedServiceHostedService`: its run's scope provides the processing
/// service, so no scope is created by hand.
#[hosted::hosted_service]
async fn consume_scoped_service(
    processing: Arc<ScopedProcessing>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!("Consume Scoped Service Hosted Service running.");
    processing.do_work(stop).await?;
    tracing::info!("Consume Scoped Service Hosted Service is stopping.");
    Ok(())
}

fn main() {
    hosted::run!();
}
