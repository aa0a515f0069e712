#[hosted::queued(capacity = 10)]
fn handle(item: u32) {
    let _ = item;
}

fn main() {}
