//! Parameter injection: the [`Inject`] trait every parameter of a hosted function implements, and
//! the [`RunContext`] it resolves from.
//!
//! Each run of a hosted function (the body of a background service, later each tick of a timed
//! service or each item of a queue) gets a fresh [`RunContext`]; the generated code asks each
//! parameter type for its value through [`Inject::inject`], the way axum asks its extractors.
//! Before any service starts, the host also asks each parameter type what it needs
//! ([`Inject::declare`]), so a missing registration stops startup instead of failing a run.

use std::any::{Any, TypeId, type_name};
use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::container::Container;
use crate::lifetime::Lifetime;
use crate::scope::{ScopeExit, ScopeState};
use crate::service::ServiceInfo;

/// A value a hosted function, or a field of a `#[hosted_service]` type, can receive.
///
/// Implemented by:
///
/// | type | value |
/// |---|---|
/// | [`CancellationToken`] | the service's stop token: fires when the host stops this service |
/// | [`Lifetime`] | the host's lifetime events and stop request |
/// | [`ServiceInfo`] | the service's own name, kind, order and policy |
/// | `Arc<T>` | the instance of a registered type `T`, such as a `#[hosted_service]` type |
///
/// Implement it for your own types to make them injectable; the attribute macros need no
/// change. `declare` tells the host, before anything starts, which registrations the value
/// relies on, so a missing one is reported at startup with the consumer named.
///
/// ```
/// use hosted::{Inject, InjectError, RunContext};
///
/// /// The service's name, upper-cased, as a parameter of its own.
/// struct ShoutedName(String);
///
/// impl Inject for ShoutedName {
///     async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
///         Ok(Self(cx.info().name().to_uppercase()))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a hosted service",
    label = "not injectable",
    note = "a parameter or field can be `CancellationToken`, `Lifetime`, `ServiceInfo`, `ScopeFactory`, `Arc<T>` of a registered `T`, `Option<T>` of these, or any type implementing `hosted::Inject`",
    note = "to receive a registered `{Self}`, take `Arc<{Self}>`; on a `#[hosted_service]` struct, `#[hosted(default)]` builds a field with `Default` instead"
)]
pub trait Inject: Sized + Send + 'static {
    /// Records what this value needs from the container; called once per consumer before any
    /// service starts. The default needs nothing.
    fn declare(needs: &mut Dependencies) {
        let _ = needs;
    }

    /// Produces the value for one run.
    ///
    /// # Errors
    /// When the value cannot be produced; the run then fails as if the function had returned
    /// the error.
    fn inject(cx: &RunContext) -> impl Future<Output = Result<Self, InjectError>> + Send;
}

/// Why a parameter could not be injected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InjectError {
    /// Nothing is registered for the type.
    #[error(
        "no registration for `{type_name}`: annotate the type with `#[hosted_service]` or register it on the host builder"
    )]
    NotRegistered {
        /// The type asked for.
        type_name: &'static str,
    },
    /// The registration exists but building the value failed.
    #[error("building `{type_name}` failed")]
    Failed {
        /// The type asked for.
        type_name: &'static str,
        /// What went wrong.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A scoped value was asked for where there is no scope: while building a singleton or a
    /// `#[hosted_service]` type. The checks before start report this as a captive dependency.
    #[error("`{type_name}` is scoped, but was asked for outside any scope")]
    OutsideScope {
        /// The scoped type.
        type_name: &'static str,
    },
    /// Injecting one parameter or field failed.
    #[error("cannot inject `{parameter}`")]
    Parameter {
        /// The parameter or field.
        parameter: &'static str,
        /// Why.
        #[source]
        source: Box<InjectError>,
    },
    /// A user-defined [`Inject`] implementation failed.
    #[error("{0}")]
    Custom(String),
}

/// Everything one run of a hosted function can draw its parameters from.
#[derive(Clone)]
pub struct RunContext {
    /// What every run of the service shares; one reference count per run.
    env: Arc<RunEnv>,
    /// The run's scope; `None` where values are built for the whole host (singletons), or
    /// where nothing the service resolves is scoped.
    scope: Option<Arc<ScopeState>>,
    extensions: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
}

