#[hosted::timed(every = "5s", overlap = "queue")]
async fn heartbeat() {}

fn main() {}
