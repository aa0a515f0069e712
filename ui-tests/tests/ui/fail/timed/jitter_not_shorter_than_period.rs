#[hosted::timed(every = "1s", jitter = "1s")]
async fn heartbeat() {}

fn main() {}
