//! Runs seed 002's scoped processing service against a real SQLite file and reads it back: the
//! run's unit of work commits when the run ends well and rolls back when it fails.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use hosted_tests::process::{HANG, Process};

/// A database path of the test's own, removed at the end.
struct TempDatabase(PathBuf);

impl TempDatabase {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!("hosted-{name}-{}-{nanos}.db", std::process::id())))
    }

    fn counts(&self) -> Vec<i64> {
        let connection = rusqlite::Connection::open(&self.0).unwrap();
        let mut statement = connection
            .prepare("SELECT count FROM work ORDER BY id")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn start(database: &TempDatabase, fail_at: Option<i64>) -> Process {
    let mut command = Process::command(env!("CARGO_BIN_EXE_scoped_processing"));
    command
        .env("SCOPED_PROCESSING_DB", &database.0)
        .env("SCOPED_PROCESSING_INTERVAL_MS", "20");
    if let Some(count) = fail_at {
        command.env("SCOPED_PROCESSING_FAIL_AT", count.to_string());
    }
    Process::start(command)
}

#[test]
fn the_unit_of_work_commits_when_the_run_ends_well() {
    let database = TempDatabase::new("scoped-commit");
    let mut app = start(&database, None);
    app.wait_for_line("Consume Scoped Service Hosted Service running.", HANG);
    app.wait_for_line("Scoped Processing Service is working. Count: 3", HANG);
    // Nothing is visible to other connections before the run's scope ends.
    assert_eq!(database.counts(), Vec::<i64>::new());
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    app.assert_log_order(&[
        &["database ready"],
        &["Scoped Processing Service is working. Count: 1"],
        &["application is shutting down"],
        &["Consume Scoped Service Hosted Service is stopping."],
        &["unit of work committed"],
        &["application stopped"],
    ]);
    let counts = database.counts();
    assert!(counts.len() >= 3, "{counts:?}");
    assert_eq!(
        counts,
        (1..=i64::try_from(counts.len()).unwrap()).collect::<Vec<_>>()
    );
}

#[test]
fn the_unit_of_work_rolls_back_when_the_run_fails() {
    let database = TempDatabase::new("scoped-rollback");
    let mut app = start(&database, Some(2));
    assert_eq!(app.wait_exit(HANG), 1, "{}", app.transcript());
    app.assert_log_order(&[
        &["Scoped Processing Service is working. Count: 2"],
        &["unit of work rolled back"],
        &["failing on purpose at count 2"],
        &["application stopped after failures"],
    ]);
    assert_eq!(
        database.counts(),
        Vec::<i64>::new(),
        "nothing of the failed run is kept"
    );
}
