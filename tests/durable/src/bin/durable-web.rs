//! A web replica for the durable web tests: a hub at `/hub`, `POST /broadcast` sending its body
//! to every client of the hub (of every replica, with `durable.hub_backplane = true`), one
//! durable queue `pings`, so the store is the `[durable]` section's (`HOSTED_DURABLE__*`) and
//! `/readyz` reports it (`services.pings.enabled = false` leaves a web application with
//! `[durable]` and no durable queue), and the dashboard's credentials: Basic `ops:secret`.

use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use hosted::web::{Authorizer, BasicAuth, Denied, Hub, HubUpgrade, Injected, Routes};
use serde::{Deserialize, Serialize};

/// What `/broadcast` sends.
#[derive(Serialize)]
struct Broadcast {
    text: String,
}

/// A durable queue's item: its attempts fail until `fail_until_ms` (milliseconds since the Unix
/// epoch), then succeed.
#[derive(Serialize, Deserialize)]
struct Ping {
    fail_until_ms: u128,
}

#[hosted::queued(durable, name = "pings")]
async fn pings(ping: Ping) -> Result<(), hosted::BoxError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    if now < ping.fail_until_ms {
        return Err("not yet".into());
    }
    Ok(())
}

/// The operators: HTTP Basic `ops:secret`.
#[hosted::singleton(as = dyn Authorizer)]
struct Operators;

impl Authorizer for Operators {
    fn authorize<'a>(
        &'a self,
        request: &'a Parts,
    ) -> Pin<Box<dyn Future<Output = Result<(), Denied>> + Send + 'a>> {
        Box::pin(async move { BasicAuth::new("ops", "secret").authorize(request).await })
    }
}

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
