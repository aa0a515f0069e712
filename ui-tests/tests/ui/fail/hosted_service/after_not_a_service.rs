async fn helper() {}

#[hosted::hosted_service(after = helper)]
async fn worker(stop: hosted::CancellationToken) {
    helper().await;
    stop.cancelled().await;
}

fn main() {}
