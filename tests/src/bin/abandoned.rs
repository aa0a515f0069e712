//! A service that blocks its worker thread forever and never looks at its stop token, under a
//! one-second shutdown budget: the host must abandon it, still stop the others, and the process
//! must still exit.
//! `early` starts before it and `late` after it, so each stops on a different side of it.

use std::time::Duration;

use hosted::{BoxError, CancellationToken, HostedService, ServiceContext};

#[hosted::hosted_service(order = -1)]
struct Early;

impl HostedService for Early {
    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!("early closed");
        Ok(())
    }
}

#[hosted::hosted_service]
async fn stuck(_stop: CancellationToken) {
    tokio::task::yield_now().await;
    tracing::info!("stuck: blocking the worker thread for good");
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[hosted::hosted_service(order = 1)]
async fn late(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("late done");
}

fn main() {
    hosted::run!(|host| host.shutdown_timeout(Duration::from_secs(1)));
}
