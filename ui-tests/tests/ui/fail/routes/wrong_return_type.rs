#[hosted::routes]
fn api() -> String {
    String::new()
}

fn main() {}
