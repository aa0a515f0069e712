#[hosted::transient(scope = "request")]
struct Request;

fn main() {
    let _ = Request;
}
