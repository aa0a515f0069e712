#![deny(warnings)]

use std::sync::Arc;

use hosted::{BoxError, HostedService, ServiceContext};

#[hosted::hosted_service]
struct Marker;

impl HostedService for Marker {}

#[hosted::hosted_service(after = Marker)]
struct Pair(Arc<Marker>, #[hosted(default)] u64);

impl HostedService for Pair {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        let _ = (&self.0, self.1);
        Ok(())
    }
}

#[hosted::hosted_service]
struct Empty {}

impl HostedService for Empty {}

fn main() {}
