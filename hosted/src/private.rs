//! Not public API, used by generated code. Everything here may change in any release.

pub use inventory;

pub use crate::di::construct::Construct;
pub use crate::di::provider::{Built, Disposer, GeneratedFactory};
pub use crate::di::{Dependencies, Inject, InjectError, Provider, RunContext, ServiceLifetime};
pub use crate::host::entry::{MainOptions, run_main};
pub use crate::queue::generated::{assert_queue_item, hook_dead_letters, log_dead_letters};
pub use crate::queue::{DeadLetters, FullMode, QueueHandler, QueueOptions};
pub use crate::registry::{Registration, Registry, ServiceDescriptor};
pub use crate::service::{BoxError, FailurePolicy, IntoOutcome, RestartPolicy};
pub use crate::timer::{Missed, Overlap, TimerOptions};

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

/// Not public API, used by generated code: names the parameter whose needs are declared next.
pub fn name_parameter(needs: &mut Dependencies, parameter: &'static str) {
    needs.at(parameter);
}

/// Not public API, used by generated code: names the parameter whose injection failed.
#[must_use]
pub fn parameter_error(parameter: &'static str, source: InjectError) -> InjectError {
    InjectError::Parameter {
        parameter,
        source: Box::new(source),
    }
}

/// Not public API, used by generated code: checks, at the item's span, that a
/// `#[hosted_service]` type implements the trait.
pub const fn assert_hosted_service<T: crate::HostedService>() {}

/// Not public API, used by generated code: checks, at the factory's return type, that the value
/// can be shared between threads and lives as long as the host.
pub const fn assert_provided<T: ?Sized + Send + Sync + 'static>() {}

/// Not public API, used by generated code: finds out, for a concrete `T`, whether it implements
/// [`Dispose`](crate::Dispose), by method resolution preferring [`DisposeViaTrait`] (autoref
/// specialisation: it works because the generated code names concrete types).
pub struct DisposeProbe<T: ?Sized>(core::marker::PhantomData<T>);

impl<T: ?Sized> DisposeProbe<T> {
    /// Not public API, used by generated code.
    #[must_use]
    pub const fn new() -> Self {
        Self(core::marker::PhantomData)
    }
}

impl<T: ?Sized> Default for DisposeProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ?Sized> std::fmt::Debug for DisposeProbe<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DisposeProbe")
    }
}

/// Not public API, used by generated code: chosen when `T` implements `Dispose`.
pub trait DisposeViaTrait<T: ?Sized> {
    /// Whether values have a dispose hook.
    fn disposable(&self) -> bool;
    /// The value's dispose hook.
    fn disposer(&self, value: &std::sync::Arc<T>) -> Option<Disposer>;
}

impl<T: ?Sized + crate::Dispose> DisposeViaTrait<T> for DisposeProbe<T> {
    fn disposable(&self) -> bool {
        true
    }
    fn disposer(&self, value: &std::sync::Arc<T>) -> Option<Disposer> {
        Some(crate::di::disposer_of(value))
    }
}

/// Not public API, used by generated code: chosen when `T` does not implement `Dispose`.
pub trait DisposeViaNothing<T: ?Sized> {
    /// Whether values have a dispose hook.
    fn disposable(&self) -> bool;
    /// The value's dispose hook.
    fn disposer(&self, value: &std::sync::Arc<T>) -> Option<Disposer>;
}

impl<T: ?Sized> DisposeViaNothing<T> for &DisposeProbe<T> {
    fn disposable(&self) -> bool {
        false
    }
    fn disposer(&self, _value: &std::sync::Arc<T>) -> Option<Disposer> {
        None
    }
}
