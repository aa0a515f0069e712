#[hosted::hosted_service(after = poll)]
async fn poll(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
