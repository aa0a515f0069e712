//! A web replica for the durable web tests: a hub at `/hub`, `POST /broadcast` sending its body
//! to every client of the hub (of every replica, with `durable.hub_backplane = true`), and one
//! durable queue, so the store is the `[durable]` section's (`HOSTED_DURABLE__*`) and `/readyz`
//! reports it.

use axum::response::Response;
use axum::routing::{get, post};
use hosted::web::{Hub, HubUpgrade, Injected, Routes};
use serde::{Deserialize, Serialize};

/// What `/broadcast` sends.
#[derive(Serialize)]
struct Broadcast {
    text: String,
}

/// A durable queue's item; nothing sends one.
#[derive(Serialize, Deserialize)]
struct Ping;

#[hosted::queued(durable, name = "pings")]
async fn pings(_ping: Ping) {}

async fn hub(upgrade: HubUpgrade) -> Response {
    upgrade.accept()
}

async fn broadcast(Injected(hub): Injected<Hub<Broadcast>>, text: String) -> &'static str {
    match hub.send_all(&Broadcast { text }) {
        Ok(()) => "sent\n",
        Err(_) => "not sent\n",
    }
}

#[hosted::routes]
fn routes() -> Routes {
    Routes::new()
        .route("/hub", get(hub))
        .route("/broadcast", post(broadcast))
}

fn main() {
    hosted::run!();
}
