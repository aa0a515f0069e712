//! Configuration: layered sources merged by `figment`, applied to the host's settings, to every
//! service's settings and to typed sections, with the origin of every value kept for messages
//! and `--list`.
//!
//! Sources, lowest to highest precedence: defaults (the literals in attributes, values set on the
//! builder), `hosted.toml`, `hosted.<environment>.toml`, `HOSTED_`-prefixed environment
//! variables with `__` between sections, and `--key=value` command-line arguments.

//!
//! Three parts, in the order a value travels: [`ConfigSources`] reads the sources into a
//! [`Configuration`] (`sources.rs`); the [`Configuration`] is layered onto the host's settings and
//! every service's declared [`Setting`](crate::service::Setting)s (`layering.rs`); typed
//! [`Section`]s are loaded from it and registered in the container, injectable as [`Config<T>`]
//! (`section.rs`).

mod layering;
mod section;
mod sources;
mod values;

pub use self::layering::Configuration;
pub(crate) use self::layering::SECRET_MASK;
pub(crate) use self::section::SectionLoader;
pub use self::section::{Config, Secret, Section};
pub use self::sources::{ConfigError, ConfigSources};
pub use self::values::{duration, socket_address};

/// The configuration file read when none is named.
pub const DEFAULT_FILE: &str = "hosted.toml";
/// The prefix of the environment variables read when none is named.
pub const DEFAULT_ENV_PREFIX: &str = "HOSTED_";
/// The environment when none is named.
pub const DEFAULT_ENVIRONMENT: &str = "production";
