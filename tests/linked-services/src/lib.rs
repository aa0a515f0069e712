//! A library crate whose services are registered before `main`. A binary that never names
//! this crate would lose them at link time; `hosted::run!(link = [linked_services])` keeps them.

/// Logs a line the process tests look for, then waits for the stop.
#[hosted::hosted_service(name = "linked-services::greeter")]
async fn greeter(stop: hosted::CancellationToken) {
    tracing::info!("greeting from a linked library crate");
    stop.cancelled().await;
}
