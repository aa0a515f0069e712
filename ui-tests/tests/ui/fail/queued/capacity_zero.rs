#[hosted::queued(capacity = 0)]
async fn handle(item: u32) {
    let _ = item;
}

fn main() {}
