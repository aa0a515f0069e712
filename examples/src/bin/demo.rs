//! The demo: a few services start in their declared order, run, and stop in reverse order on
//! Ctrl+C (or SIGTERM).
//!
//! ```sh
//! cargo run -p hosted-examples --bin demo
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hosted::service::ServiceInfo;
use hosted::{ApplicationLifetime, BoxError, CancellationToken, HostedService, ServiceContext};

/// A shared resource with a start and a stop: opens first, closes last, and is injected into
/// the other services as `Arc<Counter>`.
#[hosted::hosted_service(order = -10)]
struct Counter {
    #[hosted(default)]
    beats: AtomicU64,
}

impl HostedService for Counter {
    async fn start(&self, cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!("{} is ready", cx.info().name());
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!(beats = self.beats.load(Ordering::Relaxed), "counter closed");
        Ok(())
    }
}

/// A background service: beats every second until the host stops it.
#[hosted::hosted_service(after = Counter)]
async fn heartbeat(stop: CancellationToken, counter: Arc<Counter>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = interval.tick() => {
                let beat = counter.beats.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(beat, "heartbeat");
            }
        }
    }
}

/// A service that fails twice, is restarted with a backoff each time, then runs until stopped.
#[hosted::hosted_service(on_failure = "restart", max_restarts = 3, backoff = "500ms")]
async fn flaky_connection(stop: CancellationToken) -> anyhow::Result<()> {
    static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
    let attempt = ATTEMPTS.fetch_add(1, Ordering::Relaxed) + 1;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if attempt <= 2 {
        anyhow::bail!("connection lost (attempt {attempt})");
    }
    tracing::info!(attempt, "connected");
    stop.cancelled().await;
    Ok(())
}

/// Watches the host's lifetime events.
#[hosted::hosted_service]
async fn announcer(lifetime: ApplicationLifetime, info: ServiceInfo) {
    lifetime.started().await;
    tracing::info!("{} saw every service start", info.name());
    lifetime.stopping().await;
    tracing::info!("{} saw the host begin to stop", info.name());
}

fn main() {
    hosted::run!();
}
