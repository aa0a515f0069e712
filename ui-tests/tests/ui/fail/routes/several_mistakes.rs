use hosted::web::Routes;

#[hosted::routes(crat = "hosted")]
async fn api(count: u32) -> Routes {
    let _ = count;
    Routes::new()
}

fn main() {}
