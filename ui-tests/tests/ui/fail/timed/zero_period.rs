#[hosted::timed(every = "0s")]
async fn heartbeat() {}

fn main() {}
