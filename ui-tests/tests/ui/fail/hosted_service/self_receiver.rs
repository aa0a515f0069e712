struct Poller;

impl Poller {
    #[hosted::hosted_service]
    async fn run(&self, stop: hosted::CancellationToken) {
        stop.cancelled().await;
    }
}

fn main() {
    let _ = Poller.run(hosted::CancellationToken::new());
}
