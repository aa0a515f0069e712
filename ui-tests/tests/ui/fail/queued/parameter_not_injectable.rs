#[hosted::queued(capacity = 10)]
async fn handle(item: u32, limit: usize) {
    let _ = (item, limit);
}

fn main() {}
