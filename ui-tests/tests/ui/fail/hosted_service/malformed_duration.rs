#[hosted::hosted_service(on_failure = "restart", backoff = "5 seconds")]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
