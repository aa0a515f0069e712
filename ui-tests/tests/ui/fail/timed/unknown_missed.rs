#[hosted::timed(every = "5s", missed = "catch_up")]
async fn heartbeat() {}

fn main() {}
