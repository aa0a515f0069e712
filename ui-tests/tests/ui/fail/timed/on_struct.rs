#[hosted::timed(every = "5s")]
struct Heartbeat;

fn main() {}
