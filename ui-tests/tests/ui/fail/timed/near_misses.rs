#[hosted::timed(every = "5s", on_fail = "stop", onFailure = "stop", retry = 3, log = true)]
async fn poll() {}

fn main() {}
