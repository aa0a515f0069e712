#[hosted::hosted_service]
async fn counter(stop: hosted::CancellationToken) -> Result<(), u32> {
    stop.cancelled().await;
    Ok(())
}

fn main() {}
