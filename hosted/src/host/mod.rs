//! The host: [`HostBuilder`] collects and checks registrations, [`Host`] starts them in order,
//! [`RunningHost`] waits and stops them; `hosted::run!()` wraps it all in a `main`.
//!
//! | where | what |
//! |---|---|
//! | `builder.rs` | the builder: checks, configuration applied, start order planned |
//! | `validation.rs` | the checks before start: missing and duplicate registrations, captive dependencies, circles |
//! | `ordering.rs` | the start order from `order` and `after` |
//! | `lifecycle.rs` | start, stop and their budgets, the lifecycle hooks, the application lifetime events |
//! | `supervisor.rs` | a service's body under its failure policy |
//! | `signals.rs` | SIGINT, SIGTERM and the second signal |
//! | `options.rs` | the host's own settings |
//! | `entry.rs` | the `main` that `run!()` expands to: command line, logging, runtime |

mod builder;
mod built;
pub(crate) mod entry;
mod error;
mod lifecycle;
mod options;
mod ordering;
mod signals;
mod supervisor;
mod validation;

pub use self::builder::HostBuilder;
pub use self::built::{Host, RunningHost, SettingLine};
pub use self::entry::{EXIT_INSIDE_RUNTIME, EXIT_USAGE};
pub use self::error::{BuildError, EXIT_CONFIG};
pub use self::lifecycle::{Outcome, SHUTDOWN_GRACE};
pub use self::options::DEFAULT_SHUTDOWN_TIMEOUT;
pub use self::signals::{EXIT_SECOND_INTERRUPT, EXIT_SECOND_TERMINATE};
pub use self::supervisor::Incident;
