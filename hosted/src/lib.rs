#![doc = include_str!("docs/overview.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(
    clippy::needless_doctest_main,
    reason = "the documentation of `run!` shows whole `main` functions on purpose"
)]

pub mod docs;

// The concepts, in the order data flows: what a service is, injection, the registry,
// configuration, the host; then the kinds of service and the testing tools.
#[cfg(feature = "config")]
pub mod config;
pub mod di;
#[cfg(feature = "postgres")]
pub mod durable;
pub mod host;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod queue;
pub mod registry;
pub mod service;
pub mod status;
#[cfg(feature = "systemd")]
pub mod systemd;
pub mod telemetry;
pub mod testing;
pub mod timer;
#[cfg(feature = "web")]
pub mod web;

mod run;
mod util;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

// Not public API: where `hosted::run!()` expands to, at the root so messages name it
// `hosted::run_main`.
#[doc(hidden)]
pub use crate::run::run_main;

#[doc = include_str!("docs/hosted_service.md")]
pub use hosted_macros::hosted_service;
#[doc = include_str!("docs/queued.md")]
pub use hosted_macros::queued;
#[cfg(feature = "web")]
#[doc = include_str!("docs/routes.md")]
pub use hosted_macros::routes;
#[doc = include_str!("docs/run.md")]
pub use hosted_macros::run;
#[doc = include_str!("docs/service_lifetimes.md")]
pub use hosted_macros::scoped;
/// One instance for the whole host. The service lifetimes, arguments and checks are documented on
/// [`scoped`](macro@scoped).
pub use hosted_macros::singleton;
#[doc = include_str!("docs/timed.md")]
pub use hosted_macros::timed;
/// A new instance each time one is asked for. The service lifetimes, arguments and checks are documented
/// on [`scoped`](macro@scoped).
pub use hosted_macros::transient;
pub use tokio_util::sync::CancellationToken;

#[cfg(feature = "config")]
pub use crate::config::{Config, Secret, Section};
pub use crate::di::{Dispose, ScopeExit, ScopeFactory};
pub use crate::host::Host;
pub use crate::queue::{Queue, WorkQueue};
pub use crate::service::{
    ApplicationLifetime, BoxError, FailurePolicy, HostedService, ServiceContext,
};
pub use crate::timer::Tick;
