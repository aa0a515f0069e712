//! The container: one shared instance per registered type, built once, before any service
//! starts, and handed out as `Arc<T>`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::inject::{Dependencies, InjectError, RunContext};
use crate::lifetime::Lifetime;
use crate::service::{ServiceInfo, SourceLocation};
use crate::util::BoxFuture;

type AnyValue = Box<dyn Any + Send + Sync>;

/// Builds a registered value; receives the context of the service that owns the registration.
pub(crate) type Factory =
    Arc<dyn Fn(RunContext) -> BoxFuture<'static, Result<AnyValue, InjectError>> + Send + Sync>;

/// A registered type and how to obtain its one instance.
pub(crate) struct Provider {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    /// The service whose context the value is built in, and whose name identifies the
    /// registration in messages.
    pub(crate) owner: String,
    pub(crate) source: Option<SourceLocation>,
    pub(crate) declare: fn(&mut Dependencies),
    pub(crate) value: ProvidedValue,
}

pub(crate) enum ProvidedValue {
    /// Built by the host, once.
    Factory(Factory),
    /// Handed to the builder ready-made.
    Instance(AnyValue),
}

impl Provider {
    /// A provider of `Arc<T>` from an instance built elsewhere.
    pub(crate) fn instance<T: ?Sized + Send + Sync + 'static>(
        owner: String,
        instance: Arc<T>,
    ) -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            owner,
            source: None,
            declare: |_| {},
            value: ProvidedValue::Instance(Box::new(instance)),
        }
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("type_name", &self.type_name)
            .field("owner", &self.owner)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The built container. Values are created on first resolution, and the host resolves every
/// registration before starting the first service, so building errors surface at startup.
pub struct Container {
    slots: HashMap<TypeId, Slot>,
    lifetime: Lifetime,
}

struct Slot {
    type_name: &'static str,
    cell: OnceCell<AnyValue>,
    factory: Option<Factory>,
    home: Option<(ServiceInfo, CancellationToken)>,
}

impl Container {
    /// `homes` gives, per owning service name, the context its values are built in.
    pub(crate) fn new(
        providers: Vec<Provider>,
        lifetime: Lifetime,
        home_of: impl Fn(&str) -> Option<(ServiceInfo, CancellationToken)>,
    ) -> Self {
        let slots = providers
            .into_iter()
            .map(|provider| {
                let home = home_of(&provider.owner);
                let (cell, factory) = match provider.value {
                    ProvidedValue::Instance(value) => (OnceCell::new_with(Some(value)), None),
                    ProvidedValue::Factory(factory) => (OnceCell::new(), Some(factory)),
                };
                let slot = Slot {
                    type_name: provider.type_name,
                    cell,
                    factory,
                    home,
                };
                (provider.type_id, slot)
            })
            .collect();
        Self { slots, lifetime }
    }

    /// The shared instance of `T`, built now if this is the first request.
    pub(crate) async fn resolve<T: ?Sized + Send + Sync + 'static>(
        self: &Arc<Self>,
    ) -> Result<Arc<T>, InjectError> {
        let type_name = std::any::type_name::<T>();
        // The awaiting happens in a function that is not generic over `T`, the shape rustc can
        // prove `Send` for when `T` is a trait object (rust-lang/rust#110338).
        let value = self.resolve_erased(TypeId::of::<T>(), type_name).await?;
        value
            .downcast_ref::<Arc<T>>()
            .cloned()
            .ok_or(InjectError::NotRegistered { type_name })
    }

    async fn resolve_erased(
        self: &Arc<Self>,
        type_id: TypeId,
        type_name: &'static str,
    ) -> Result<&AnyValue, InjectError> {
        let slot = self
            .slots
            .get(&type_id)
            .ok_or(InjectError::NotRegistered { type_name })?;
        slot.cell.get_or_try_init(|| self.build(slot)).await
    }

    async fn build(self: &Arc<Self>, slot: &Slot) -> Result<AnyValue, InjectError> {
        let factory = slot.factory.as_ref().ok_or(InjectError::NotRegistered {
            type_name: slot.type_name,
        })?;
        let (info, stop) = slot.home.clone().ok_or(InjectError::NotRegistered {
            type_name: slot.type_name,
        })?;
        let cx = RunContext::new(info, stop, self.lifetime.clone(), Arc::clone(self));
        factory(cx).await
    }
}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container")
            .field(
                "registered",
                &self
                    .slots
                    .values()
                    .map(|slot| slot.type_name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}
