#[hosted::hosted_service(every = "5s")]
async fn poll(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
