#[hosted::queued(capacity = 10)]
async fn handle() {}

fn main() {}
