#[hosted::timed(every = "1.5s")]
async fn heartbeat() {}

fn main() {}
