//! Not public API, used by generated code. Everything here may change in any release.

pub use inventory;

pub use crate::di::construct::Construct;
pub use crate::di::provider::{Built, Disposer, GeneratedFactory, Step};
pub use crate::di::{
    Dependencies, Inject, InjectError, InjectSite, Provider, RunContext, ServiceLifetime, inject,
};
pub use crate::host::entry::{HookFailure, HookStep, ListingHook, MainOptions};
pub use crate::run::run_main;

pub use crate::queue::{DeadLetters, FullMode, QueueHandler, QueueOptions};
pub use crate::queue::{assert_queue_item, hook_dead_letters, log_dead_letters};
pub use crate::registry::{Register, Registration, Registry, ServiceDescriptor, submit};
pub use crate::service::{BoxError, FailurePolicy, IntoOutcome, RestartPolicy};
pub use crate::timer::{Missed, Overlap, TimerOptions};
#[cfg(feature = "web")]
pub use crate::web::{
    IntoRoutes, RouteContribution, listing as web_listing, listing_json as web_listing_json,
};

/// Not public API, for the benchmarks: leaves out, for the services, queues and timers built
/// from now on, the hooks of their hot paths named `true` — the `metrics` calls, the run spans
/// and senders' origins (`spans`), the status's per-tick and per-run record (`status`) — to
/// measure what each costs when nothing listens.
pub fn bypass_hooks(metrics: bool, spans: bool, status: bool) {
    crate::status::bypass(metrics, status);
    crate::telemetry::bypass_spans(spans);
}

/// Not public API, for the test of the hot paths' hooks: how many origins were captured at a
/// `send`, and how many spans were built for queue items and for ticks, in this process so far.
/// Debug builds only; release builds count nothing.
#[cfg(debug_assertions)]
#[must_use]
pub fn hook_counts() -> [u64; 3] {
    crate::telemetry::counts::read()
}

/// Not public API, used by generated code: registers the web host (once, whichever
/// `#[hosted::routes]` calls it), and with the `postgres` feature the hub's backplane.
#[cfg(feature = "web")]
pub fn register_discovered(registry: &mut Registry) {
    crate::web::register_discovered(registry);
    #[cfg(feature = "postgres")]
    crate::durable::register_backplane(registry);
}

/// Not public API, used by generated code: implemented when the `postgres` feature is on.
#[diagnostic::on_unimplemented(
    message = "`durable` needs the `postgres` feature of `hosted`",
    label = "durable queues keep their items in PostgreSQL",
    note = "enable it in Cargo.toml: `hosted = {{ version = \"0.1\", features = [\"postgres\"] }}`"
)]
pub trait DurableFeature {}

#[cfg(feature = "postgres")]
impl DurableFeature for () {}

/// Not public API, used by generated code: checks, at the `durable` key, that durable queues are
/// compiled in.
pub const fn assert_durable<T: DurableFeature>() {}

#[cfg(feature = "postgres")]
pub use crate::durable::{DurableItem, durable_item as assert_durable_item};

/// Not public API, used by generated code: without the `postgres` feature the `durable` key is
/// reported by [`assert_durable`] alone.
#[cfg(not(feature = "postgres"))]
pub const fn assert_durable_item<T>() {}

/// Not public API, used by generated code: [`durable_queued`](crate::durable::durable_queued).
#[cfg(feature = "postgres")]
#[must_use]
pub fn durable_queued<T: DurableItem, H: QueueHandler<T>>(
    name: &'static str,
    options: QueueOptions,
    handler: H,
) -> ServiceDescriptor {
    crate::durable::durable_queued(name, options, handler)
}

