#[hosted::queued(capacity = 10, retry_backoff = "1s", timeout = "0s")]
async fn handle(item: u32) {
    let _ = item;
}

fn main() {}
