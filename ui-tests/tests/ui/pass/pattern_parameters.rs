#![deny(warnings)]

use hosted::{CancellationToken, Lifetime, ServiceInfo};

#[hosted::hosted_service]
async fn patterns(_: Lifetime, mut stop: CancellationToken, _info: ServiceInfo) {
    stop = stop.child_token();
    stop.cancelled().await;
}

#[hosted::hosted_service]
async fn no_parameters() {}

fn main() {}
