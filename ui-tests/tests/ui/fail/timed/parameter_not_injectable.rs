struct Config;

#[hosted::timed(every = "5s")]
async fn heartbeat(tick: hosted::Tick, config: Config) {
    let _ = (tick, config);
}

fn main() {}
