#[hosted::timed(every = "0s", overlap = "sometimes", jitter = "5 s")]
async fn heartbeat() {}

fn main() {}
