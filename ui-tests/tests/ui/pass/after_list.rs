#![deny(warnings)]

use hosted::HostedService;

#[hosted::hosted_service]
async fn first(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service]
struct Second;

impl HostedService for Second {}

mod nested {
    #[hosted::hosted_service(name = "third")]
    pub(crate) async fn third(stop: hosted::CancellationToken) {
        stop.cancelled().await;
    }
}

#[hosted::hosted_service(after = [first, "third"])]
async fn fourth(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(after = [Second, nested::third, "first"])]
async fn fifth(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(after = first)]
struct Sixth;

impl HostedService for Sixth {}

fn main() {}
