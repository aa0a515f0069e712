//! A service that starts after a name no service has: the host cannot be built.

use hosted::CancellationToken;

#[hosted::hosted_service(after = "databse")]
async fn api(stop: CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(name = "database")]
async fn database(stop: CancellationToken) {
    stop.cancelled().await;
}

fn main() {
    hosted::run!();
}
