#[hosted::timed(delay = "5s", once_per_cluster, jitter = "1s")]
async fn confirm() {}

#[hosted::timed(every = "5s", backfill = "10m")]
async fn alone() {}

#[hosted::timed(every = "5s", once_per_cluster, backfill = "0s")]
async fn empty_window() {}

fn main() {}
