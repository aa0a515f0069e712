#[hosted::routes]
struct Api;

fn main() {}
