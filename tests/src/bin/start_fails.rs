//! The third of four services fails to start: the two before it are stopped again, in reverse,
//! and the one after it never starts.

use hosted::{BoxError, CancellationToken, HostedService, ServiceContext};

#[hosted::hosted_service(order = 1)]
struct First;

impl HostedService for First {
    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!("first closed");
        Ok(())
    }
}

#[hosted::hosted_service(order = 2)]
async fn second(stop: CancellationToken) {
    stop.cancelled().await;
    tracing::info!("second done");
}

#[hosted::hosted_service(order = 3)]
struct Broken;

impl HostedService for Broken {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        Err("port 8080 is taken".into())
    }

    async fn execute(&self, _stop: CancellationToken) -> Result<(), BoxError> {
        tracing::info!("broken body ran");
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!("broken stop ran");
        Ok(())
    }
}

#[hosted::hosted_service(order = 4)]
struct Later;

impl HostedService for Later {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!("later start ran");
        Ok(())
    }

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        tracing::info!("later body ran");
        stop.cancelled().await;
        Ok(())
    }

    async fn stop(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        tracing::info!("later stop ran");
        Ok(())
    }
}

fn main() {
    hosted::run!();
}
