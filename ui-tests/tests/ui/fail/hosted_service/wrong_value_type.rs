#[hosted::hosted_service(order = "high")]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
