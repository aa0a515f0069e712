//! A timer and a queue whose every option is valid alone, for configuration to combine badly:
//! `--check` and startup must refuse a combination with the keys and their sources, exit 78.

use hosted::CancellationToken;

#[hosted::timed(every = "1s")]
async fn pulse() {
    tracing::info!("pulse");
}

#[hosted::queued(capacity = 10, retries = 2, retry_backoff = "100ms")]
async fn mail(item: String) {
    tracing::info!(item, "mailed");
}

#[hosted::queued(capacity = 10)]
async fn audit(item: u64) {
    tracing::info!(item, "audited");
}

#[hosted::hosted_service]
async fn idle(stop: CancellationToken) {
    stop.cancelled().await;
}

fn main() {
    hosted::run!();
}
