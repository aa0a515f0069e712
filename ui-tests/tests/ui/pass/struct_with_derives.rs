#![deny(warnings)]

use std::sync::atomic::{AtomicU64, Ordering};

use hosted::{BoxError, HostedService, ServiceContext};

// A derive on either side of the attribute: the `#[hosted(default)]` field option must neither
// trip the derive nor be left behind for rustc to reject.
#[derive(Debug)]
#[hosted::hosted_service(order = 1)]
struct Before {
    #[hosted(default)]
    hits: AtomicU64,
    stop: hosted::CancellationToken,
}

impl HostedService for Before {
    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        let _ = (self.hits.load(Ordering::Relaxed), self.stop.is_cancelled());
        Ok(())
    }
}

#[hosted::hosted_service(on_failure = "ignore")]
#[derive(Debug)]
struct After {
    #[hosted(default)]
    hits: AtomicU64,
    info: hosted::service::ServiceInfo,
}

impl HostedService for After {
    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        let _ = (self.hits.load(Ordering::Relaxed), self.info.name());
        Ok(())
    }
}

fn main() {}