struct RunEnv {
    info: ServiceInfo,
    stop: CancellationToken,
    lifetime: Lifetime,
    container: Arc<Container>,
    /// Whether runs need a scope: something the service resolves is scoped, or transient
    /// with a [`Dispose`](crate::Dispose) hook. Without, runs skip building one.
    needs_scope: bool,
}

/// The end of one run, kept apart from its [`RunContext`] (which the body consumes) so the
/// runner can close the run's scope once the body returns.
#[must_use = "a run must be finished, or its scope's values are never disposed"]
pub(crate) struct RunEnd {
    scope: Option<Arc<ScopeState>>,
}

impl RunEnd {
    /// Closes the run's scope once its body has returned: disposes its values in reverse
    /// creation order, telling them how the run went.
    pub(crate) async fn finish(self, exit: ScopeExit) {
        if let Some(scope) = self.scope {
            scope.close(exit).await;
        }
    }
}

impl std::fmt::Debug for RunEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunEnd").finish_non_exhaustive()
    }
}

impl RunContext {
    /// A context outside any scope, the base of a service's runs.
    pub(crate) fn new(
        info: ServiceInfo,
        stop: CancellationToken,
        lifetime: Lifetime,
        container: Arc<Container>,
        needs_scope: bool,
    ) -> Self {
        Self {
            env: Arc::new(RunEnv {
                info,
                stop,
                lifetime,
                container,
                needs_scope,
            }),
            scope: None,
            extensions: Vec::new(),
        }
    }

    /// A context for another run of the same service: the same service, token and lifetime, a
    /// fresh scope, none of this run's extensions. Finish the run with the returned [`RunEnd`].
    pub(crate) fn begin_run(&self) -> (Self, RunEnd) {
        self.begin_run_scoped(self.env.needs_scope)
    }

    /// Whether [`begin_run`](Self::begin_run) opens a scope: without one, a hot loop (a queue's
    /// items) may lend this context to each run instead.
    pub(crate) fn runs_scoped(&self) -> bool {
        self.env.needs_scope
    }

    /// As [`begin_run`](Self::begin_run), with a scope whether or not the service declared a
    /// need for one: for scopes opened by hand, whose resolutions are not declared.
    pub(crate) fn begin_run_scoped(&self, scoped: bool) -> (Self, RunEnd) {
        let scope = scoped.then(Container::new_scope);
        let cx = Self {
            env: Arc::clone(&self.env),
            scope: scope.clone(),
            extensions: Vec::new(),
        };
        (cx, RunEnd { scope })
    }

    /// The same service's context with another stop token: a queue's items get one of their
    /// own, which fires only when the stop gives up draining them.
    pub(crate) fn with_stop_token(&self, stop: CancellationToken) -> Self {
        Self::new(
            self.env.info.clone(),
            stop,
            self.env.lifetime.clone(),
            Arc::clone(&self.env.container),
            self.env.needs_scope,
        )
    }

    pub(crate) fn scope(&self) -> Option<&Arc<ScopeState>> {
        self.scope.as_ref()
    }

    /// Attaches a value that parameters of this run can read with [`extension`](Self::extension):
    /// how a timer hands its tick information or a queue its item's sequence number to their
    /// `Inject` implementations. A second value of the same type replaces the first.
    #[must_use]
    pub fn with_extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        let type_id = TypeId::of::<T>();
        self.extensions.retain(|(existing, _)| *existing != type_id);
        self.extensions.push((type_id, Arc::new(value)));
        self
    }

    /// A value attached to this run with [`with_extension`](Self::with_extension).
    #[must_use]
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.extensions
            .iter()
            .find(|(type_id, _)| *type_id == TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref::<T>())
    }

    /// The service this run belongs to.
    #[must_use]
    pub fn info(&self) -> &ServiceInfo {
        &self.env.info
    }

    /// The service's stop token.
    #[must_use]
    pub fn stop_token(&self) -> &CancellationToken {
        &self.env.stop
    }

    /// The host's lifetime.
    #[must_use]
    pub fn lifetime(&self) -> &Lifetime {
        &self.env.lifetime
    }

    /// Resolves any injectable value, as a parameter of that type would receive it.
    ///
    /// # Errors
    /// As [`Inject::inject`] for `T`.
    pub fn resolve<T: Inject>(&self) -> impl Future<Output = Result<T, InjectError>> + Send + '_ {
        // Not an `async fn`: a generic async fn holding `T` across its await makes rustc fail to
        // prove `Send` for trait objects (rust-lang/rust#110338); returning the future as is
        // keeps it provable.
        T::inject(self)
    }

    pub(crate) fn container(&self) -> &Arc<Container> {
        &self.env.container
    }
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("service", &self.env.info.name())
            .field("stopping", &self.env.stop.is_cancelled())
            .field("scoped", &self.scope.is_some())
            .field("extensions", &self.extensions.len())
            .finish_non_exhaustive()
    }
}

