//! A service that ignores its stop token between two polite ones, under the budget given with
//! `--host.shutdown_timeout`: the process must exit within the budget plus a short grace, and the
//! polite services must still stop. With `STUBBORN_BLOCKING=1` the stubborn service blocks its
//! worker thread instead of awaiting.

use std::time::Duration;

use hosted::CancellationToken;

#[hosted::hosted_service(order = -1)]
async fn before(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("before stopped");
}

#[hosted::hosted_service]
async fn stubborn(_stop: CancellationToken) {
    tracing::info!("stubborn running");
    if std::env::var_os("STUBBORN_BLOCKING").is_some() {
        loop {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    loop {
        tokio::time::sleep(Duration::from_hours(1)).await;
    }
}

#[hosted::hosted_service(order = 1)]
async fn after(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("after stopped");
}

fn main() {
    hosted::run!();
}
