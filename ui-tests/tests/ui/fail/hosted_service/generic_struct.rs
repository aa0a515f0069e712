use hosted::HostedService;

#[hosted::hosted_service]
struct Cache<T> {
    #[hosted(default)]
    entries: Vec<T>,
}

impl<T: Send + Sync + 'static> HostedService for Cache<T> {}

fn main() {
    let cache = Cache::<u8> { entries: Vec::new() };
    let _ = cache.entries;
}
