#[hosted::hosted_service(backoff = "1s")]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
