#[hosted::hosted_service(on_failure = restart)]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
