#[hosted::timed(every = "5sec")]
async fn heartbeat() {}

fn main() {}
