#[hosted::timed(every = 7)]
async fn poll() {}

fn main() {}
