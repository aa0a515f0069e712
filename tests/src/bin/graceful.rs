//! Three services that start in a declared order and stop cleanly, in reverse, on SIGTERM or
//! SIGINT.

use std::time::Duration;

use hosted::{BoxError, CancellationToken, HostedService, ServiceContext};

/// Opens first and closes last.
#[hosted::hosted_service(order = -1)]
struct Database;

impl HostedService for Database {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!("database open");
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!("database closed");
        Ok(())
    }
}

#[hosted::hosted_service(after = Database)]
async fn cache(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("cache flushed");
}

#[hosted::hosted_service(after = cache)]
async fn web(stop: CancellationToken) {
    stop.cancelled().await;
    // Still graceful: a little work after the stop, which the host waits for.
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracing::info!("web drained");
}

fn main() {
    hosted::run!();
}
