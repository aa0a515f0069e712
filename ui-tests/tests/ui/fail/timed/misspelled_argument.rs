#[hosted::timed(evrey = "5s")]
async fn heartbeat() {}

fn main() {}
