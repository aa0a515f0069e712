//! Services of every kind, order, `after` form and failure policy, for `--list`.

use hosted::{CancellationToken, HostedService};

#[hosted::hosted_service(order = -5)]
struct Store;

impl HostedService for Store {}

#[hosted::hosted_service(name = "mailer", on_failure = "ignore")]
async fn send_mail(stop: CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(
    after = [Store, "mailer"],
    on_failure = "restart",
    max_restarts = 3,
    backoff = "250ms",
    max_backoff = "4s"
)]
async fn importer(stop: CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(order = 7, on_failure = "stop")]
async fn reporter(stop: CancellationToken) {
    stop.cancelled().await;
}

fn main() {
    hosted::run!();
}
