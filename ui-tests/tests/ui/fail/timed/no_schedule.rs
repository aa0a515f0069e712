#[hosted::timed]
async fn heartbeat() {}

fn main() {}
