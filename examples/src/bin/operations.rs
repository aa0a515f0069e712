//! What an operator sees: a worker with a timer, a queue fed by a producer, the web host with
//! `/metrics`, and the dashboard at `/hosted`, behind the application's own authentication.
//!
//! ```sh
//! cargo run -p hosted-examples --bin operations -- --web.dashboard.enabled=true
//! # then open http://127.0.0.1:8080/login and http://127.0.0.1:8080/hosted
//! ```
//!
//! The authentication is this application's: a session cookie set by `/login` (a real one would
//! check a password first) or HTTP Basic for scripts, both through one [`Authorizer`].

use std::pin::Pin;
use std::time::Duration;

use axum::http::header;
use axum::http::request::Parts;
use axum::routing::get;
use hosted::web::{Authorized, Authorizer, BasicAuth, Denied, Routes};
use hosted::{CancellationToken, Queue};

/// The demo's session: what `/login` sets.
const SESSION: &str = "operator=demo-session";

/// The application's authentication: its session cookie, or Basic `ops:ops` for scripts.
#[hosted::singleton(as = dyn Authorizer)]
struct OperatorSession;

impl Authorizer for OperatorSession {
    fn authorize<'a>(
        &'a self,
        request: &'a Parts,
    ) -> Pin<Box<dyn Future<Output = Result<(), Denied>> + Send + 'a>> {
        let cookie = request
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .any(|pair| pair.trim() == SESSION);
        Box::pin(async move {
            if cookie {
                return Ok(());
            }
            if request.headers.contains_key(header::AUTHORIZATION) {
                return BasicAuth::new("ops", "ops").authorize(request).await;
            }
            // No Basic challenge for a browser without the session: it would prompt for a
            // password instead of going to the login page.
            Err(Denied::unauthorized("Session realm=\"operators\""))
        })
    }
}

#[hosted::routes]
fn pages() -> Routes {
    Routes::new()
        .route(
            "/login",
            get(|| async {
                (
                    [(
                        header::SET_COOKIE,
                        format!("{SESSION}; Path=/; HttpOnly; SameSite=Strict"),
                    )],
                    "signed in\n",
                )
            }),
        )
        .route("/whoami", get(|_: Authorized| async { "an operator\n" }))
}

/// A heartbeat, for the timers' panel.
#[hosted::timed(every = "1s")]
async fn heartbeat() {}

/// The work, for the queues' panel: every tenth item fails for good.
#[hosted::queued(capacity = 100, retries = 1, retry_backoff = "10ms")]
async fn resize(image: u64) -> Result<(), hosted::BoxError> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    if image.is_multiple_of(10) {
        return Err(format!("image {image} is corrupt").into());
    }
    Ok(())
}

/// Feeds the queue a few items a second.
#[hosted::hosted_service]
async fn uploads(queue: Queue<u64>, stop: CancellationToken) {
    for image in 1_u64.. {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(150)) => {}
        }
        let _ = queue.try_send(image);
    }
}

fn main() {
    hosted::run!();
}
