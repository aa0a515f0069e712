#[hosted::hosted_service]
#[hosted::singleton]
struct Metrics;

impl hosted::HostedService for Metrics {}

fn main() {}
