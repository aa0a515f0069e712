#[hosted::hosted_service]
async fn counter(stop: hosted::CancellationToken) -> u32 {
    stop.cancelled().await;
    42
}

fn main() {}
