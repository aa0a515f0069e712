//! A service whose body returns an error once the host has started; another service that must
//! still be stopped.

use hosted::{ApplicationLifetime, CancellationToken};

#[hosted::hosted_service]
async fn writer(lifetime: ApplicationLifetime) -> anyhow::Result<()> {
    lifetime.started().await;
    Err(anyhow::anyhow!("disk full").context("cannot write the journal"))
}

#[hosted::hosted_service]
async fn bystander(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("bystander done");
}

fn main() {
    hosted::run!();
}
