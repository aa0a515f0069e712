//! Seed 003, plain host, without the web feature at all: the same `orders.rs` as the
//! `order_worker` and `order_web` examples, in a package whose `hosted` has no `web` feature.
//! Built alone (`cargo run -p hosted-plain-worker`), axum is not even in its dependency graph;
//! `.ci/run` checks that. (Inside `cargo test --workspace`, Cargo unifies features across the
//! workspace, so there the web code is compiled but, with no routes, no server runs.)

#[path = "../../src/shared/orders.rs"]
mod orders;

use std::sync::Arc;

/// Places two orders at startup, standing in for a message queue.
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
