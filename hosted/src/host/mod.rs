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
//! | `host_lifetime.rs` | the [`HostLifetime`] seam: what runs before the first start and after the last stop |
//! | `signals.rs` | the console's lifetime: SIGINT, SIGTERM, SIGQUIT and the second signal |
//! | `options.rs` | the host's own settings |
//! | `report.rs` | `--list` and `--check` as JSON documents (`--format=json`) |
//! | `entry.rs` | the `main` that `run!()` expands to: command line, logging, runtime |
//! | `logging.rs` | the subscriber `run!()` installs, a writer that survives a broken stderr, the panic hook |

mod builder;
mod built;
pub(crate) mod entry;
mod error;
mod host_lifetime;
mod lifecycle;
mod logging;
mod options;
mod ordering;
mod report;
mod signals;
mod supervisor;
mod validation;

pub use self::builder::HostBuilder;
pub use self::built::{Host, RunningHost, SettingLine};
pub use self::entry::{EXIT_INSIDE_RUNTIME, EXIT_USAGE};
pub use self::error::{BuildError, EXIT_CONFIG};
pub use self::host_lifetime::{HostLifetime, LifetimeContext};
pub use self::lifecycle::{Outcome, SHUTDOWN_GRACE};
pub use self::options::{DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_TERMINATION_GRACE};
pub use self::signals::{
    EXIT_SECOND_INTERRUPT, EXIT_SECOND_QUIT, EXIT_SECOND_TERMINATE, SignalLifetime,
};
pub use self::supervisor::Incident;
