use hosted::HostedService;

#[hosted::hosted_service]
struct Cache {
    #[hosted(skip)]
    entries: Vec<u8>,
}

impl HostedService for Cache {}

fn main() {}
