#[hosted::timed(delay = "-5s")]
async fn heartbeat() {}

fn main() {}
