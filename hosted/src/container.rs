//! The container: registered types with their lifespans, how to build them, and the singletons
//! once built. Scoped and transient values live in a [`Scope`](crate::scope) instead.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::inject::{Dependencies, InjectError, RunContext};
use crate::lifetime::Lifetime;
use crate::scope::{Claim, Dispose, ScopeExit, ScopeState};
use crate::service::{BoxError, ServiceInfo, ServiceKind, SourceLocation};
use crate::util::BoxFuture;

/// A built value, type-erased: the `Arc<T>` itself for a sized `T`, or an `Arc<Arc<T>>` for a
/// trait object. The registration's [`Extract`] knows which.
pub(crate) type AnyValue = Arc<dyn Any + Send + Sync>;

/// Gets the `Arc<T>` back out of an [`AnyValue`]: monomorphic to one registration, it writes
/// into the `Option<Arc<T>>` the resolver passes as `&mut dyn Any`, so the resolver can stay
/// generic over unsized `T` while sized values are stored in a single allocation.
pub(crate) type Extract = fn(&AnyValue, &mut dyn Any);

fn extract_sized<T: Send + Sync + 'static>(value: &AnyValue, out: &mut dyn Any) {
    if let Some(out) = out.downcast_mut::<Option<Arc<T>>>() {
        *out = Arc::clone(value).downcast::<T>().ok();
    }
}

fn extract_boxed<T: ?Sized + Send + Sync + 'static>(value: &AnyValue, out: &mut dyn Any) {
    if let Some(out) = out.downcast_mut::<Option<Arc<T>>>() {
        *out = value.downcast_ref::<Arc<T>>().cloned();
    }
}

/// The `Arc<T>` in `value`, read through the registration's `extract`.
pub(crate) fn extract<T: ?Sized + Send + Sync + 'static>(
    value: &AnyValue,
    extract: Extract,
) -> Option<Arc<T>> {
    let mut out: Option<Arc<T>> = None;
    extract(value, &mut out);
    out
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
}

/// Not public API, used by generated code: the factory a generated registration provides.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum GeneratedFactory {
    /// Injects parameters, or awaits the user's `async fn`.
    Async(fn(RunContext) -> BoxFuture<'static, Result<Built, BoxError>>),
    /// Needs nothing injected and does not await.
    Sync(fn(&RunContext) -> Result<Built, BoxError>),
}

impl From<GeneratedFactory> for Factory {
    fn from(factory: GeneratedFactory) -> Self {
        match factory {
            GeneratedFactory::Async(factory) => Self::Async(Arc::new(factory)),
            GeneratedFactory::Sync(factory) => Self::Sync(factory),
        }
    }
}

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
    pub(crate) extract: Extract,
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
        let read = self.extract;
        let attach = move |mut built: Built| {
            built.disposer = extract::<T>(&built.value, read).map(|value| disposer_of(&value));
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
        let factory = Factory::Async(Arc::new(move |cx| {
            let built = factory(cx);
            Box::pin(async move {
                let value = built.await.map_err(Into::into)?;
                Ok(Built::__new(value, None))
            })
        }));
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
            extract: |_, _| {},
            disposable: false,
        }
    }

    /// Names the provided type; its values are read back as stored by [`Built::__new`].
    fn typed<T: ?Sized + Send + Sync + 'static>(mut self) -> Self {
        self.type_id = TypeId::of::<T>();
        self.type_name = std::any::type_name::<T>();
        self.extract = extract_boxed::<T>;
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
        lifespan: Lifespan,
        factory: GeneratedFactory,
        declare: fn(&mut Dependencies),
        disposable: bool,
    ) -> Self {
        let mut provider = Self::with_value(
            lifespan,
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
        lifespan: Lifespan,
        factory: GeneratedFactory,
        declare: fn(&mut Dependencies),
        disposable: bool,
    ) -> Self {
        let mut provider = Self::__erased::<T>(lifespan, factory, declare, disposable);
        provider.extract = extract_sized::<T>;
        provider
    }
}

/// Runs `factory` in the context `cx`.
async fn build_with(factory: &Factory, cx: RunContext) -> Result<Built, BoxError> {
    match factory {
        Factory::Async(factory) => factory(cx).await,
        Factory::Sync(factory) => factory(&cx),
    }
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

/// Hashes a `TypeId` by taking the bits it hashes itself as: a `TypeId` is already a hash, so
/// hashing it again on every resolution would be wasted work.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `TypeId`, which writes integers; kept correct all the same.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }

    fn write_u128(&mut self, value: u128) {
        #[allow(clippy::cast_possible_truncation, reason = "folding 128 bits into 64")]
        let folded = (value as u64) ^ ((value >> 64) as u64);
        self.0 ^= folded;
    }
}

