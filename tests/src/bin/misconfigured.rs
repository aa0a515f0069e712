//! Registrations with several independent mistakes: a service that starts after a name no
//! service has, a singleton holding a scoped value, and two unrelated singletons that need each
//! other. The host cannot be built, and every mistake is reported at once: the circle hides
//! neither the captive value nor the unknown name.

use std::sync::Arc;

use hosted::CancellationToken;

#[hosted::hosted_service(after = "databse")]
async fn api(stop: CancellationToken) {
    stop.cancelled().await;
}

#[hosted::hosted_service(name = "database")]
async fn database(stop: CancellationToken) {
    stop.cancelled().await;
}

#[hosted::scoped]
struct Transaction;

/// Holds a scoped value beyond its scope.
#[hosted::singleton]
struct Cache {
    _transaction: Arc<Transaction>,
}

#[hosted::singleton]
struct Chicken {
    _egg: Arc<Egg>,
}

#[hosted::singleton]
struct Egg {
    _chicken: Arc<Chicken>,
}

fn main() {
    hosted::run!();
}
