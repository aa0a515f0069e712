#[hosted::hosted_service]
async fn worker(stop: &hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
