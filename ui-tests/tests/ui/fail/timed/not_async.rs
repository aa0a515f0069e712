#[hosted::timed(every = "5s")]
fn heartbeat(tick: hosted::Tick) {
    let _ = tick;
}

fn main() {}
