#[hosted::hosted_service]
async fn poll(tick: hosted::Tick) {
    let _ = tick;
}

fn main() {}
