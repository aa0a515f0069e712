#[hosted::timed(delay = "5s", overlap = "skip")]
async fn heartbeat() {}

fn main() {}
