#[hosted::hosted_service(on_failure = "retry")]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
