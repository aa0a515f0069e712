//! The built container: every registration with its lifetime, the singletons once built, and
//! resolution for a run. Scoped and transient values live in a [`Scope`](super::Scope) instead.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::provider::{
    AnyValue, Built, Disposer, Extract, Factory, ProvidedValue, Share, Step, extract,
};
use super::scope::{Claim, ScopeState};
use super::type_index::TypeIndex;
use super::{InjectError, Provider, RunContext, ScopeExit, ServiceLifetime};
use crate::service::{ApplicationLifetime, ServiceInfo, ServiceKind};
use crate::util::BoxFuture;

/// One registration, as the built container keeps it.
struct Entry {
    type_name: &'static str,
    lifetime: ServiceLifetime,
    factory: Option<Factory>,
    extract: Extract,
    /// For singletons: the value once built.
    singleton: OnceCell<AnyValue>,
    /// For singletons: the value once built, as the `Arc<T>` its consumers receive.
    shared: OnceLock<Box<dyn Any + Send + Sync>>,
    share: Share,
    /// For scoped registrations: their slot in every scope.
    scoped_slot: usize,
    /// The context singletons are built in: their owning service's, or the host's.
    home: (ServiceInfo, CancellationToken),
}

impl Entry {
    /// This scoped registration's value in `cx`'s scope if it is built, or built now when its
    /// factory need not await.
    fn scoped_now(&self, cx: &RunContext) -> Option<Result<AnyValue, InjectError>> {
        let scope = cx.scope()?;
        let slot = self.scoped_slot;
        if !matches!(self.factory, Some(Factory::Sync(_) | Factory::Stepwise(_))) {
            return scope.built_value(slot).map(Ok);
        }
        match scope.claim(slot) {
            Claim::Ready(value) => Some(Ok(value)),
            Claim::Wait | Claim::Closed => None,
            // Dropped unfilled, the claim gives the cell up.
            Claim::Build(claim) => match self.build_now(cx)? {
                Ok(Built { value, disposer }) => {
                    claim.fill(value.clone(), disposer);
                    Some(Ok(value))
                }
                Err(error) => Some(Err(error)),
            },
        }
    }

    /// Builds the value if its factory can without awaiting; `None` otherwise, with
    /// whatever a stepwise factory started dropped (it built nothing `resolve` would not reuse).
    fn build_now(&self, cx: &RunContext) -> Option<Result<Built, InjectError>> {
        let built = match self.factory.as_ref()? {
            Factory::Sync(factory) => factory(cx),
            Factory::Stepwise(factory) => match factory(cx) {
                Ok(Step::Now(built)) => Ok(built),
                Ok(Step::Later(_)) => return None,
                Err(error) => Err(error),
            },
            Factory::Async(_) => return None,
        };
        Some(built.map_err(|source| InjectError::Failed {
            type_name: self.type_name,
            source: Arc::from(source),
        }))
    }
}

/// The built container. Singletons are built on first resolution, and the host resolves every
/// singleton before starting the first service, so building errors surface at startup.
pub struct Container {
    /// Registration positions by type.
    index: TypeIndex,
    entries: Vec<Entry>,
    /// The context of values that no service owns.
    host_home: (ServiceInfo, CancellationToken),
    /// Values to dispose when the host ends (singletons, and transients built outside any
    /// scope), in the order they were built.
    disposables: Mutex<Vec<Disposer>>,
    lifetime: ApplicationLifetime,
    /// How many registrations are scoped: the cells of every scope.
    scoped_count: usize,
}

