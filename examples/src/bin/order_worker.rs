//! Seed 003, plain host: the grace-period manager in a worker with no web server — no routes,
//! so no listener, no port. Orders come from a background service here.
//!
//! ```sh
//! cargo run -p hosted-examples --bin order_worker
//! ```

#[path = "../shared/orders.rs"]
mod orders;

use std::sync::Arc;

/// Stands in for the message queue a worker would read orders from: places two at startup.
#[hosted::hosted_service]
async fn incoming(orders: Arc<orders::Orders>, stop: hosted::CancellationToken) {
    orders.place();
    orders.place();
    stop.cancelled().await;
    tracing::info!(orders = ?orders.list(), "stopping");
}

fn main() {
    hosted::run!();
}
