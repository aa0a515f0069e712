struct Database;

#[hosted::hosted_service(after = Database)]
async fn worker(stop: hosted::CancellationToken) {
    let _ = Database;
    stop.cancelled().await;
}

fn main() {}
