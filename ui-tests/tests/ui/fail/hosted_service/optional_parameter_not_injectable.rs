struct Settings;

#[hosted::hosted_service]
async fn worker(stop: hosted::CancellationToken, settings: Option<Settings>) {
    let _ = (stop, settings);
}

fn main() {}
