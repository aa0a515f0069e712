//! A service that ignores its stop token for a minute under a shutdown budget of a minute, so
//! the test can send a second signal while the host is stopping.

use std::time::Duration;

use hosted::CancellationToken;

#[hosted::hosted_service]
async fn stubborn(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("stop requested; finishing a long job first");
    tokio::time::sleep(Duration::from_mins(1)).await;
}

fn main() {
    hosted::run!(|host| host.shutdown_timeout(Duration::from_mins(1)));
}