/// One registration, as the built container keeps it.
struct Entry {
    type_name: &'static str,
    lifespan: Lifespan,
    factory: Option<Factory>,
    extract: Extract,
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
    /// Registration positions by type.
    index: HashMap<TypeId, usize, BuildHasherDefault<TypeIdHasher>>,
    entries: Vec<Entry>,
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
                crate::settings::Settings::default(),
            ),
            lifetime.stopping_token(),
        );
        let mut scoped_count = 0;
        let mut index =
            HashMap::with_capacity_and_hasher(providers.len(), BuildHasherDefault::default());
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
                extract: provider.extract,
                singleton,
                scoped_slot,
                home,
            });
        }
        Self {
            index,
            entries,
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
        self.position(type_id).is_some()
    }

    /// The value of `T` for a consumer running in `cx`, if it can be had without building
    /// anything: a singleton already built, or a scoped value already built in `cx`'s scope.
    pub(crate) fn resolve_now<T: ?Sized + Send + Sync + 'static>(
        &self,
        cx: &RunContext,
    ) -> Option<Result<Arc<T>, InjectError>> {
        let entry = &self.entries[self.position(TypeId::of::<T>())?];
        let value = match entry.lifespan {
            Lifespan::Singleton => entry.singleton.get()?.clone(),
            Lifespan::Scoped => cx.scope()?.built_value(entry.scoped_slot)?,
            Lifespan::Transient => return None,
        };
        let type_name = std::any::type_name::<T>();
        Some(
            extract::<T>(&value, entry.extract)
                .ok_or_else(|| InjectError::NotRegistered { type_name }),
        )
    }

    /// The value of `T` for a consumer running in `cx`.
    pub(crate) async fn resolve<T: ?Sized + Send + Sync + 'static>(
        self: &Arc<Self>,
        cx: &RunContext,
    ) -> Result<Arc<T>, InjectError> {
        let type_name = std::any::type_name::<T>();
        // The awaiting happens in a function that is not generic over `T`, the shape rustc can
        // prove `Send` for when `T` is a trait object (rust-lang/rust#110338).
        let (value, read) = self
            .resolve_erased(TypeId::of::<T>(), type_name, cx)
            .await?;
        extract::<T>(&value, read).ok_or_else(|| InjectError::NotRegistered { type_name })
    }

    async fn resolve_erased(
        self: &Arc<Self>,
        type_id: TypeId,
        type_name: &'static str,
        cx: &RunContext,
    ) -> Result<(AnyValue, Extract), InjectError> {
        let position = self
            .position(type_id)
            .ok_or_else(|| InjectError::NotRegistered { type_name })?;
        let entry = &self.entries[position];
        let value = match entry.lifespan {
            Lifespan::Singleton => match entry.singleton.get() {
                Some(value) => value.clone(),
                None => self.singleton(position).await?,
            },
            Lifespan::Scoped => self.scoped(entry, type_name, cx).await?,
            Lifespan::Transient => {
                let Built { value, disposer } = self.build(entry, cx).await?;
                match cx.scope() {
                    Some(scope) => scope.created(value.clone(), disposer),
                    None => self.dispose_at_end(disposer),
                }
                value
            }
        };
        Ok((value, entry.extract))
    }

    /// The scoped value of `entry` in `cx`'s scope, built now if this is the first request.
    async fn scoped(
        &self,
        entry: &Entry,
        type_name: &'static str,
        cx: &RunContext,
    ) -> Result<AnyValue, InjectError> {
        let scope = cx
            .scope()
            .ok_or_else(|| InjectError::OutsideScope { type_name })?;
        let slot = entry.scoped_slot;
        loop {
            match scope.claim(slot) {
                Claim::Ready(value) => return Ok(value),
                Claim::Closed => return Err(InjectError::OutsideScope { type_name }),
                Claim::Wait => {
                    // Listen first, then look again: the value may have come in between.
                    let built_elsewhere = scope.built();
                    if let Claim::Ready(value) = scope.recheck(slot) {
                        return Ok(value);
                    }
                    built_elsewhere.await;
                }
                Claim::Build => {
                    return match self.build(entry, cx).await {
                        Ok(Built { value, disposer }) => {
                            scope.fill(slot, value.clone(), disposer);
                            Ok(value)
                        }
                        Err(error) => {
                            scope.release_claim(slot);
                            Err(error)
                        }
                    };
                }
            }
        }
    }

    fn position(&self, type_id: TypeId) -> Option<usize> {
        self.index.get(&type_id).copied()
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
                    let Built { value, disposer } = self.build(entry, &cx).await?;
                    self.dispose_at_end(disposer);
                    Ok::<_, InjectError>(value)
                })
                .await
                .cloned()
        })
    }

    async fn build(&self, entry: &Entry, cx: &RunContext) -> Result<Built, InjectError> {
        let factory = entry
            .factory
            .as_ref()
            .ok_or_else(|| InjectError::NotRegistered {
                type_name: entry.type_name,
            })?;
        let built = match factory {
            Factory::Async(factory) => factory(cx.clone()).await,
            Factory::Sync(factory) => factory(cx),
        };
        built.map_err(|source| InjectError::Failed {
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
    pub(crate) fn new_scope() -> Arc<ScopeState> {
        Arc::new(ScopeState::new())
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
