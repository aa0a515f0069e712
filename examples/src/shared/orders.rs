//! Seed 003's grace-period manager, written once and compiled unchanged into two binaries: a
//! plain worker (`order_worker`) and a web host (`order_web`). Orders placed wait out a grace
//! period (during which a customer could still cancel), then a timed service confirms them and
//! publishes an "order confirmed" integration event.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hosted::{Config, Section};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// The `orders` configuration section.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct OrderSettings {
    /// How long an order may still be cancelled, in milliseconds. Default 1000.
    pub(crate) grace_ms: u64,
}

impl Default for OrderSettings {
    fn default() -> Self {
        Self { grace_ms: 1000 }
    }
}

impl Section for OrderSettings {
    const KEY: &'static str = "orders";
}

/// One order, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Order {
    pub(crate) id: u64,
    pub(crate) confirmed: bool,
}

/// The orders, shared by whoever places them and the grace-period manager.
#[hosted::singleton]
#[derive(Debug)]
pub(crate) struct Orders {
    #[hosted(default)]
    placed: Mutex<Vec<(Order, Instant)>>,
}

impl Orders {
    /// Places an order; returns its number.
    pub(crate) fn place(&self) -> u64 {
        let mut placed = self.placed.lock().unwrap_or_else(PoisonError::into_inner);
        let id = placed.len() as u64 + 1;
        placed.push((
            Order {
                id,
                confirmed: false,
            },
            Instant::now(),
        ));
        tracing::info!(order = id, "order placed");
        id
    }

    /// Every order.
    pub(crate) fn list(&self) -> Vec<Order> {
        self.placed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(order, _)| order.clone())
            .collect()
    }
}

/// The seed's `GracePeriodManagerService`: polls the orders and confirms those whose grace
/// period is over, publishing an integration event for each (logged here; a bus in the seed).
#[hosted::timed(every = "200ms", name = "orders::grace_period")]
pub(crate) async fn grace_period(orders: Arc<Orders>, settings: Config<OrderSettings>) {
    let grace = Duration::from_millis(settings.grace_ms);
    let mut placed = orders.placed.lock().unwrap_or_else(PoisonError::into_inner);
    for (order, at) in placed.iter_mut() {
        if !order.confirmed && at.elapsed() >= grace {
            order.confirmed = true;
            tracing::info!(
                order = order.id,
                "order confirmed: grace period over, event published"
            );
        }
    }
}
