#[hosted::scoped]
struct Repository {
    table: String,
}

fn main() {}
