use hosted::HostedService;

struct Settings;

#[hosted::hosted_service]
struct Cache {
    settings: Settings,
}

impl HostedService for Cache {}

fn main() {}
