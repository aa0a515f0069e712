#[hosted::hosted_service]
fn poller(stop: hosted::CancellationToken) {
    let _ = stop;
}

fn main() {}
