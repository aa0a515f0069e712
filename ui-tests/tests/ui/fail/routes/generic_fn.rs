use hosted::web::Routes;

#[hosted::routes]
fn api<T>() -> Routes {
    Routes::new()
}

fn main() {}
