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

use super::RunContext;
use crate::service::{ApplicationLifetime, ServiceInfo};

/// A value a hosted function, or a field of a `#[hosted_service]` type, can receive.
///
/// Implemented by:
///
/// | type | value |
/// |---|---|
/// | [`CancellationToken`] | the service's stop token: fires when the host stops this service |
/// | [`ApplicationLifetime`] | the host's lifetime events and stop request |
/// | [`ServiceInfo`] | the service's own name, kind, order, policy and settings |
/// | `Arc<T>` | the instance of a registered type `T` (a `#[hosted_service]` type, a `#[singleton]`, `#[scoped]` or `#[transient]` value, or one added on the builder), per its [`ServiceLifetime`](super::ServiceLifetime) |
/// | `Option<T>` of any of these | `None` when nothing registers what `T` needs, instead of a startup error |
/// | [`ScopeFactory`](super::ScopeFactory) | opens scopes by hand, for scoped values outside a run's own scope |
/// | [`Config<T>`](crate::Config) | the typed configuration section `T`, checked before start (feature `config`) |
/// | [`Queue<T>`](crate::Queue) | the handle of the `#[queued]` service whose items are `T`, to send to it |
/// | [`Tick`](crate::Tick) | in a `#[timed]` service, the tick being run: when it was due, when it started, how many it stands for |
///
/// Implement it for your own types to make them injectable; the attribute macros need no
/// change. `declare` tells the host, before anything starts, which registrations the value
/// relies on, so a missing one is reported at startup with the consumer named.
///
/// ```
/// use hosted::di::{Inject, InjectError, RunContext};
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
    note = "a parameter or field can be `CancellationToken`, `ApplicationLifetime`, `ServiceInfo`, `ScopeFactory`, `Arc<T>` of a registered `T`, `Config<T>` of a section, `Queue<T>` of a `#[queued]` service, `Tick` in a `#[timed]` service, `Option<T>` of these, or any type implementing `hosted::di::Inject`",
    note = "to receive a registered `{Self}`, take `Arc<{Self}>`; on a struct annotated with `#[hosted_service]`, `#[singleton]`, `#[scoped]` or `#[transient]`, `#[hosted(default)]` builds a field with `Default` instead"
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

    /// Produces the value without awaiting, when that is possible: `None` sends the caller to
    /// [`inject`](Self::inject). A factory that does not await builds its value without a
    /// future when every parameter answers here.
    ///
    /// `None` must leave nothing behind that `inject` would not reuse: a value built now is
    /// either returned or kept where `inject` finds it (a scope's slot). The default is `None`.
    #[must_use]
    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        let _ = cx;
        None
    }
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

/// What one consumer (a service or a registered type) needs from the container, collected
/// before anything starts.
#[derive(Debug)]
pub struct Dependencies {
    consumer: String,
    parameter: Option<&'static str>,
    optional: bool,
    required: Vec<Requirement>,
    /// What extensions declared beside registrations, such as a typed configuration section to
    /// load; read back by type by the part of the host that handles each.
    extras: Vec<Box<dyn Any + Send + Sync>>,
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
            extras: Vec::new(),
        }
    }

    /// Records that the value needs the registration whose type is `type_id`, named `type_name`
    /// in messages: for registrations an extension adds itself, before start, from what it
    /// declared with [`declare_extra`](Self::declare_extra).
    #[cfg_attr(
        not(feature = "config"),
        expect(dead_code, reason = "only configuration sections declare extras today")
    )]
    pub(crate) fn require_id(&mut self, type_id: TypeId, type_name: &'static str) {
        self.required.push(Requirement {
            type_id,
            type_name,
            consumer: self.consumer.clone(),
            parameter: self.parameter,
            optional: self.optional,
        });
    }

    /// Records something an extension handles before start (a configuration section to load,
    /// say); the host hands every declared value of type `T` to the part that handles `T`.
    #[cfg_attr(
        not(feature = "config"),
        expect(dead_code, reason = "only configuration sections declare extras today")
    )]
    pub(crate) fn declare_extra<T: Any + Send + Sync>(&mut self, extra: T) {
        self.extras.push(Box::new(extra));
    }

    /// The values of type `T` declared with [`declare_extra`](Self::declare_extra).
    #[cfg_attr(
        not(feature = "config"),
        expect(dead_code, reason = "only configuration sections declare extras today")
    )]
    pub(crate) fn extras<T: Any>(&self) -> impl Iterator<Item = &T> + '_ {
        self.extras
            .iter()
            .filter_map(|extra| extra.downcast_ref::<T>())
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

// `do_not_recommend` on every impl but `Arc<T>`'s, `Option<T>`'s and `Config<T>`'s: rustc's
// "other types implement `Inject`" list under a non-injectable parameter then names those
// three public types only. They stay unmarked because rustc 1.95 reports a marked impl's
// unmet bound at the impl instead (`Option<Settings>` cannot be injected, take
// `Arc<Option<Settings>>`), and their bounds are the real reasons: `T: Send + Sync`,
// `T: Inject`, `T: Section`. A bound on `struct Config<T: Section>` instead reports one mistake
// three times (tried).
#[diagnostic::do_not_recommend]
impl Inject for CancellationToken {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Ok(cx.stop_token().clone())
    }

    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        Some(Ok(cx.stop_token().clone()))
    }
}

#[diagnostic::do_not_recommend]
impl Inject for ApplicationLifetime {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Ok(cx.lifetime().clone())
    }

    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        Some(Ok(cx.lifetime().clone()))
    }
}

#[diagnostic::do_not_recommend]
impl Inject for ServiceInfo {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Ok(cx.info().clone())
    }

    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        Some(Ok(cx.info().clone()))
    }
}

impl<T: ?Sized + Send + Sync + 'static> Inject for Arc<T> {
    fn declare(needs: &mut Dependencies) {
        needs.require::<T>();
    }

    fn inject(cx: &RunContext) -> impl Future<Output = Result<Self, InjectError>> + Send {
        InjectArc { cx, slow: None }
    }

    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        cx.container().resolve_now::<T>(cx)
    }
}

/// The future of [`Arc<T>`'s injection](Inject::inject): a value built earlier (every singleton
/// once the host runs, a scoped value asked for again), or one whose factory does not await, is
/// handed over on the first poll; only otherwise is the awaiting resolution boxed. The future
/// stays two words, so a run awaiting several parameters carries no nested resolution state.
struct InjectArc<'a, T: ?Sized + Send + Sync + 'static> {
    cx: &'a RunContext,
    slow: Option<crate::util::BoxFuture<'a, Result<Arc<T>, InjectError>>>,
}

impl<T: ?Sized + Send + Sync + 'static> Future for InjectArc<'_, T> {
    type Output = Result<Arc<T>, InjectError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        let cx = this.cx;
        let slow = if let Some(slow) = &mut this.slow {
            slow
        } else {
            if let Some(ready) = cx.container().resolve_now::<T>(cx) {
                return std::task::Poll::Ready(ready);
            }
            this.slow.insert(Box::pin(cx.container().resolve::<T>(cx)))
        };
        slow.as_mut().poll(context)
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
            .all(|requirement| cx.container().provides(requirement.type_id));
        if available {
            T::inject(cx).await.map(Some)
        } else {
            Ok(None)
        }
    }

    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        let mut needs = Dependencies::new("");
        T::declare(&mut needs);
        let available = needs
            .into_requirements()
            .iter()
            .all(|requirement| cx.container().provides(requirement.type_id));
        if available {
            T::inject_now(cx).map(|value| value.map(Some))
        } else {
            Some(Ok(None))
        }
    }
}
