use std::sync::Arc;

use hosted::web::Routes;

struct Database;

#[hosted::routes]
fn api(database: Arc<Database>) -> Routes {
    let _ = database;
    Routes::new()
}

fn main() {}
