#[hosted::hosted_service(name = "worker", order = 1, name = "other")]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