impl Container {
    /// `home_of` gives, per owning service name, the context its values are built in; other
    /// singletons are built in the host's own context.
    pub(crate) fn new(
        providers: Vec<Provider>,
        lifetime: ApplicationLifetime,
        home_of: impl Fn(&str) -> Option<(ServiceInfo, CancellationToken)>,
    ) -> Self {
        let host_home = (
            ServiceInfo::new(
                "hosted::container".into(),
                ServiceKind::Hosted,
                0,
                Vec::new(),
                Arc::new(crate::service::FailurePolicy::StopHost),
                None,
                crate::service::Settings::default(),
            ),
            lifetime.stopping_token(),
        );
        let mut scoped_count = 0;
        let mut index = TypeIndex::with_capacity(providers.len());
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
            if provider.lifetime == ServiceLifetime::Scoped {
                scoped_count += 1;
            }
            index.insert(provider.type_id, entries.len());
            entries.push(Entry {
                type_name: provider.type_name,
                lifetime: provider.lifetime,
                factory,
                extract: provider.extract,
                shared: singleton
                    .get()
                    .and_then(|value| (provider.share)(value, provider.extract))
                    .map(OnceLock::from)
                    .unwrap_or_default(),
                share: provider.share,
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
            scoped_count,
        }
    }

    /// The lifetime of the host this container belongs to.
    pub(crate) fn lifetime(&self) -> &ApplicationLifetime {
        &self.lifetime
    }

    /// How many types are registered.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A context outside any scope, for code that is not a service.
    pub(crate) fn root_context(self: &Arc<Self>) -> RunContext {
        let (info, stop) = self.host_home.clone();
        RunContext::new(info, stop, Arc::clone(self), false)
    }

    /// Whether anything provides `T`.
    pub(crate) fn provides(&self, type_id: TypeId) -> bool {
        self.position(type_id).is_some()
    }

    /// The value of `T` for a consumer running in `cx`, if it can be had without awaiting: a
    /// singleton already built, a scoped value already built in `cx`'s scope, or one whose
    /// factory builds it at once. `None` leaves nothing claimed: the caller then goes through
    /// [`resolve`](Self::resolve).
    pub(crate) fn resolve_now<T: ?Sized + Send + Sync + 'static>(
        &self,
        cx: &RunContext,
    ) -> Option<Result<Arc<T>, InjectError>> {
        let entry = &self.entries[self.position(TypeId::of::<T>())?];
        let value = match entry.lifetime {
            ServiceLifetime::Singleton => {
                return entry
                    .shared
                    .get()?
                    .downcast_ref::<Arc<T>>()
                    .cloned()
                    .map(Ok);
            }
            ServiceLifetime::Scoped => match entry.scoped_now(cx)? {
                Ok(value) => value,
                Err(error) => return Some(Err(error)),
            },
            ServiceLifetime::Transient => return None,
        };
        let type_name = std::any::type_name::<T>();
        Some(
            extract::<T>(value, entry.extract)
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
        extract::<T>(value, read).ok_or_else(|| InjectError::NotRegistered { type_name })
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
        let value = match entry.lifetime {
            ServiceLifetime::Singleton => match entry.singleton.get() {
                Some(value) => value.clone(),
                None => self.singleton(position).await?,
            },
            ServiceLifetime::Scoped => self.scoped(entry, type_name, cx).await?,
            ServiceLifetime::Transient => {
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
                Claim::Wait => scope.wait_for(slot).await,
                Claim::Build(claim) => {
                    // A failed build, or this future dropped midway, drops the claim unfilled:
                    // the cell is given up, and a waiter builds it instead.
                    let Built { value, disposer } = self.build(entry, cx).await?;
                    claim.fill(value.clone(), disposer);
                    return Ok(value);
                }
            }
        }
    }

    fn position(&self, type_id: TypeId) -> Option<usize> {
        self.index.get(type_id)
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
                    let cx = RunContext::new(info, stop, Arc::clone(self), false);
                    let Built { value, disposer } = self.build(entry, &cx).await?;
                    self.dispose_at_end(disposer);
                    if let Some(shared) = (entry.share)(&value, entry.extract) {
                        let _ = entry.shared.set(shared);
                    }
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
            Factory::Stepwise(factory) => match factory(cx) {
                Ok(Step::Now(built)) => Ok(built),
                Ok(Step::Later(rest)) => rest.await,
                Err(error) => Err(error),
            },
        };
        built.map_err(|source| InjectError::Failed {
            type_name: entry.type_name,
            source: Arc::from(source),
        })
    }

    /// Builds every singleton, so a failing factory stops startup before any service starts.
    pub(crate) async fn build_singletons(self: &Arc<Self>) -> Result<(), InjectError> {
        for position in 0..self.entries.len() {
            if self.entries[position].lifetime == ServiceLifetime::Singleton {
                self.singleton(position).await?;
            }
        }
        Ok(())
    }

    /// Disposes the singletons (and transients built outside any scope) in reverse build order;
    /// called once every service has stopped.
    pub(crate) async fn dispose_singletons(
        &self,
        exit: ScopeExit,
    ) -> Result<(), crate::service::Failure> {
        let built = std::mem::take(
            &mut *self
                .disposables
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut panics = Vec::new();
        for disposer in built.into_iter().rev() {
            if let Err(message) = crate::util::CatchUnwind::new(|| disposer(exit)).await {
                panics.push(message);
            }
        }
        super::scope::disposal_result(&panics)
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

    /// A fresh scope sized for this container: a cell per scoped registration.
    pub(crate) fn new_scope(&self) -> Arc<ScopeState> {
        super::scope::fresh_scope(self.scoped_count)
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
                    .map(|entry| (entry.type_name, entry.lifetime))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}
