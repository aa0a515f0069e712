#[hosted::queued(capacity = 10, full_mode = "block")]
async fn handle(item: u32) {
    let _ = item;
}

fn main() {}
