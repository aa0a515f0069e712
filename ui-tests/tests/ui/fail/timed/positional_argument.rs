#[hosted::timed("5s")]
async fn heartbeat() {}

#[hosted::timed("0 */5 * * * *")]
async fn report() {}

fn main() {}
