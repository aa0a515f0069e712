//! What a registration is: a [`Provider`] with its [`ServiceLifetime`] and how to build its
//! value, and the type-erased values it builds.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::{Dependencies, Dispose, RunContext, ScopeExit};
use crate::service::{BoxError, SourceLocation};
use crate::util::BoxFuture;

/// A built value, type-erased: the `Arc<T>` itself for a sized `T`, or an `Arc<Arc<T>>` for a
/// trait object. The registration's [`Extract`] knows which.
pub(crate) type AnyValue = Arc<dyn Any + Send + Sync>;

/// Gets the `Arc<T>` back out of an [`AnyValue`]: monomorphic to one registration, it writes
/// into the `Option<Arc<T>>` the resolver passes as `&mut dyn Any`, so the resolver can stay
/// generic over unsized `T` while sized values are stored in a single allocation. It takes the
/// value's reference count over: a sized value is handed on without another count.
pub(crate) type Extract = fn(AnyValue, &mut dyn Any);

fn extract_sized<T: Send + Sync + 'static>(value: AnyValue, out: &mut dyn Any) {
    if let Some(out) = out.downcast_mut::<Option<Arc<T>>>() {
        *out = value.downcast::<T>().ok();
    }
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "one signature with `extract_sized`, which hands the count on"
)]
fn extract_boxed<T: ?Sized + Send + Sync + 'static>(value: AnyValue, out: &mut dyn Any) {
    if let Some(out) = out.downcast_mut::<Option<Arc<T>>>() {
        *out = value.downcast_ref::<Arc<T>>().cloned();
    }
}

/// The `Arc<T>` in `value`, read through the registration's `extract`.
#[inline]
pub(crate) fn extract<T: ?Sized + Send + Sync + 'static>(
    value: AnyValue,
    extract: Extract,
) -> Option<Arc<T>> {
    let mut out: Option<Arc<T>> = None;
    extract(value, &mut out);
    out
}

/// A singleton's value as the `Arc<T>` its consumers receive, boxed once so that reading it is
/// one checked downcast, with no [`Extract`] call: monomorphic to one registration.
pub(crate) type Share = fn(&AnyValue, Extract) -> Option<Box<dyn Any + Send + Sync>>;

fn share_typed<T: ?Sized + Send + Sync + 'static>(
    value: &AnyValue,
    read: Extract,
) -> Option<Box<dyn Any + Send + Sync>> {
    extract::<T>(Arc::clone(value), read).map(|value| Box::new(value) as Box<dyn Any + Send + Sync>)
}

/// Not public API: a value's [`Dispose`] hook, bound to the value, run at the end of its scope (or of the host,
/// for singletons).
#[doc(hidden)]
pub type Disposer = Box<dyn FnOnce(ScopeExit) -> BoxFuture<'static, ()> + Send>;

/// A value just built, with its dispose hook if its type has one. Not public API, used by
/// generated code.
#[doc(hidden)]
pub struct Built {
    pub(crate) value: AnyValue,
    pub(crate) disposer: Option<Disposer>,
}

impl Built {
    /// Not public API, used by generated code: a value of any type, trait objects included,
    /// stored in a second allocation (read back by `extract_boxed`).
    #[doc(hidden)]
    pub fn __new<T: ?Sized + Send + Sync + 'static>(
        value: Arc<T>,
        disposer: Option<Disposer>,
    ) -> Self {
        Self {
            value: Arc::new(value),
            disposer,
        }
    }

    /// Not public API, used by generated code: a sized value, stored as it is (read back by
    /// `extract_sized`).
    #[doc(hidden)]
    pub fn __sized<T: Send + Sync + 'static>(value: Arc<T>, disposer: Option<Disposer>) -> Self {
        Self { value, disposer }
    }
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Built")
            .field("disposable", &self.disposer.is_some())
            .finish_non_exhaustive()
    }
}

/// The disposer of a value whose type implements [`Dispose`].
pub(crate) fn disposer_of<T: ?Sized + Dispose>(value: &Arc<T>) -> Disposer {
    let value = Arc::clone(value);
    Box::new(move |exit| Box::pin(async move { value.dispose(exit).await }))
}

/// Builds a registered value in the context it is asked from.
#[derive(Clone)]
pub(crate) enum Factory {
    /// Awaits: injects parameters or runs an `async` factory.
    Async(Arc<dyn Fn(RunContext) -> BoxFuture<'static, Result<Built, BoxError>> + Send + Sync>),
    /// Builds at once, with nothing to inject: no future to allocate.
    Sync(fn(&RunContext) -> Result<Built, BoxError>),
    /// Never awaits itself, but injects parameters: builds at once when every parameter can be
    /// had without awaiting ([`Inject::inject_now`](super::Inject::inject_now)), and hands back
    /// the rest of the work as a future otherwise.
    Stepwise(fn(&RunContext) -> Result<Step, BoxError>),
}

/// Not public API, used by generated code: what a [`GeneratedFactory::Stepwise`] factory did.
#[doc(hidden)]
pub enum Step {
    /// Every parameter was at hand: the value is built.
    Now(Built),
    /// A parameter needs awaiting: the future injects the rest and builds the value.
    Later(BoxFuture<'static, Result<Built, BoxError>>),
}

impl Step {
    /// Not public API, used by generated code: the value built at once.
    ///
    /// # Errors
    /// The error building it, as it is.
    #[doc(hidden)]
    pub fn __now(built: Result<Built, BoxError>) -> Result<Self, BoxError> {
        built.map(Self::Now)
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Now(_) => "Step::Now",
            Self::Later(_) => "Step::Later",
        })
    }
}

