#[hosted::timed(cron = "*/5 * * * *")]
async fn heartbeat() {}

fn main() {}
