// Known rough edge: an attribute macro cannot tell an associated function from a free one, so
// the items it emits beside the function are rejected inside the impl block.
struct Poller;

impl Poller {
    #[hosted::hosted_service]
    async fn run(stop: hosted::CancellationToken) {
        stop.cancelled().await;
    }
}

fn main() {
    let _ = Poller::run(hosted::CancellationToken::new());
}
