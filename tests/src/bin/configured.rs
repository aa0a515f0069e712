//! A binary configured from files, environment variables and arguments: a typed section with a
//! secret, a service that can be turned off, and a restart policy to override.

use hosted::{CancellationToken, Config, Secret, Section};

#[derive(Debug, serde::Deserialize)]
struct Greeting {
    text: String,
    #[serde(default)]
    token: Secret<String>,
}

impl Section for Greeting {
    const KEY: &'static str = "greeting";
    const SECRETS: &'static [&'static str] = &["token"];
}

#[hosted::hosted_service(on_failure = "restart", max_restarts = 2)]
async fn greeter(greeting: Config<Greeting>, stop: CancellationToken) {
    tracing::info!(token = %greeting.token, "greeting: {}", greeting.text);
    stop.cancelled().await;
}

#[hosted::hosted_service]
async fn optional(stop: CancellationToken) {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(workers, "optional runs");
    stop.cancelled().await;
}

fn main() {
    hosted::run!();
}
