#[hosted::queued]
async fn send(stop: hosted::CancellationToken, email: String) {
    let _ = (stop, email);
}

fn main() {}
