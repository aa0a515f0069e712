use hosted::{Config, HostedService};
#[derive(serde::Deserialize)]
struct Limits { max: u32 }
#[hosted::hosted_service]
struct Guard {
    limits: Config<Limits>,
}
impl HostedService for Guard {}
fn main() {}
