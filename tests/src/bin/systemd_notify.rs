//! A worker with a timed, a queued and a background service, for the systemd test: it runs under
//! `NOTIFY_SOCKET` (and `WATCHDOG_USEC`) as systemd would start it.
//!
//! `SYSTEMD_TEST_FAULT` picks a fault, once the host has run for `SYSTEMD_TEST_AFTER_MS`
//! (default 1000): `block` blocks every runtime worker thread (a `std::thread::sleep` in as many
//! tasks as there are workers, `host.worker_threads`), `stuck` has the background service
//! declare itself stuck.

use std::time::Duration;

use hosted::service::ServiceInfo;
use hosted::{ApplicationLifetime, CancellationToken, Queue};

#[hosted::timed(every = "5s")]
async fn report() {
    tracing::info!("report written");
}

#[hosted::queued(capacity = 16, workers = 2)]
async fn work(item: u64, lifetime: ApplicationLifetime) {
    tracing::info!(item, "working until the host stops");
    lifetime.stopping().await;
}

#[hosted::hosted_service]
async fn feeder(
    queue: Queue<u64>,
    info: ServiceInfo,
    lifetime: ApplicationLifetime,
    stop: CancellationToken,
) {
    lifetime.started().await;
    for item in 0..3 {
        let _ = queue.send(item).await;
    }
    let after = std::env::var("SYSTEMD_TEST_AFTER_MS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1000);
    tokio::select! {
        () = stop.cancelled() => return,
        () = tokio::time::sleep(Duration::from_millis(after)) => {}
    }
    match std::env::var("SYSTEMD_TEST_FAULT").as_deref() {
        Ok("block") => {
            let workers = tokio::runtime::Handle::current().metrics().num_workers();
            tracing::warn!(workers, "blocking every worker thread");
            for _ in 0..workers {
                tokio::spawn(async { std::thread::sleep(Duration::from_hours(1)) });
            }
            std::thread::sleep(Duration::from_hours(1));
        }
        Ok("stuck") => info.activity().declare_stuck("the feed has gone quiet"),
        _ => {}
    }
    stop.cancelled().await;
}

fn main() {
    hosted::run!();
}
