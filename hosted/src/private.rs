//! Not public API, used by generated code. Everything here may change in any release.

use std::future::Future;

pub use inventory;

pub use crate::entry::{MainOptions, run_main};
pub use crate::registry::{Registration, Registry};

pub use crate::inject::{Dependencies, Inject, InjectError, RunContext};
pub use crate::policy::{FailurePolicy, RestartPolicy};
pub use crate::registry::ServiceDescriptor;
pub use crate::service::{BoxError, IntoOutcome};

/// Not public API, used by generated code: a boxed future.
pub type BoxFuture<T> = crate::util::BoxFuture<'static, T>;

/// Not public API, used by generated code: the name a `#[hosted_service]` item registers under,
/// so `after = path` is checked by the compiler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a hosted service",
    label = "`after` expects the path of an item annotated with `#[hosted_service]`",
    note = "to start after a service registered by hand, give its name as a string: `after = \"name\"`"
)]
pub trait ServiceKey {
    /// The registered name.
    const NAME: &'static str;
}

/// Not public API, used by generated code: builds a `#[hosted_service]` type from its fields.
pub trait Construct: Sized + Send + Sync + 'static {
    /// Declares what the injected fields need.
    fn declare(needs: &mut Dependencies);
    /// Builds the value.
    fn construct(cx: &RunContext) -> impl Future<Output = Result<Self, InjectError>> + Send;
}

/// Not public API, used by generated code: declares one parameter's needs under its name.
pub fn declare<T: Inject>(needs: &mut Dependencies, parameter: &'static str) {
    needs.at(parameter);
    T::declare(needs);
}

/// Not public API, used by generated code: names the parameter whose injection failed.
#[must_use]
pub fn parameter_error(parameter: &'static str, source: InjectError) -> InjectError {
    InjectError::Parameter {
        parameter,
        source: Box::new(source),
    }
}

/// Not public API, used by generated code: checks, at the parameter's span, that it is
/// injectable.
pub const fn assert_inject<T: Inject>() {}

/// Not public API, used by generated code: checks, at the item's span, that a
/// `#[hosted_service]` type implements the trait.
pub const fn assert_hosted_service<T: crate::HostedService>() {}

/// Not public API, used by generated code: checks, at the return type's span, that the function
/// returns what a service may return.
pub const fn assert_outcome<T: IntoOutcome>() {}
