//! A web host with a slow route and a hub, beside a background service: for the stop-order
//! tests (SIGTERM during an open WebSocket and an in-flight request).

use std::time::Duration;

use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use hosted::CancellationToken;
use hosted::web::{HubUpgrade, Routes};

#[derive(serde::Deserialize)]
struct Who {
    user: String,
}

async fn slow() -> &'static str {
    tracing::info!("slow request started");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tracing::info!("slow request finished");
    "slow done"
}

async fn hub(upgrade: HubUpgrade, Query(who): Query<Who>) -> Response {
    upgrade.user(who.user).accept()
}

#[hosted::routes]
fn api() -> Routes {
    Routes::new()
        .route("/slow", get(slow))
        .route("/hub", get(hub))
}

/// Stops after the web server: the other services stop in reverse order once it is done.
#[hosted::hosted_service]
async fn worker(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("worker stopping");
}

fn main() {
    hosted::run!();
}
