#![deny(warnings)]

#[hosted::hosted_service]
async fn database(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(
    name = "worker",
    order = -5,
    after = [database, "cache"],
    on_failure = "restart",
    max_restarts = 3,
    backoff = "250ms",
    max_backoff = "1m30s",
    crate = "::hosted",
)]
async fn worker(stop: hosted::CancellationToken) -> anyhow::Result<()> {
    stop.cancelled().await;
    Ok(())
}

fn main() {}
