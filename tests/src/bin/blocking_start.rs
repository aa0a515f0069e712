//! The first service's body blocks its thread, before its first await, until the file named by
//! `BLOCKING_START_RELEASE` exists. The next service and the "application started" line must not
//! wait for it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hosted::CancellationToken;

#[hosted::hosted_service(order = 1)]
async fn blocker(stop: CancellationToken) {
    let release = std::env::var_os("BLOCKING_START_RELEASE").map(PathBuf::from);
    let give_up = Instant::now() + Duration::from_mins(1);
    while !release.as_ref().is_some_and(|path| path.exists()) && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!("blocker released");
    stop.cancelled().await;
}

#[hosted::hosted_service(order = 2)]
async fn next(stop: CancellationToken) {
    tracing::info!("next is running");
    stop.cancelled().await;
}

fn main() {
    hosted::run!();
}
