//! The web host (feature `web`): an axum server running as a hosted service of the same host —
//! same container, same configuration, same lifecycle — with routes contributed by
//! [`#[hosted::routes]`](macro@crate::routes) functions, handlers injected through
//! [`Injected<T>`] with a scope per request, `/livez` and `/readyz`, a stop that drains and
//! closes `WebSocket`s within the budget, and the [`Hub`] that any code broadcasts through.
//!
//! The guide is [`docs::web`](crate::docs::web).
//!
//! | where | what |
//! |---|---|
//! | `routes.rs` | [`Routes`] and the link-time registrations of `#[hosted::routes]` |
//! | `extract.rs` | requests as runs: the scope layer, [`Injected<T>`] |
//! | `server.rs` | [`WebServer`], the hosted service, its stop sequence |
//! | `health.rs` | `/livez`, `/readyz` and [`Readiness`] checks |
//! | `options.rs` | the `web` configuration section, [`WebOptions`] |
//! | `auth.rs` | the application's [`Authorizer`] seam, the [`Authorized`] extractor, [`BasicAuth`] |
//! | `dashboard/` | the operator's page and its event stream, [`DashboardOptions`] |
//! | `hub/` | [`Hub<M>`], connections and their outboxes, the [`Backplane`] seam |

mod auth;
mod dashboard;
mod extract;
mod health;
pub mod hub;
mod options;
mod routes;
mod server;

pub use self::auth::{Authorized, Authorizer, BasicAuth, Denied};
pub use self::dashboard::DashboardOptions;
pub use self::extract::{Injected, Rejection};
pub use self::health::Readiness;
pub use self::hub::{
    Backplane, Client, ConnectionId, Hub, HubError, HubOptions, HubStats, HubUpgrade, Overflow,
};
pub use self::options::WebOptions;
pub use self::routes::Routes;
#[doc(hidden)]
pub use self::routes::{IntoRoutes, RouteContribution};
pub use self::server::{ServerAddress, WebServer};

use crate::registry::Registry;

/// Not public API, used by generated code: every `#[hosted::routes]` function submits this,
/// so the server is registered once whichever crates contribute routes.
#[doc(hidden)]
pub fn register_discovered(registry: &mut Registry) {
    if registry
        .services
        .iter()
        .any(|service| service.name == WebServer::NAME)
    {
        return;
    }
    WebServer::discovered().register(registry);
}

/// Not public API, used by generated code: the `--list` table of the routes.
#[doc(hidden)]
#[must_use]
pub fn listing(_host: &crate::host::Host) -> Option<String> {
    server::listing()
}

/// Not public API, used by generated code: the routes as JSON, for `--list --format=json`.
#[doc(hidden)]
#[must_use]
pub fn listing_json() -> Option<String> {
    server::listing_json()
}
