#[hosted::timed(cron = "0 * * * * *", missed = "burst")]
async fn heartbeat() {}

fn main() {}
