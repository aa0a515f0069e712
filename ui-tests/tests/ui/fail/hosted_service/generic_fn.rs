#[hosted::hosted_service]
async fn worker<T: Default>(stop: hosted::CancellationToken) {
    let _ = T::default();
    stop.cancelled().await;
}

fn main() {}
