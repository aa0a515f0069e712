#[hosted::singleton]
#[hosted::scoped]
struct Cache;

fn main() {}
