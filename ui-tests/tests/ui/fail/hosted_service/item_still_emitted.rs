// Only the argument is reported: the function is still emitted, so `main` can call it.
#[hosted::hosted_service(retries = 3)]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {
    let _future = worker(hosted::CancellationToken::new());
}
