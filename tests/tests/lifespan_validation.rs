//! Service-lifetime mistakes the host refuses before anything starts, all reported at once: scoped
//! values captured by singletons (directly, through a transient, or by a `#[hosted_service]`
//! type), a factory needing what nobody registers, and registrations in a circle — which hides
//! none of the others.

use std::sync::Arc;

use hosted::di::ServiceLifetime;
use hosted::registry::Problem;
use hosted::{Host, HostedService};

#[hosted::scoped]
struct Transaction;

/// A singleton holding a scoped value: it would outlive the scope.
#[hosted::singleton]
struct Cache {
    _transaction: Arc<Transaction>,
}

/// A transient that needs a scoped value: fine on its own...
#[hosted::transient]
struct Query {
    _transaction: Arc<Transaction>,
}

/// ...but not inside a singleton.
#[hosted::singleton]
struct Reporter {
    _query: Arc<Query>,
}

/// A hosted service type is a singleton too.
#[hosted::hosted_service]
struct Exporter {
    _transaction: Arc<Transaction>,
}
impl HostedService for Exporter {}

struct Missing;

/// Two singletons that need each other, unrelated to the captive values: the circle must hide
/// none of them.
#[hosted::singleton]
struct Ping {
    _pong: Arc<Pong>,
}

#[hosted::singleton]
struct Pong {
    _ping: Arc<Ping>,
}

#[hosted::singleton]
fn needs_missing(_missing: Arc<Missing>) -> u32 {
    7
}

#[test]
fn lifespan_mistakes_are_reported_with_their_chains() {
    let error = Host::builder()
        .discover()
        .build()
        .expect_err("the registrations are broken");
    let text = error.to_string();
    let chains: Vec<Vec<(String, ServiceLifetime)>> = error
        .problems()
        .iter()
        .filter_map(|problem| match problem {
            Problem::CaptiveDependency { chain } => Some(
                chain
                    .iter()
                    .map(|link| (link.type_name.clone(), link.lifetime))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    let chain = |links: &[(&str, ServiceLifetime)]| -> Vec<(String, ServiceLifetime)> {
        links
            .iter()
            .map(|(name, lifetime)| ((*name).to_owned(), *lifetime))
            .collect()
    };
    for expected in [
        chain(&[
            ("lifespan_validation::Cache", ServiceLifetime::Singleton),
            ("lifespan_validation::Transaction", ServiceLifetime::Scoped),
        ]),
        chain(&[
            ("lifespan_validation::Reporter", ServiceLifetime::Singleton),
            ("lifespan_validation::Query", ServiceLifetime::Transient),
            ("lifespan_validation::Transaction", ServiceLifetime::Scoped),
        ]),
        chain(&[
            ("lifespan_validation::Exporter", ServiceLifetime::Singleton),
            ("lifespan_validation::Transaction", ServiceLifetime::Scoped),
        ]),
    ] {
        assert!(chains.contains(&expected), "missing {expected:?} in {text}");
    }
    assert_eq!(chains.len(), 3, "{text}");
    assert!(
        text.contains(
            "singleton `lifespan_validation::Reporter` would keep scoped `lifespan_validation::Transaction` beyond its scope: \
             lifespan_validation::Reporter (singleton) -> lifespan_validation::Query (transient) -> lifespan_validation::Transaction (scoped); \
             make `lifespan_validation::Reporter` scoped too, or give it a `ScopeFactory` and open a scope where `lifespan_validation::Transaction` is needed"
        ),
        "{text}"
    );
    assert!(
        text.contains("`lifespan_validation::needs_missing` needs `lifespan_validation::Missing` (for `_missing`), but nothing registers it"),
        "{text}"
    );
    // A hosted service cannot be made scoped: the hint says what can be done instead.
    assert!(
        text.contains(
            "singleton `lifespan_validation::Exporter` would keep scoped `lifespan_validation::Transaction` beyond its scope: \
             lifespan_validation::Exporter (singleton) -> lifespan_validation::Transaction (scoped); \
             a hosted service is always a singleton: give `lifespan_validation::Exporter` a `ScopeFactory` field and open a scope where `lifespan_validation::Transaction` is needed, \
             or make the service a function whose runs take `lifespan_validation::Transaction` as a parameter (each run has its own scope)"
        ),
        "{text}"
    );
    let circles: Vec<&Vec<String>> = error
        .problems()
        .iter()
        .filter_map(|problem| match problem {
            Problem::DependencyCycle { path } => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(circles.len(), 1, "{text}");
    assert!(
        circles[0]
            .iter()
            .any(|name| name == "lifespan_validation::Ping")
            && circles[0]
                .iter()
                .any(|name| name == "lifespan_validation::Pong"),
        "{text}"
    );
    assert!(
        text.starts_with("the host cannot start: 5 problems found"),
        "{text}"
    );
}
