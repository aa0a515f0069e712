#[hosted::timed(every = "5s")]
#[hosted::timed(every = "1m")]
async fn poll() {}

fn main() {}
