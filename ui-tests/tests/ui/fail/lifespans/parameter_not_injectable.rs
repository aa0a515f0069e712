struct Unit;

#[hosted::scoped]
fn unit(path: String) -> Unit {
    let _ = path;
    Unit
}

fn main() {}
