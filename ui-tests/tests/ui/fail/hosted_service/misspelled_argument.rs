#[hosted::hosted_service(ordr = 5)]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
