use hosted::HostedService;

struct Cache;

#[hosted::hosted_service]
impl HostedService for Cache {}

fn main() {}
