//! Seed 003's grace-period manager, against a real SQLite database.
//!
//! An order may be cancelled during a grace period after it is placed. Every second, a timed
//! service looks for orders whose grace period has ended, marks them ready, and publishes an
//! `OrderReady` integration event on an in-process event bus; another service consumes the
//! events and logs them. .NET writes the polling loop by hand in a `BackgroundService`
//! (`while (!stoppingToken.IsCancellationRequested) { ...; await Task.Delay(...) }`), which
//! drifts by the time each check takes; here the schedule is declared, and each check runs in a
//! span that carries the tick's number.
//!
//! ```sh
//! cargo run -p hosted-examples --bin grace_period_manager
//! ```
//!
//! Environment: `GRACE_PERIOD_DB` (database file, default `grace_period.db`, created with a few
//! demo orders if missing), `GRACE_PERIOD_SECONDS` (default 60).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hosted::{BoxError, CancellationToken, HostedService, ServiceContext, Tick};
use rusqlite::Connection;
use tokio::sync::broadcast;

/// Read once at startup.
#[derive(Debug)]
struct Settings {
    database: PathBuf,
    grace_period: Duration,
}

#[hosted::singleton]
fn settings() -> anyhow::Result<Settings> {
    let grace_period = match std::env::var("GRACE_PERIOD_SECONDS") {
        Ok(text) => text
            .parse()
            .map_err(|_| anyhow::anyhow!("GRACE_PERIOD_SECONDS={text:?} is not a number"))?,
        Err(_) => 60,
    };
    Ok(Settings {
        database: std::env::var_os("GRACE_PERIOD_DB")
            .map_or_else(|| PathBuf::from("grace_period.db"), PathBuf::from),
        grace_period: Duration::from_secs(grace_period),
    })
}

/// The orders table, created (with demo orders when empty) before any service starts.
struct Orders {
    connection: Mutex<Connection>,
}

#[hosted::singleton]
fn orders(settings: Arc<Settings>) -> anyhow::Result<Orders> {
    let connection = Connection::open(&settings.database)?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS orders (
             id INTEGER PRIMARY KEY,
             placed_at_ms INTEGER NOT NULL,
             status TEXT NOT NULL DEFAULT 'submitted'
         )",
    )?;
    let empty: bool =
        connection.query_row("SELECT COUNT(*) = 0 FROM orders", [], |row| row.get(0))?;
    if empty {
        // Three orders whose grace period has ended, two still in it.
        let now = now_ms();
        let minute = 60_000;
        for placed_at in [
            now - 10 * minute,
            now - 5 * minute,
            now - 2 * minute,
            now,
            now,
        ] {
            connection.execute("INSERT INTO orders (placed_at_ms) VALUES (?1)", [placed_at])?;
        }
        tracing::info!(database = %settings.database.display(), "created demo orders");
    }
    Ok(Orders {
        connection: Mutex::new(connection),
    })
}

impl Orders {
    /// Marks the submitted orders placed before `cutoff_ms` as ready; returns their ids.
    fn mark_ready(&self, cutoff_ms: i64) -> rusqlite::Result<Vec<i64>> {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut statement = connection.prepare(
            "UPDATE orders SET status = 'ready'
             WHERE status = 'submitted' AND placed_at_ms <= ?1
             RETURNING id",
        )?;
        let mut ids = statement
            .query_map([cutoff_ms], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        ids.sort_unstable();
        Ok(ids)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The integration event: an order's grace period ended, it can be processed.
#[derive(Clone, Debug)]
struct OrderReady {
    order_id: i64,
}

/// An in-process event bus: every subscriber receives every event published after it
/// subscribed.
#[hosted::singleton]
struct EventBus {
    #[hosted(default)]
    channel: Channel,
}

/// The bus's broadcast channel, with room for 1,024 events per subscriber.
struct Channel(broadcast::Sender<OrderReady>);

impl Default for Channel {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

impl EventBus {
    fn publish(&self, event: OrderReady) {
        // No subscriber yet is not an error for a bus: the event is simply not delivered.
        let _ = self.channel.0.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<OrderReady> {
        self.channel.0.subscribe()
    }
}

/// Consumes `OrderReady` events. It subscribes in `start`, which the host runs before it
/// starts the manager (`after = OrderReadyHandler` below), so no event is missed.
#[hosted::hosted_service]
struct OrderReadyHandler {
    bus: Arc<EventBus>,
    #[hosted(default)]
    events: Mutex<Option<broadcast::Receiver<OrderReady>>>,
}

impl HostedService for OrderReadyHandler {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        *self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(self.bus.subscribe());
        Ok(())
    }

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        let Some(mut events) = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                event = events.recv() => match event {
                    Ok(OrderReady { order_id }) => {
                        tracing::info!(order_id, "OrderReady received: order {order_id} goes to validation");
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the handler fell behind; events were lost");
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}

/// Every second: the orders whose grace period has ended are marked ready, and an `OrderReady`
/// event is published for each. A failed check is logged with its tick number and the next one
/// tries again (the default policy of timers).
#[hosted::timed(every = "1s", after = OrderReadyHandler, name = "GracePeriodManager")]
async fn check_confirmed_grace_period_orders(
    orders: Arc<Orders>,
    bus: Arc<EventBus>,
    settings: Arc<Settings>,
    tick: Tick,
) -> anyhow::Result<()> {
    let grace_ms = i64::try_from(settings.grace_period.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(grace_ms);
    // SQLite blocks: off the async workers.
    let ready = tokio::task::spawn_blocking(move || orders.mark_ready(cutoff)).await??;
    if !ready.is_empty() {
        tracing::info!(
            tick = tick.number(),
            orders = ?ready,
            "grace period ended; publishing OrderReady"
        );
    }
    for order_id in ready {
        bus.publish(OrderReady { order_id });
    }
    Ok(())
}

fn main() {
    hosted::run!();
}
