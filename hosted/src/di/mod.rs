//! Dependency injection: the one [`Inject`] trait every parameter and injected field resolves
//! through, the [`RunContext`] of one run, the container of registrations ([`Provider`], each
//! with its [`ServiceLifetime`]), and the scopes that hold a run's scoped values until the run
//! ends ([`Scope`], [`ScopeFactory`], [`Dispose`]).
//!
//! A background body, a tick and a queue item are all *runs*: each gets a fresh
//! [`RunContext`], and with it a fresh scope when anything it resolves is scoped. The lifetimes
//! and their checks are described on [`scoped`](macro@crate::scoped).

pub(crate) mod construct;
mod container;
mod context;
mod inject;
pub(crate) mod provider;
mod scope;
mod site;
mod type_index;

pub(crate) use self::construct::Construct;
pub use self::container::Container;
pub use self::context::RunContext;
pub(crate) use self::context::RunEnd;
pub(crate) use self::inject::Requirement;
pub use self::inject::{Dependencies, Inject, InjectError};
pub(crate) use self::provider::disposer_of;
pub(crate) use self::provider::{Built, GeneratedFactory};
pub use self::provider::{Provider, ServiceLifetime};
pub use self::scope::{Dispose, Scope, ScopeExit, ScopeFactory};
pub use self::site::{InjectSite, Injection, Shareable, inject, provided};
