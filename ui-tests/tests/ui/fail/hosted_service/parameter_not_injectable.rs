struct Settings;

#[hosted::hosted_service]
async fn worker(stop: hosted::CancellationToken, settings: Settings) {
    let _ = settings;
    stop.cancelled().await;
}

fn main() {}
