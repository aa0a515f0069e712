//! The container: registered types with their lifespans, how to build them, and the singletons
//! once built. Scoped and transient values live in a [`Scope`](crate::scope) instead.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::inject::{Dependencies, InjectError, RunContext};
use crate::lifetime::Lifetime;
use crate::scope::{Dispose, ScopeExit, ScopeState};
use crate::service::{BoxError, ServiceInfo, ServiceKind, SourceLocation};
use crate::util::BoxFuture;

/// A built value, type-erased: always an `Arc<T>` inside.
pub(crate) type AnyValue = Arc<dyn Any + Send + Sync>;

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
    /// Not public API, used by generated code.
    #[doc(hidden)]
    pub fn __new<T: ?Sized + Send + Sync + 'static>(
        value: Arc<T>,
        disposer: Option<Disposer>,
    ) -> Self {
        Self {
            value: erase(value),
            disposer,
        }
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
pub(crate) type Factory =
    Arc<dyn Fn(RunContext) -> BoxFuture<'static, Result<Built, BoxError>> + Send + Sync>;

/// How long a registered value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lifespan {
    /// One instance for the whole host, built before any service starts, shared by everyone,
    /// disposed after every service has stopped.
    Singleton,
    /// One instance per scope (per run of a hosted function: the body of a background service,
    /// one tick, one queue item), built on first use in that scope, disposed at its end.
    Scoped,
    /// A new instance every time one is asked for; disposed at the end of the scope that asked.
    Transient,
}

impl fmt::Display for Lifespan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Singleton => "singleton",
            Self::Scoped => "scoped",
            Self::Transient => "transient",
        })
    }
}

/// A registered type: its lifespan and how to build it. The attributes `#[singleton]`,
/// `#[scoped]` and `#[transient]` create these; create them by hand for
/// [`HostBuilder::provide`](crate::HostBuilder::provide) and
/// [`HostBuilder::replace`](crate::HostBuilder::replace), for example to swap a real SMTP
/// client for a fake in tests:
///
/// ```
/// use std::sync::Arc;
/// use hosted::{Host, Provider, RunContext};
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
    pub(crate) lifespan: Lifespan,
    /// Who registered it, for messages: a service's name, a factory's path, or the builder.
    pub(crate) owner: String,
    pub(crate) source: Option<SourceLocation>,
    pub(crate) declare: fn(&mut Dependencies),
    pub(crate) value: ProvidedValue,
    /// Whether values have a [`Dispose`] hook: a transient one then needs its run's scope.
    pub(crate) disposable: bool,
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
            Lifespan::Singleton,
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
        Self::from_factory(Lifespan::Singleton, factory)
    }

    /// A value built by `factory` once per scope, on first use.
    pub fn scoped<T, F, Fut, E>(factory: F) -> Self
    where
        T: ?Sized + Send + Sync + 'static,
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::from_factory(Lifespan::Scoped, factory)
    }

    /// A value built by `factory` every time one is asked for.
    pub fn transient<T, F, Fut, E>(factory: F) -> Self
    where
        T: ?Sized + Send + Sync + 'static,
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::from_factory(Lifespan::Transient, factory)
    }

    /// Runs the [`Dispose`] hook of `T`, the registered type, when a value's scope ends (the
    /// host's end, for singletons).
    #[must_use]
    pub fn disposing<T: ?Sized + Dispose>(mut self) -> Self {
        self.disposable = true;
        self.value = match self.value {
            ProvidedValue::Instance(mut built) => {
                built.disposer = unerase::<T>(&built.value).map(|value| disposer_of(&value));
                ProvidedValue::Instance(built)
            }
            ProvidedValue::Factory(factory) => ProvidedValue::Factory(Arc::new(move |cx| {
                let building = factory(cx);
                Box::pin(async move {
                    let mut built = building.await?;
                    built.disposer = unerase::<T>(&built.value).map(|value| disposer_of(&value));
                    Ok(built)
                })
            })),
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
    pub fn lifespan(&self) -> Lifespan {
        self.lifespan
    }

    fn from_factory<T, F, Fut, E>(lifespan: Lifespan, factory: F) -> Self
    where
        T: ?Sized + Send + Sync + 'static,
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let factory: Factory = Arc::new(move |cx| {
            let built = factory(cx);
            Box::pin(async move {
                let value = built.await.map_err(Into::into)?;
                Ok(Built::__new(value, None))
            })
        });
        Self::with_value(
            lifespan,
            ProvidedValue::Factory(factory),
            format!("a {lifespan} factory of `{}`", std::any::type_name::<T>()),
        )
        .typed::<T>()
    }

    fn with_value(lifespan: Lifespan, value: ProvidedValue, owner: String) -> Self {
        Self {
            type_id: TypeId::of::<()>(),
            type_name: "",
            lifespan,
            owner,
            source: None,
            declare: |_| {},
            value,
            disposable: false,
        }
    }

    fn typed<T: ?Sized + 'static>(mut self) -> Self {
        self.type_id = TypeId::of::<T>();
        self.type_name = std::any::type_name::<T>();
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

    /// Not public API, used by generated code: a provider from an erased factory.
    #[doc(hidden)]
    pub fn __erased<T: ?Sized + Send + Sync + 'static>(
        lifespan: Lifespan,
        factory: fn(RunContext) -> BoxFuture<'static, Result<Built, BoxError>>,
        declare: fn(&mut Dependencies),
        disposable: bool,
    ) -> Self {
        let mut provider = Self::with_value(
            lifespan,
            ProvidedValue::Factory(Arc::new(factory)),
            String::new(),
        )
        .typed::<T>();
        provider.declare = declare;
        provider.disposable = disposable;
        provider
    }
}

