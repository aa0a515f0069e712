//! `hosted::run!()` called inside a tokio runtime, a mistake a `#[tokio::main]` habit makes.

#[hosted::hosted_service]
async fn idle(stop: hosted::CancellationToken) {
    stop.cancelled().await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    hosted::run!();
}
