#[hosted::queued]
async fn send(stop: hosted::CancellationToken) {
    let _ = stop;
}

fn main() {}
