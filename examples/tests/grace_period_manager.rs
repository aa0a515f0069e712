//! Runs seed 003's grace-period manager against a real SQLite file: the orders whose grace
//! period has ended are marked ready in the database, an `OrderReady` event is published for
//! each and consumed by the handler, and an order whose grace period ends during the run is
//! picked up by a later tick.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use hosted_tests::process::{HANG, Process};

/// A database of the test's own, removed at the end.
struct TempDatabase(PathBuf);

impl TempDatabase {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!(
            "hosted-grace-period-{}-{nanos}.db",
            std::process::id()
        )))
    }

    fn connection(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.0).unwrap()
    }

    fn statuses(&self) -> Vec<(i64, String)> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT id, status FROM orders ORDER BY id")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
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

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[test]
fn orders_past_their_grace_period_are_marked_and_announced() {
    let database = TempDatabase::new();
    let connection = database.connection();
    connection
        .execute_batch(
            "CREATE TABLE orders (
                 id INTEGER PRIMARY KEY,
                 placed_at_ms INTEGER NOT NULL,
                 status TEXT NOT NULL DEFAULT 'submitted'
             )",
        )
        .unwrap();
    let now = now_ms();
    let grace_ms = 60_000;
    // 1-3 ended long ago, 4-5 have just begun, 6 ends about 2 s into the run, and 7 was
    // cancelled during its grace period.
    for (placed_at, status) in [
        (now - 3_600_000, "submitted"),
        (now - 120_000, "submitted"),
        (now - 61_000, "submitted"),
        (now, "submitted"),
        (now, "submitted"),
        (now - grace_ms + 2_000, "submitted"),
        (now - 3_600_000, "cancelled"),
    ] {
        connection
            .execute(
                "INSERT INTO orders (placed_at_ms, status) VALUES (?1, ?2)",
                rusqlite::params![placed_at, status],
            )
            .unwrap();
    }
    drop(connection);

    let mut command = Process::command(env!("CARGO_BIN_EXE_grace_period_manager"));
    command
        .env("GRACE_PERIOD_DB", &database.0)
        .env("GRACE_PERIOD_SECONDS", "60");
    let mut manager = Process::start(command);
    manager.wait_for_line("OrderReady received: order 6", HANG);
    manager.signal("TERM");
    assert_eq!(manager.wait_exit(HANG), 0, "{}", manager.transcript());

    manager.assert_log_order(&[
        &["application started"],
        &[
            "tick{service=GracePeriodManager tick=1}",
            "orders=[1, 2, 3]",
            "publishing OrderReady",
        ],
        &["OrderReady received: order 1"],
        &["OrderReady received: order 3"],
        &[
            "tick{service=GracePeriodManager tick=",
            "orders=[6]",
            "publishing OrderReady",
        ],
        &["OrderReady received: order 6"],
        &["received SIGTERM"],
        &["application stopped"],
    ]);
    manager.assert_no_log_line(&["OrderReady received: order 4"]);
    manager.assert_no_log_line(&["OrderReady received: order 7"]);
    manager.assert_no_log_line(&["application stopped after failures"]);

    assert_eq!(
        database.statuses(),
        [
            (1, "ready"),
            (2, "ready"),
            (3, "ready"),
            (4, "submitted"),
            (5, "submitted"),
            (6, "ready"),
            (7, "cancelled"),
        ]
        .map(|(id, status)| (id, status.to_owned()))
    );
}
