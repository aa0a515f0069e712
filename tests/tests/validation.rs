//! What the host refuses to start, found before anything runs, all reported at once: a type
//! nobody registers, types that need each other in a circle, a service name used twice.

use std::sync::Arc;

use hosted::registry::Problem;
use hosted::{Host, HostedService};

/// Registered by nothing.
struct Unregistered;

#[hosted::hosted_service]
async fn needs_the_unregistered(_missing: Arc<Unregistered>) {}

#[hosted::hosted_service]
struct Chicken {
    _egg: Arc<Egg>,
}
impl HostedService for Chicken {}

#[hosted::hosted_service]
struct Egg {
    _chicken: Arc<Chicken>,
}
impl HostedService for Egg {}

#[hosted::hosted_service(name = "twin")]
async fn first_twin() {}

#[hosted::hosted_service(name = "twin")]
async fn second_twin() {}

#[test]
fn every_registration_problem_is_reported_before_anything_starts() {
    let error = Host::builder()
        .discover()
        .build()
        .expect_err("the registrations are broken");
    let problems = error.problems();
    assert_eq!(problems.len(), 3, "{error}");
    assert!(
        problems.iter().any(|problem| matches!(
            problem,
            Problem::MissingRegistration { consumer, parameter: Some(parameter), type_name }
                if consumer == "validation::needs_the_unregistered"
                    && parameter == "_missing"
                    && type_name == "validation::Unregistered"
        )),
        "{error}"
    );
    assert!(
        problems.iter().any(|problem| matches!(
            problem,
            Problem::DuplicateService { name, sources } if name == "twin" && sources.len() == 2
        )),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("`validation::needs_the_unregistered` needs `validation::Unregistered` (for `_missing`), but nothing registers it"),
        "{text}"
    );
    assert!(
        text.contains("registered types need each other in a circle, so none can be built first: validation::Chicken -> validation::Egg -> validation::Chicken")
            || text.contains("registered types need each other in a circle, so none can be built first: validation::Egg -> validation::Chicken -> validation::Egg"),
        "{text}"
    );
    assert!(
        text.contains("two services are named `twin` (declared at tests/tests/validation.rs:"),
        "{text}"
    );
}
