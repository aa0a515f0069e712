use hosted::web::Routes;

#[hosted::routes]
async fn api() -> Routes {
    Routes::new()
}

fn main() {}
