use std::sync::Arc;
use hosted::CancellationToken;
struct Database;
#[hosted::hosted_service]
async fn reporter(db: Arc<Databse>, stop: CancellationToken) {
    let _ = db;
    stop.cancelled().await;
}
fn main() {}
