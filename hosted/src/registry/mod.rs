//! What the host knows before it is built: service descriptors and registered types, collected
//! from the attributes before `main` (each submits a [`Registration`] from a constructor in the
//! executable's initialisation section) or added by hand on the builder, and
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
use std::sync::{Mutex, PoisonError};

use crate::di::Provider;

/// One item submitted by an attribute macro. Not public API, used by generated code.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
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

    /// Not public API, used by generated code: adds the registration to those
    /// [`Registry::discovered`] reads. Called before `main` by the constructor each annotated item
    /// places in the executable's initialisation section (as `inventory` does), so it must not
    /// panic: a poisoned lock is taken over, since pushing cannot leave the list half-written.
    #[doc(hidden)]
    pub fn submit(self) {
        SUBMITTED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self);
    }
}

/// An annotated item's registration, submitted by [`submit`]. Not public API, used by generated
/// code.
#[doc(hidden)]
pub trait Register {
    /// The crate the attribute was written in (`CARGO_CRATE_NAME`).
    const CRATE: &'static str;
    /// Adds the item to the registry.
    fn register(registry: &mut Registry);
}

/// Not public API, used by generated code: the constructor an annotated item places in the
/// executable's initialisation section, submitting `T`'s registration before `main`. One generic
/// function instead of one constructor per item keeps the expansion small.
#[doc(hidden)]
pub extern "C" fn submit<T: Register>() {
    Registration::new(T::register, T::CRATE).submit();
}

/// Every registration submitted so far, in the order the constructors ran.
static SUBMITTED: Mutex<Vec<Registration>> = Mutex::new(Vec::new());

/// The name an annotated item registers under, so `after = path` is checked by the compiler.
/// Not public API, used by generated code; public in this module so messages name it as
/// `hosted::registry::ServiceKey`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`after` names something that is not a hosted service",
    label = "not an item annotated with `#[hosted_service]`, `#[timed]` or `#[queued]`",
    note = "give the path of an annotated item, or the service's name as a string: `after = \"name\"`"
)]
pub trait ServiceKey {
    /// The registered name.
    const NAME: &'static str;
}

/// Not public API, used by generated code: where an annotated item was written.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) krate: &'static str,
}

impl At {
    /// Not public API, used by generated code: where the call is written (generated code spans
    /// it at the function's name), in `krate` (`CARGO_CRATE_NAME`). Read through
    /// `#[track_caller]` rather than `line!()`, so the expansion holds no line number that an
    /// edit above the item would change.
    #[must_use]
    #[track_caller]
    pub const fn here(krate: &'static str) -> Self {
        let caller = std::panic::Location::caller();
        Self {
            file: caller.file(),
            line: caller.line(),
            krate,
        }
    }
}

/// What `after = plain_fn` names, as messages print it. Not public API, used by generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct NotAHostedService;

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
        let submitted = SUBMITTED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // Newest first, as `inventory` listed them: the order services with equal `order` have
        // always started and been listed in.
        for registration in submitted.iter().rev() {
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