/// Not public API, used by generated code: the factory a generated registration provides.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum GeneratedFactory {
    /// Injects parameters, or awaits the user's `async fn`.
    Async(fn(RunContext) -> BoxFuture<'static, Result<Built, BoxError>>),
    /// Needs nothing injected and does not await.
    Sync(fn(&RunContext) -> Result<Built, BoxError>),
    /// Injects parameters but does not await itself.
    Stepwise(fn(&RunContext) -> Result<Step, BoxError>),
}

impl From<GeneratedFactory> for Factory {
    fn from(factory: GeneratedFactory) -> Self {
        match factory {
            GeneratedFactory::Async(factory) => Self::Async(Arc::new(factory)),
            GeneratedFactory::Sync(factory) => Self::Sync(factory),
            GeneratedFactory::Stepwise(factory) => Self::Stepwise(factory),
        }
    }
}

/// How long a registered value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceLifetime {
    /// One instance for the whole host, built before any service starts, shared by everyone,
    /// disposed after every service has stopped.
    Singleton,
    /// One instance per scope (per run of a hosted function: the body of a background service,
    /// one tick, one queue item), built on first use in that scope, disposed at its end.
    Scoped,
    /// A new instance every time one is asked for; disposed at the end of the scope that asked.
    Transient,
}

impl fmt::Display for ServiceLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Singleton => "singleton",
            Self::Scoped => "scoped",
            Self::Transient => "transient",
        })
    }
}

/// A registered type: its lifetime and how to build it. The attributes `#[singleton]`,
/// `#[scoped]` and `#[transient]` create these; create them by hand for
/// [`HostBuilder::provide`](crate::host::HostBuilder::provide) and
/// [`HostBuilder::replace`](crate::host::HostBuilder::replace), for example to swap a real SMTP
/// client for a fake in tests:
///
/// ```
/// use std::sync::Arc;
/// use hosted::Host;
/// use hosted::di::{Provider, RunContext};
///
/// trait Mailer: Send + Sync {
///     fn send(&self, to: &str);
/// }
/// struct FakeMailer;
/// impl Mailer for FakeMailer {
///     fn send(&self, _to: &str) {}
/// }
///
/// let host = Host::builder()
///     .provide(Provider::scoped(|_: RunContext| async {
///         Ok::<_, hosted::BoxError>(Arc::new(FakeMailer) as Arc<dyn Mailer>)
///     }))
///     .build()
///     .unwrap();
/// # drop(host);
/// ```
pub struct Provider {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) lifetime: ServiceLifetime,
    /// Who registered it, for messages: a service's name, a factory's path, or the builder.
    pub(crate) owner: String,
    pub(crate) source: Option<SourceLocation>,
    pub(crate) declare: fn(&mut Dependencies),
    pub(crate) value: ProvidedValue,
    pub(crate) extract: Extract,
    pub(crate) share: Share,
    /// Whether values have a [`Dispose`] hook: a transient one then needs its run's scope.
    pub(crate) disposable: bool,
    /// Whether this is a hosted service's own type, which is always a singleton.
    pub(crate) service_type: bool,
}

pub(crate) enum ProvidedValue {
    /// Built by the host.
    Factory(Factory),
    /// Handed to the builder ready-made (singletons only).
    Instance(Built),
}

