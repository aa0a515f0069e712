#[hosted::queued(capacity = "100", retries = -1, dead_letter = 5)]
async fn handle(item: u32) {
    let _ = item;
}

fn main() {}
