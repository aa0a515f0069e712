//! A one-shot job: once every service has started it does its work and asks the host to stop.

use hosted::{ApplicationLifetime, CancellationToken};

#[hosted::hosted_service]
async fn job(lifetime: ApplicationLifetime) {
    lifetime.started().await;
    tracing::info!("job done; asking the host to stop");
    lifetime.stop_application();
}

#[hosted::hosted_service]
async fn server(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("server closed");
}

fn main() {
    hosted::run!();
}