/// Erases an `Arc<T>`, for any `T` including trait objects.
pub(crate) fn erase<T: ?Sized + Send + Sync + 'static>(value: Arc<T>) -> AnyValue {
    Arc::new(value)
}

/// Recovers the `Arc<T>` an [`AnyValue`] holds.
pub(crate) fn unerase<T: ?Sized + Send + Sync + 'static>(value: &AnyValue) -> Option<Arc<T>> {
    value.downcast_ref::<Arc<T>>().cloned()
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("type_name", &self.type_name)
            .field("lifespan", &self.lifespan)
            .field("owner", &self.owner)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// One registration, as the built container keeps it.
struct Entry {
    type_name: &'static str,
    lifespan: Lifespan,
    factory: Option<Factory>,
    /// For singletons: the value once built.
    singleton: OnceCell<AnyValue>,
    /// For scoped registrations: their slot in every scope.
    scoped_slot: usize,
    /// The context singletons are built in: their owning service's, or the host's.
    home: (ServiceInfo, CancellationToken),
}

/// The built container. Singletons are built on first resolution, and the host resolves every
/// singleton before starting the first service, so building errors surface at startup.
pub struct Container {
    index: HashMap<TypeId, usize>,
    entries: Vec<Entry>,
    scoped_count: usize,
    /// The context of values that no service owns.
    host_home: (ServiceInfo, CancellationToken),
    /// Values to dispose when the host ends (singletons, and transients built outside any
    /// scope), in the order they were built.
    disposables: Mutex<Vec<Disposer>>,
    lifetime: Lifetime,
}

impl Container {
    /// `home_of` gives, per owning service name, the context its values are built in; other
    /// singletons are built in the host's own context.
    pub(crate) fn new(
        providers: Vec<Provider>,
        lifetime: Lifetime,
        home_of: impl Fn(&str) -> Option<(ServiceInfo, CancellationToken)>,
    ) -> Self {
        let host_home = (
            ServiceInfo::new(
                "hosted::container".into(),
                ServiceKind::Hosted,
                0,
                Vec::new(),
                crate::FailurePolicy::StopHost,
                None,
            ),
            lifetime.stopping_token(),
        );
        let mut scoped_count = 0;
        let mut index = HashMap::with_capacity(providers.len());
        let mut entries = Vec::with_capacity(providers.len());
        let mut disposables = Vec::new();
        for provider in providers {
            let home = home_of(&provider.owner).unwrap_or_else(|| host_home.clone());
            let (singleton, factory) = match provider.value {
                ProvidedValue::Instance(Built { value, disposer }) => {
                    disposables.extend(disposer);
                    (OnceCell::new_with(Some(value)), None)
                }
                ProvidedValue::Factory(factory) => (OnceCell::new(), Some(factory)),
            };
            let scoped_slot = scoped_count;
            if provider.lifespan == Lifespan::Scoped {
                scoped_count += 1;
            }
            index.insert(provider.type_id, entries.len());
            entries.push(Entry {
                type_name: provider.type_name,
                lifespan: provider.lifespan,
                factory,
                singleton,
                scoped_slot,
                home,
            });
        }
        Self {
            index,
            entries,
            scoped_count,
            host_home,
            disposables: Mutex::new(disposables),
            lifetime,
        }
    }

    /// How many types are registered.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A context outside any scope, for code that is not a service.
    pub(crate) fn root_context(self: &Arc<Self>) -> RunContext {
        let (info, stop) = self.host_home.clone();
        RunContext::new(info, stop, self.lifetime.clone(), Arc::clone(self), false)
    }

