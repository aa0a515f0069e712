#[hosted::queued(capacity = 10)]
struct Handler;

fn main() {}
