#[hosted::timed(cron = "0 0 12 30 FEB *")]
async fn heartbeat() {}

fn main() {}
