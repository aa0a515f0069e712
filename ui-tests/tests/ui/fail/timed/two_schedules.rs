#[hosted::timed(every = "5s", cron = "0 * * * * *")]
async fn heartbeat() {}

fn main() {}
