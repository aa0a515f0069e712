#[hosted::routes]
fn api() {}

fn main() {}
