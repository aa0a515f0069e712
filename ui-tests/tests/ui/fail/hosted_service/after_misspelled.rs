#[hosted::hosted_service]
async fn database(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(after = databse)]
async fn worker(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

fn main() {}
