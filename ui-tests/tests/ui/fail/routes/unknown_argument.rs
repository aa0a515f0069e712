use hosted::web::Routes;

#[hosted::routes(prefix = "/api")]
fn api() -> Routes {
    Routes::new()
}

fn main() {}
