#[hosted::timed(cron = "0 0 9 * * *", time_zone = "Europe/Paris")]
async fn heartbeat() {}

fn main() {}
