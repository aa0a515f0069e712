//! A service whose body panics once the host has started; another service that must still be
//! stopped.

use hosted::{ApplicationLifetime, CancellationToken};

#[hosted::hosted_service]
async fn parser(lifetime: ApplicationLifetime) {
    lifetime.started().await;
    let depth = 3;
    panic!("invariant broken at depth {depth}");
}

#[hosted::hosted_service]
async fn bystander(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("bystander done");
}

fn main() {
    hosted::run!();
}
