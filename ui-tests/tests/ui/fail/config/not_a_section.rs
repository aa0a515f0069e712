use hosted::{CancellationToken, Config};

/// Not a `Section`: it has no key to load it from.
struct Limits {
    max: u32,
}

#[hosted::hosted_service]
async fn guarded(limits: Config<Limits>, stop: CancellationToken) {
    let _ = limits.max;
    stop.cancelled().await;
}

fn main() {}
