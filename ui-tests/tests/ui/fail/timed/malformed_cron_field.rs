#[hosted::timed(cron = "0 61 * * * *")]
async fn heartbeat() {}

fn main() {}
