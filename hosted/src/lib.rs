#![doc = include_str!("docs/overview.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(
    clippy::needless_doctest_main,
    reason = "the documentation of `run!` shows whole `main` functions on purpose"
)]

pub mod docs;
pub mod timer;

#[cfg(feature = "config")]
mod config;
mod container;
mod entry;
mod error;
mod host;
mod inject;
mod lifecycle;
mod lifetime;
mod options;
mod ordering;
mod policy;
mod queue;
mod registry;
mod scope;
mod service;
mod settings;
mod shutdown;
mod supervisor;
mod util;
mod validation;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[doc = include_str!("docs/hosted_service.md")]
pub use hosted_macros::hosted_service;
#[doc = include_str!("docs/queued.md")]
pub use hosted_macros::queued;
#[doc = include_str!("docs/run.md")]
pub use hosted_macros::run;
#[doc = include_str!("docs/lifespans.md")]
pub use hosted_macros::scoped;
/// One instance for the whole host. The lifespans, arguments and checks are documented on
/// [`scoped`](macro@scoped).
pub use hosted_macros::singleton;
#[doc = include_str!("docs/timed.md")]
pub use hosted_macros::timed;
/// A new instance each time one is asked for. The lifespans, arguments and checks are documented
/// on [`scoped`](macro@scoped).
pub use hosted_macros::transient;
pub use tokio_util::sync::CancellationToken;

#[cfg(feature = "config")]
pub use crate::config::{
    Config, ConfigError, ConfigSources, Configuration, DEFAULT_ENV_PREFIX, DEFAULT_ENVIRONMENT,
    DEFAULT_FILE, Secret, Section,
};
pub use crate::container::{Container, Lifespan, Provider};
pub use crate::entry::EXIT_USAGE;
pub use crate::error::{BuildError, CaptiveLink, EXIT_CONFIG, Failure, Problem};
pub use crate::host::{Host, HostBuilder, RunningHost, SettingLine};
pub use crate::inject::{Dependencies, Inject, InjectError, RunContext};
pub use crate::lifecycle::Outcome;
pub use crate::lifetime::{Lifetime, StopReason};
pub use crate::options::DEFAULT_SHUTDOWN_TIMEOUT;
pub use crate::policy::{FailurePolicy, RestartPolicy};
pub use crate::queue::{
    DeadLetter, DeadLetters, FullMode, Queue, QueueHandler, QueueOptions, QueueStats, SendError,
    WorkItem, WorkQueue,
};
pub use crate::registry::ServiceDescriptor;
pub use crate::scope::{Dispose, Scope, ScopeExit, ScopeFactory};
pub use crate::service::{
    BoxError, HostedService, IntoOutcome, ServiceContext, ServiceInfo, ServiceKind, SourceLocation,
};
pub use crate::settings::{Origin, Setting, SettingKind, SettingValue, Settings, TextCheck};
pub use crate::shutdown::{EXIT_SECOND_INTERRUPT, EXIT_SECOND_TERMINATE};
pub use crate::supervisor::Incident;
pub use crate::timer::Tick;
pub use crate::timer::testing;
