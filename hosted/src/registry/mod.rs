//! What the host knows before it is built: service descriptors and registered types, collected
//! from the attributes at link time (through `inventory`) or added by hand on the builder, and
//! the [`Problem`]s that can be found in them.
//!
//! The registry describes; it runs nothing. A [`ServiceDescriptor`] says how to make the running
//! service once the container exists, and the host drives what it makes.

mod background;
mod descriptor;
mod problem;

pub(crate) use self::background::FnService;
pub(crate) use self::descriptor::MakeService;
pub use self::descriptor::ServiceDescriptor;
pub use self::problem::{CaptiveLink, Problem};

use std::collections::BTreeSet;

use crate::di::Provider;

/// One item submitted by an attribute macro. Not public API, used by generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration {
    register: fn(&mut Registry),
    /// The crate the attribute was written in (`CARGO_CRATE_NAME`).
    krate: &'static str,
}

impl Registration {
    /// Not public API, used by generated code.
    #[doc(hidden)]
    #[must_use]
    pub const fn new(register: fn(&mut Registry), krate: &'static str) -> Self {
        Self { register, krate }
    }
}

inventory::collect!(Registration);

/// Everything registered with a host, before it is validated and built.
#[derive(Debug, Default)]
pub struct Registry {
    pub(crate) services: Vec<ServiceDescriptor>,
    pub(crate) providers: Vec<Provider>,
    /// The crates whose attributes contributed at least one registration, as the linker kept
    /// them.
    pub(crate) crates: BTreeSet<&'static str>,
}

impl Registry {
    /// Every registration the attribute macros submitted in the linked crates.
    pub(crate) fn discovered() -> Self {
        let mut registry = Self::default();
        for registration in inventory::iter::<Registration> {
            let before = registry.services.len() + registry.providers.len();
            (registration.register)(&mut registry);
            if registry.services.len() + registry.providers.len() > before {
                registry.crates.insert(registration.krate);
            }
        }
        registry
    }

    /// Adds a service; used by generated code and by [`HostBuilder::add_service`](crate::host::HostBuilder::add_service).
    pub fn add_service(&mut self, mut service: ServiceDescriptor) {
        if let Some(provider) = service.provider.take() {
            self.providers.push(provider);
        }
        self.services.push(service);
    }

    /// Adds a registered type; used by generated code and by
    /// [`HostBuilder::provide`](crate::host::HostBuilder::provide).
    pub fn add_provider(&mut self, provider: Provider) {
        self.providers.push(provider);
    }

    pub(crate) fn extend(&mut self, other: Self) {
        self.services.extend(other.services);
        self.providers.extend(other.providers);
        self.crates.extend(other.crates);
    }
}
