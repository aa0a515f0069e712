use std::cell::Cell;
use std::sync::Arc;

#[hosted::hosted_service]
async fn worker(stop: hosted::CancellationToken, counter: Arc<Cell<u32>>) {
    let _ = (stop, counter);
}

fn main() {}