/// Not public API, used by generated code: [`cluster_timed`](crate::durable::cluster_timed).
#[cfg(feature = "postgres")]
#[must_use]
pub fn cluster_timed<F, Fut>(
    name: &'static str,
    options: TimerOptions,
    backfill: Option<std::time::Duration>,
    body: F,
) -> ServiceDescriptor
where
    F: Fn(RunContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output: IntoOutcome> + Send + 'static,
{
    crate::durable::cluster_timed(name, options, backfill, body)
}

/// Not public API, used by generated code: without the `postgres` feature, a timer of this
/// replica (never reached: [`assert_durable`] fails the build first).
#[cfg(not(feature = "postgres"))]
#[must_use]
pub fn cluster_timed<F, Fut>(
    name: &'static str,
    options: TimerOptions,
    _backfill: Option<std::time::Duration>,
    body: F,
) -> ServiceDescriptor
where
    F: Fn(RunContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output: IntoOutcome> + Send + 'static,
{
    ServiceDescriptor::timed(name, options, body)
}

/// Not public API, used by generated code: without the `postgres` feature, a queue in memory
/// (never reached: [`assert_durable`] fails the build first).
#[cfg(not(feature = "postgres"))]
#[must_use]
pub fn durable_queued<T: Send + 'static, H: QueueHandler<T>>(
    name: &'static str,
    options: QueueOptions,
    handler: H,
) -> ServiceDescriptor {
    ServiceDescriptor::queued(name, options, handler, DeadLetters::log_without_item())
}

/// Not public API, used by generated code: a boxed future.
pub type BoxFuture<T> = crate::util::BoxFuture<'static, T>;

pub use crate::registry::{At, NotAHostedService, ServiceKey};

/// Not public API, used by generated code: what an annotated item places in the executable's
/// initialisation section, run before `main` (see [`submit`]).
pub type Constructor = extern "C" fn();

/// Not public API, used by generated code: a `#[hosted_service] async fn`, implemented on its
/// marker type. The generic [`background`] registers it, so each function's expansion holds only
/// what differs: where it is, what it needs, how to call it, and its arguments.
pub trait BackgroundFn: 'static {
    /// The registered name.
    const NAME: &'static str;
    /// Where the function was written.
    const AT: At;
    /// Declares what the parameters need.
    fn declare(needs: &mut Dependencies);
    /// One run: injects the parameters and calls the function.
    fn run(cx: RunContext) -> impl Future<Output = Result<(), BoxError>> + Send + 'static;
    /// Applies the attribute's `order`, `after` and failure policy.
    #[must_use]
    fn configure(service: ServiceDescriptor) -> ServiceDescriptor {
        service
    }
}

/// Not public API, used by generated code: the constructor a `#[hosted_service] async fn` places
/// in the executable's initialisation section (see [`submit`]).
pub extern "C" fn background<T: BackgroundFn>() {
    Registration::new(register_background::<T>, T::AT.krate).submit();
}

// `do_not_recommend`: a wrong `after = path` should not list the user's services as the types
// that implement the hidden trait.
#[diagnostic::do_not_recommend]
impl<T: BackgroundFn> ServiceKey for T {
    const NAME: &'static str = T::NAME;
}

fn register_background<T: BackgroundFn>(registry: &mut Registry) {
    let service = ServiceDescriptor::background(T::NAME, T::run)
        .__declare(T::declare)
        .__at(T::AT);
    registry.add_service(T::configure(service));
}

/// Not public API, used by generated code: names the parameter whose needs are declared next.
pub fn name_parameter(needs: &mut Dependencies, parameter: &'static str) {
    needs.at(parameter);
}

/// Not public API, used by generated code: names the parameter whose injection failed, as the
/// `map_err` of its injection.
pub fn label(parameter: &'static str) -> impl FnOnce(InjectError) -> InjectError {
    move |source| parameter_error(parameter, source)
}

/// Not public API, used by generated code: names the parameter whose injection failed.
#[must_use]
pub fn parameter_error(parameter: &'static str, source: InjectError) -> InjectError {
    InjectError::Parameter {
        parameter,
        source: Box::new(source),
    }
}

pub use crate::di::provided as assert_provided;
pub use crate::service::implements_hosted_service as assert_hosted_service;

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