/// What one consumer (a service or a registered type) needs from the container, collected
/// before anything starts.
#[derive(Debug)]
pub struct Dependencies {
    consumer: String,
    parameter: Option<&'static str>,
    optional: bool,
    required: Vec<Requirement>,
    #[cfg(feature = "config")]
    sections: Vec<crate::config::SectionLoader>,
}

/// One registration a consumer relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Requirement {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) consumer: String,
    pub(crate) parameter: Option<&'static str>,
    /// Asked for through `Option<...>`: its absence is not a problem.
    pub(crate) optional: bool,
}

impl Dependencies {
    pub(crate) fn new(consumer: impl Into<String>) -> Self {
        Self {
            consumer: consumer.into(),
            parameter: None,
            optional: false,
            required: Vec::new(),
            #[cfg(feature = "config")]
            sections: Vec::new(),
        }
    }

    /// Records that the value is a typed configuration section, loaded and registered before
    /// anything starts.
    #[cfg(feature = "config")]
    pub(crate) fn require_section(&mut self, loader: crate::config::SectionLoader) {
        self.sections.push(loader);
        self.required.push(Requirement {
            type_id: loader.type_id,
            type_name: loader.key,
            consumer: self.consumer.clone(),
            parameter: self.parameter,
            optional: self.optional,
        });
    }

    /// The typed sections declared.
    #[cfg(feature = "config")]
    pub(crate) fn sections(&self) -> impl Iterator<Item = crate::config::SectionLoader> + '_ {
        self.sections.iter().copied()
    }

    /// Declares `declare`'s needs as optional ones: their absence is not a problem.
    pub fn optionally(&mut self, declare: fn(&mut Self)) {
        let outer = std::mem::replace(&mut self.optional, true);
        declare(self);
        self.optional = outer;
    }

    /// Records that the value needs a registration of `T`.
    pub fn require<T: ?Sized + 'static>(&mut self) {
        self.required.push(Requirement {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
            consumer: self.consumer.clone(),
            parameter: self.parameter,
            optional: self.optional,
        });
    }

    /// Names the parameter or field whose needs are declared next, for error messages.
    pub(crate) fn at(&mut self, parameter: &'static str) {
        self.parameter = Some(parameter);
    }

    pub(crate) fn into_requirements(self) -> Vec<Requirement> {
        self.required
    }
}

impl Inject for CancellationToken {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Ok(cx.env.stop.clone())
    }
}

impl Inject for Lifetime {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Ok(cx.env.lifetime.clone())
    }
}

impl Inject for ServiceInfo {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Ok(cx.env.info.clone())
    }
}

impl<T: ?Sized + Send + Sync + 'static> Inject for Arc<T> {
    fn declare(needs: &mut Dependencies) {
        needs.require::<T>();
    }

    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        // A value built earlier (every singleton once the host runs, a scoped value asked for
        // again) is handed over without entering the asynchronous path.
        if let Some(ready) = cx.env.container.resolve_now::<T>(cx) {
            return ready;
        }
        cx.env.container.resolve::<T>(cx).await
    }
}

/// An optional dependency: `None` when nothing registers what `T` needs.
impl<T: Inject> Inject for Option<T> {
    fn declare(needs: &mut Dependencies) {
        needs.optionally(T::declare);
    }

    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        let mut needs = Dependencies::new("");
        T::declare(&mut needs);
        let available = needs
            .into_requirements()
            .iter()
            .all(|requirement| cx.env.container.provides(requirement.type_id));
        if available {
            T::inject(cx).await.map(Some)
        } else {
            Ok(None)
        }
    }
}