impl Provider {
    /// A ready-made value, injectable as `Arc<T>`. `T` may be a trait object.
    pub fn instance<T: ?Sized + Send + Sync + 'static>(instance: Arc<T>) -> Self {
        Self::with_value(
            ServiceLifetime::Singleton,
            ProvidedValue::Instance(Built::__new(instance, None)),
            format!("an instance of `{}`", std::any::type_name::<T>()),
        )
        .typed::<T>()
    }

    /// A singleton built by `factory` before any service starts; a factory error stops startup.
    pub fn singleton<T, F, Fut, E>(factory: F) -> Self
    where
        T: ?Sized + Send + Sync + 'static,
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::from_factory(ServiceLifetime::Singleton, factory)
    }

    /// A value built by `factory` once per scope, on first use.
    pub fn scoped<T, F, Fut, E>(factory: F) -> Self
    where
        T: ?Sized + Send + Sync + 'static,
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::from_factory(ServiceLifetime::Scoped, factory)
    }

    /// A value built by `factory` every time one is asked for.
    pub fn transient<T, F, Fut, E>(factory: F) -> Self
    where
        T: ?Sized + Send + Sync + 'static,
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::from_factory(ServiceLifetime::Transient, factory)
    }

    /// Runs the [`Dispose`] hook of `T`, the registered type, when a value's scope ends (the
    /// host's end, for singletons).
    #[must_use]
    pub fn disposing<T: ?Sized + Dispose>(mut self) -> Self {
        self.disposable = true;
        let read = self.extract;
        let attach = move |mut built: Built| {
            built.disposer =
                extract::<T>(built.value.clone(), read).map(|value| disposer_of(&value));
            built
        };
        self.value = match self.value {
            ProvidedValue::Instance(built) => ProvidedValue::Instance(attach(built)),
            ProvidedValue::Factory(factory) => {
                ProvidedValue::Factory(Factory::Async(Arc::new(move |cx| {
                    let factory = factory.clone();
                    Box::pin(async move { Ok(attach(build_with(&factory, cx).await?)) })
                })))
            }
        };
        self
    }

    /// Declares what the factory resolves, so the host checks it before anything starts: a
    /// missing registration, a scoped value captured by a singleton, a circle.
    #[must_use]
    pub fn needs(mut self, declare: fn(&mut Dependencies)) -> Self {
        self.declare = declare;
        self
    }

    /// The type this provides.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// How long the values live.
    #[must_use]
    pub fn lifetime(&self) -> ServiceLifetime {
        self.lifetime
    }

    fn from_factory<T, F, Fut, E>(lifetime: ServiceLifetime, factory: F) -> Self
    where
        T: ?Sized + Send + Sync + 'static,
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let factory = Factory::Async(Arc::new(move |cx| {
            let built = factory(cx);
            Box::pin(async move {
                let value = built.await.map_err(Into::into)?;
                Ok(Built::__new(value, None))
            })
        }));
        Self::with_value(
            lifetime,
            ProvidedValue::Factory(factory),
            format!("a {lifetime} factory of `{}`", std::any::type_name::<T>()),
        )
        .typed::<T>()
    }

    fn with_value(lifetime: ServiceLifetime, value: ProvidedValue, owner: String) -> Self {
        Self {
            type_id: TypeId::of::<()>(),
            type_name: "",
            lifetime,
            owner,
            source: None,
            declare: |_| {},
            value,
            extract: |_, _| {},
            share: |_, _| None,
            disposable: false,
            service_type: false,
        }
    }

    /// Names the provided type; its values are read back as stored by [`Built::__new`].
    fn typed<T: ?Sized + Send + Sync + 'static>(mut self) -> Self {
        self.type_id = TypeId::of::<T>();
        self.type_name = std::any::type_name::<T>();
        self.extract = extract_boxed::<T>;
        self.share = share_typed::<T>;
        self
    }

    /// Not public API, used by generated code: names the registration after the annotated item.
    #[doc(hidden)]
    #[must_use]
    pub fn __registered_by(mut self, owner: &'static str, file: &'static str, line: u32) -> Self {
        owner.clone_into(&mut self.owner);
        self.source = Some(SourceLocation { file, line });
        self
    }

    /// Not public API, used by generated code: a provider of `T`, any type, from a generated
    /// factory building values with [`Built::__new`].
    #[doc(hidden)]
    pub fn __erased<T: ?Sized + Send + Sync + 'static>(
        lifetime: ServiceLifetime,
        factory: GeneratedFactory,
        declare: fn(&mut Dependencies),
        disposable: bool,
    ) -> Self {
        let mut provider = Self::with_value(
            lifetime,
            ProvidedValue::Factory(factory.into()),
            String::new(),
        )
        .typed::<T>();
        provider.declare = declare;
        provider.disposable = disposable;
        provider
    }

    /// Not public API, used by generated code: a provider of a sized `T` from a generated
    /// factory building values with [`Built::__sized`], one allocation per value.
    #[doc(hidden)]
    pub fn __erased_sized<T: Send + Sync + 'static>(
        lifetime: ServiceLifetime,
        factory: GeneratedFactory,
        declare: fn(&mut Dependencies),
        disposable: bool,
    ) -> Self {
        let mut provider = Self::__erased::<T>(lifetime, factory, declare, disposable);
        provider.extract = extract_sized::<T>;
        provider
    }
}

/// Runs `factory` in the context `cx`.
async fn build_with(factory: &Factory, cx: RunContext) -> Result<Built, BoxError> {
    match factory {
        Factory::Async(factory) => factory(cx).await,
        Factory::Sync(factory) => factory(&cx),
        Factory::Stepwise(factory) => match factory(&cx)? {
            Step::Now(built) => Ok(built),
            Step::Later(rest) => rest.await,
        },
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("type_name", &self.type_name)
            .field("lifetime", &self.lifetime)
            .field("owner", &self.owner)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
