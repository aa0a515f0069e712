//! Every form of the attributes expands to code that compiles clean under the strictest lints a
//! user may set. `cargo clippy --all-targets -- -D warnings` in CI checks the Clippy part.
#![deny(
    warnings,
    unused_qualifications,
    clippy::pedantic,
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    unsafe_code
)]

use std::sync::Arc;

use hosted::service::ServiceInfo;
use hosted::{ApplicationLifetime, BoxError, CancellationToken, HostedService, ServiceContext};

/// A public background service with every argument.
///
/// # Errors
/// Never; the signature shows an `anyhow` result is accepted.
#[hosted::hosted_service(
    name = "lints::everything",
    order = -3,
    after = [Unit, "lints::tuple"],
    on_failure = "restart",
    max_restarts = 10,
    backoff = "250ms",
    max_backoff = "1m30s",
    crate = "::hosted"
)]
pub async fn everything(
    stop: CancellationToken,
    lifetime: ApplicationLifetime,
    info: ServiceInfo,
    unit: Arc<Unit>,
) -> anyhow::Result<()> {
    let _ = (lifetime, info, unit);
    stop.cancelled().await;
    Ok(())
}

/// No parameters, no return type.
#[hosted::hosted_service(on_failure = "ignore")]
async fn nothing() {}

/// Unused and pattern parameters.
#[hosted::hosted_service(on_failure = "stop")]
async fn patterns(_: ApplicationLifetime, mut stop: CancellationToken) -> Result<(), BoxError> {
    stop = stop.child_token();
    stop.cancelled().await;
    Ok(())
}

/// A unit struct service.
#[hosted::hosted_service]
#[derive(Debug)]
pub struct Unit;

impl HostedService for Unit {}

/// A tuple struct service with an injected and a default field.
#[derive(Debug)]
#[hosted::hosted_service(name = "lints::tuple")]
pub struct Tuple(
    pub Arc<Unit>,
    #[hosted(default)] pub std::sync::atomic::AtomicU64,
);

impl HostedService for Tuple {
    async fn start(&self, cx: &ServiceContext) -> Result<(), BoxError> {
        let _ = (cx.info().name(), &self.0, &self.1);
        Ok(())
    }
}

/// A struct service with only default fields.
#[hosted::hosted_service]
pub(crate) struct OnlyDefaults {
    #[hosted(default)]
    count: std::sync::Mutex<u32>,
}

impl HostedService for OnlyDefaults {}

/// A queue item.
#[derive(Clone, Debug)]
pub struct Email(pub String);

/// A queued service with every argument.
///
/// # Errors
/// When the e-mail has no recipient.
#[hosted::queued(
    name = "lints::outbox",
    order = 2,
    after = Unit,
    on_failure = "restart",
    max_restarts = 3,
    backoff = "1s",
    max_backoff = "10s",
    capacity = 10,
    full_mode = "drop_oldest",
    workers = 2,
    retries = 3,
    retry_backoff = "250ms",
    retry_max_backoff = "5s",
    timeout = "30s",
    dead_letter = park,
    crate = "::hosted"
)]
pub async fn outbox(
    email: Email,
    stop: CancellationToken,
    info: ServiceInfo,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !email.0.is_empty() && !stop.is_cancelled(),
        "{}: no recipient",
        info.name()
    );
    Ok(())
}

async fn park(letter: hosted::queue::DeadLetter<Email>) -> Result<(), BoxError> {
    let _ = letter.into_item().0;
    Ok(())
}

/// An item that cannot be copied.
#[derive(Debug)]
pub struct Ticket(pub u64);

/// A queued service whose items are not kept: no parameters besides the item, no return type.
#[hosted::queued(dead_letter = "log_without_item", full_mode = "reject")]
async fn tickets(ticket: Ticket) {
    let _ = ticket.0;
}

/// A public singleton built from its fields.
#[hosted::singleton]
#[derive(Debug)]
pub struct Catalogue {
    /// Injected.
    pub unit: Arc<Unit>,
    /// Built with `Default`.
    #[hosted(default)]
    pub entries: std::sync::Mutex<Vec<String>>,
}

/// A value a scoped factory provides.
#[derive(Debug)]
pub struct Session {
    /// Its number.
    pub number: u64,
}

/// An asynchronous, fallible scoped factory with an injected parameter.
///
/// # Errors
/// Never; the signature shows a fallible factory is accepted.
#[hosted::scoped]
pub async fn session(catalogue: Arc<Catalogue>) -> anyhow::Result<Session> {
    let _ = catalogue;
    Ok(Session { number: 1 })
}

/// A trait a transient is registered under.
pub trait Describe: Send + Sync {
    /// A description.
    fn describe(&self) -> String;
}

struct Plain;

impl Describe for Plain {
    fn describe(&self) -> String {
        "plain".to_owned()
    }
}

/// A synchronous transient factory under a trait object, through `crate`.
#[hosted::transient(as = dyn Describe, crate = "::hosted")]
fn plain() -> Plain {
    Plain
}

/// A scoped value with a dispose hook.
#[hosted::scoped]
struct Tidy;

impl hosted::Dispose for Tidy {
    async fn dispose(&self, exit: hosted::ScopeExit) {
        let _ = exit;
    }
}

/// Routes, public, through the `crate` argument.
#[hosted::routes(crate = "::hosted")]
pub fn public_routes() -> hosted::web::Routes {
    hosted::web::Routes::new()
}

#[hosted::routes]
fn private_router() -> axum::Router {
    axum::Router::new()
}

#[test]
fn the_expansions_compile_under_strict_lints() {
    let host = hosted::Host::builder()
        .discover()
        .build()
        .expect("a valid host");
    assert_eq!(host.services().count(), 9, "eight and the web server");
    // With `postgres` unified in (as `cargo test --workspace` builds `hosted`), the web host's
    // registration adds the hub's backplane.
    let backplane = usize::from(host.registrations() == 13);
    assert_eq!(
        host.registrations(),
        12 + backplane,
        "Unit, Tuple, OnlyDefaults, Catalogue, Session, dyn Describe, Tidy, the two queues, and \
         the web server's hub, readiness checks and address (and the hub's backplane with \
         `postgres`)"
    );
    let _ = OnlyDefaults {
        count: std::sync::Mutex::new(0),
    }
    .count
    .lock()
    .map(|count| *count);
}
