//! Both return types, `crate = "..."`, and several contributions in one crate.

use axum::routing::get;
use hosted::web::Routes;

#[hosted::routes]
fn with_routes() -> Routes {
    Routes::new().route("/a", get(|| async { "a" }))
}

#[hosted::routes]
pub fn with_router() -> axum::Router {
    axum::Router::new().route("/b", get(|| async { "b" }))
}

mod facade {
    pub use hosted;
}

#[hosted::routes(crate = "facade::hosted")]
fn through_a_facade() -> hosted::web::Routes {
    hosted::web::Routes::new()
}

fn main() {
    let server = hosted::web::WebServer::discovered();
    let listed = format!("{server:?}");
    assert!(listed.contains("with_routes") && listed.contains("with_router"));
}