    /// Whether anything provides `T`.
    pub(crate) fn provides(&self, type_id: TypeId) -> bool {
        self.index.contains_key(&type_id)
    }

    /// The value of `T` for a consumer running in `cx`.
    pub(crate) async fn resolve<T: ?Sized + Send + Sync + 'static>(
        self: &Arc<Self>,
        cx: &RunContext,
    ) -> Result<Arc<T>, InjectError> {
        let type_name = std::any::type_name::<T>();
        // The awaiting happens in a function that is not generic over `T`, the shape rustc can
        // prove `Send` for when `T` is a trait object (rust-lang/rust#110338).
        let value = self
            .resolve_erased(TypeId::of::<T>(), type_name, cx)
            .await?;
        unerase::<T>(&value).ok_or(InjectError::NotRegistered { type_name })
    }

    async fn resolve_erased(
        self: &Arc<Self>,
        type_id: TypeId,
        type_name: &'static str,
        cx: &RunContext,
    ) -> Result<AnyValue, InjectError> {
        let position = *self
            .index
            .get(&type_id)
            .ok_or(InjectError::NotRegistered { type_name })?;
        let entry = &self.entries[position];
        match entry.lifespan {
            Lifespan::Singleton => self.singleton(position).await,
            Lifespan::Scoped => {
                let scope = cx.scope().ok_or(InjectError::OutsideScope { type_name })?;
                let slot = scope.slot(entry.scoped_slot);
                let value = slot
                    .get_or_try_init(|| async {
                        let Built { value, disposer } = self.build(entry, cx.clone()).await?;
                        let weak = Arc::downgrade(&value);
                        scope.created(value, disposer);
                        Ok::<_, InjectError>(weak)
                    })
                    .await?;
                // Fails only once the scope has ended and released its values.
                value
                    .upgrade()
                    .ok_or(InjectError::OutsideScope { type_name })
            }
            Lifespan::Transient => {
                let Built { value, disposer } = self.build(entry, cx.clone()).await?;
                match cx.scope() {
                    Some(scope) => scope.created(value.clone(), disposer),
                    None => self.dispose_at_end(disposer),
                }
                Ok(value)
            }
        }
    }

    /// The singleton at `position`, built now if this is the first request.
    fn singleton(
        self: &Arc<Self>,
        position: usize,
    ) -> BoxFuture<'_, Result<AnyValue, InjectError>> {
        // Boxed: building a singleton may resolve another singleton, recursively.
        Box::pin(async move {
            let entry = &self.entries[position];
            entry
                .singleton
                .get_or_try_init(|| async {
                    let (info, stop) = entry.home.clone();
                    let cx =
                        RunContext::new(info, stop, self.lifetime.clone(), Arc::clone(self), false);
                    let Built { value, disposer } = self.build(entry, cx).await?;
                    self.dispose_at_end(disposer);
                    Ok::<_, InjectError>(value)
                })
                .await
                .cloned()
        })
    }

    async fn build(&self, entry: &Entry, cx: RunContext) -> Result<Built, InjectError> {
        let factory = entry.factory.as_ref().ok_or(InjectError::NotRegistered {
            type_name: entry.type_name,
        })?;
        factory(cx).await.map_err(|source| InjectError::Failed {
            type_name: entry.type_name,
            source: Arc::from(source),
        })
    }

    /// Builds every singleton, so a failing factory stops startup before any service starts.
    pub(crate) async fn build_singletons(self: &Arc<Self>) -> Result<(), InjectError> {
        for position in 0..self.entries.len() {
            if self.entries[position].lifespan == Lifespan::Singleton {
                self.singleton(position).await?;
            }
        }
        Ok(())
    }

    /// Disposes the singletons (and transients built outside any scope) in reverse build order;
    /// called once every service has stopped.
    pub(crate) async fn dispose_singletons(&self, exit: ScopeExit) {
        let built = std::mem::take(
            &mut *self
                .disposables
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for disposer in built.into_iter().rev() {
            disposer(exit).await;
        }
    }

    pub(crate) fn has_disposables(&self) -> bool {
        !self
            .disposables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    fn dispose_at_end(&self, disposer: Option<Disposer>) {
        if let Some(disposer) = disposer {
            self.disposables
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(disposer);
        }
    }

    /// A fresh scope sized for this container.
    pub(crate) fn new_scope(&self) -> Arc<ScopeState> {
        Arc::new(ScopeState::new(self.scoped_count))
    }
}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container")
            .field(
                "registered",
                &self
                    .entries
                    .iter()
                    .map(|entry| (entry.type_name, entry.lifespan))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}
