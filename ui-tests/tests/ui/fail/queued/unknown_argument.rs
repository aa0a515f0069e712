#[hosted::queued(capacity = 10, worker = 4)]
async fn handle(item: u32) {
    let _ = item;
}

fn main() {}
