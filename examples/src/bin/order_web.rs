//! Seed 003, web host: the very same grace-period manager (the same source file as
//! `order_worker`), with an HTTP API in the same process placing and listing orders.
//!
//! ```sh
//! cargo run -p hosted-examples --bin order_web
//! curl -X POST http://127.0.0.1:8080/orders; sleep 1; curl http://127.0.0.1:8080/orders
//! ```

#[path = "../shared/orders.rs"]
mod orders;

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::get;
use hosted::web::{Injected, Routes};

async fn place(
    Injected(orders): Injected<Arc<orders::Orders>>,
) -> (StatusCode, Json<serde_json::Value>) {
    let id = orders.place();
    (StatusCode::CREATED, Json(serde_json::json!({ "id": id })))
}

async fn list(Injected(orders): Injected<Arc<orders::Orders>>) -> Json<Vec<orders::Order>> {
    Json(orders.list())
}

#[hosted::routes]
fn api() -> Routes {
    Routes::new().route("/orders", get(list).post(place))
}

fn main() {
    hosted::run!();
}
