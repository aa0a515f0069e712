//! Seed 003's grace-period manager made real on PostgreSQL, for any number of replicas.
//!
//! Orders live in a PostgreSQL table. Every second, on one replica of the cluster (a
//! once-per-cluster timer), the orders whose grace period has ended are marked confirmed, and an
//! `OrderConfirmed` integration event is enqueued **in the same transaction** (the outbox
//! pattern: the event exists if and only if the confirmation commits). A durable queued service,
//! on whichever replica claims each event, publishes it to the `published_events` table, at
//! least once: an event whose replica dies mid-publish is published again by another.
//!
//! ```sh
//! scripts/durable-example.sh          # a throwaway server, two replicas, demo orders
//! HOSTED_DURABLE__URL=postgres://... cargo run -p hosted-examples --bin grace_period_durable
//! ```
//!
//! Configuration: `[durable]` (the store, see `hosted::durable`), `[grace_period] seconds = 60`
//! (`HOSTED_GRACE_PERIOD__SECONDS`), `demo_orders = true` to insert a few orders into an empty
//! table.

use hosted::durable::{DurableConfig, JobTransaction};
use hosted::{Config, Queue, Section, Tick};
use serde::{Deserialize, Serialize};
use sqlx_core::query::query;
use sqlx_core::row::Row as _;
use sqlx_postgres::Postgres;

/// The `[grace_period]` section.
#[derive(Debug, Deserialize)]
struct GracePeriod {
    /// How long after it is placed an order may still be cancelled.
    #[serde(default = "default_seconds")]
    seconds: u32,
    /// Whether to insert a few demo orders into an empty table.
    #[serde(default)]
    demo_orders: bool,
}

fn default_seconds() -> u32 {
    60
}

impl Section for GracePeriod {
    const KEY: &'static str = "grace_period";
}

/// The integration event: an order's grace period ended; it goes on to payment.
#[derive(Debug, Serialize, Deserialize)]
struct OrderConfirmed {
    order_id: i64,
}

/// The application's tables, created before any service starts, once across replicas.
struct Tables;

#[hosted::singleton]
async fn tables(
    store: Config<DurableConfig>,
    grace: Config<GracePeriod>,
) -> anyhow::Result<Tables> {
    let backend = store.backend().await?;
    let mut tx = backend.pool().begin().await?;
    query::<Postgres>("SELECT pg_advisory_xact_lock(hashtext('grace-period-example'))")
        .execute(&mut *tx)
        .await?;
    sqlx_core::executor::Executor::execute(
        &mut *tx,
        "CREATE TABLE IF NOT EXISTS orders (
             id bigserial PRIMARY KEY,
             placed_at timestamptz NOT NULL DEFAULT now(),
             status text NOT NULL DEFAULT 'submitted',
             confirmed_at timestamptz
         );
         CREATE TABLE IF NOT EXISTS published_events (
             order_id bigint NOT NULL,
             job bigint NOT NULL,
             published_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    if grace.demo_orders {
        let empty: bool = query::<Postgres>("SELECT count(*) = 0 FROM orders")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if empty {
            // Three orders past their grace period, two in it.
            query::<Postgres>(
                "INSERT INTO orders (placed_at) SELECT now() - make_interval(secs => s) \
                 FROM unnest(ARRAY[600, 300, 120, 0, 0]::float8[]) s",
            )
            .execute(&mut *tx)
            .await?;
            tracing::info!("created demo orders");
        }
    }
    tx.commit().await?;
    Ok(Tables)
}

/// Every second, on one replica: confirms the orders whose grace period has ended and enqueues
/// their events in the same transaction.
#[hosted::timed(every = "1s", once_per_cluster, name = "GracePeriodManager")]
async fn confirm_orders(
    _tables: std::sync::Arc<Tables>,
    grace: Config<GracePeriod>,
    events: Queue<OrderConfirmed>,
    tick: Tick,
) -> anyhow::Result<()> {
    let Some(backend) = events.durable_backend() else {
        anyhow::bail!("the events queue is not durable");
    };
    let mut tx = backend.pool().begin().await?;
    let confirmed: Vec<i64> = query::<Postgres>(
        "UPDATE orders SET status = 'confirmed', confirmed_at = now() \
         WHERE status = 'submitted' AND placed_at <= now() - make_interval(secs => $1) \
         RETURNING id",
    )
    .bind(f64::from(grace.seconds))
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| row.try_get(0))
    .collect::<Result<_, _>>()?;
    for &order_id in &confirmed {
        events
            .send_in(&mut tx, OrderConfirmed { order_id })
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
    }
    tx.commit().await?;
    if !confirmed.is_empty() {
        tracing::info!(tick = tick.number(), orders = ?confirmed, "grace period ended: orders confirmed");
    }
    Ok(())
}

/// Publishes each event, on whichever replica claims it; the row and the job's completion
/// commit together.
#[hosted::queued(durable, workers = 4, retries = 10, retry_backoff = "200ms")]
async fn publish(
    event: OrderConfirmed,
    job: hosted::durable::Job,
    tx: JobTransaction,
) -> anyhow::Result<()> {
    let mut connection = tx.connection().await?;
    query::<Postgres>("INSERT INTO published_events (order_id, job) VALUES ($1, $2)")
        .bind(event.order_id)
        .bind(job.id())
        .execute(&mut *connection)
        .await?;
    tracing::info!(order_id = event.order_id, "OrderConfirmed published");
    Ok(())
}

fn main() {
    hosted::run!();
}
