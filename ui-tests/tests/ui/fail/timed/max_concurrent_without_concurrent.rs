#[hosted::timed(every = "1s", max_concurrent = 4)]
async fn heartbeat() {}

fn main() {}
