#[hosted::hosted_service(on_failure = "restart", backoff = "10s", max_backoff = "5s")]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
