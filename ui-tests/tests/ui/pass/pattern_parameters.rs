#![deny(warnings)]

use hosted::{CancellationToken, ApplicationLifetime};
use hosted::service::ServiceInfo;

#[hosted::hosted_service]
async fn patterns(_: ApplicationLifetime, mut stop: CancellationToken, _info: ServiceInfo) {
    stop = stop.child_token();
    stop.cancelled().await;
}

#[hosted::hosted_service]
async fn no_parameters() {}

fn main() {}
