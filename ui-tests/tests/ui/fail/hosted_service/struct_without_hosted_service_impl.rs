#[hosted::hosted_service]
struct Cache {
    stop: hosted::CancellationToken,
}

fn main() {}
