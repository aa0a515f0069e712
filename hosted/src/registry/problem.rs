//! What can be wrong with what was registered, found before anything starts: each a
//! [`Problem`], reported together.

use std::fmt;

use crate::di::ServiceLifetime;
use crate::service::{Origin, SourceLocation};

/// One thing wrong with the registrations.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Two services share a name.
    DuplicateService {
        /// The shared name.
        name: String,
        /// Where each was declared, when known.
        sources: Vec<Option<SourceLocation>>,
    },
    /// A service starts `after` a name no service has.
    UnknownAfter {
        /// The service with the bad `after`.
        service: String,
        /// The name it refers to.
        after: String,
        /// Every service name, to suggest from.
        known: Vec<String>,
    },
    /// [`HostBuilder::only`](crate::host::HostBuilder::only) names no service and no module of
    /// one.
    UnknownSelection {
        /// The entry as given.
        name: String,
        /// Every service name, to suggest from.
        known: Vec<String>,
    },
    /// Services start after each other in a circle.
    OrderCycle {
        /// The services in the circle, the first repeated at the end.
        path: Vec<String>,
    },
    /// A service or registered type needs a type nothing registers.
    MissingRegistration {
        /// The service or type that asked.
        consumer: String,
        /// The parameter or field that asked, when known.
        parameter: Option<String>,
        /// The type asked for.
        type_name: String,
    },
    /// Two registrations provide the same type.
    DuplicateRegistration {
        /// The type registered twice.
        type_name: String,
        /// Who registered it.
        owners: Vec<String>,
    },
    /// A configuration value that does not fit, or a key that means nothing.
    Config {
        /// The key, as a dotted path (`services.heartbeat.every`).
        key: String,
        /// Where the value came from.
        origin: Origin,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Configuration values that each fit but not together, found by a service's
    /// [`SettingsCheck`](crate::service::SettingsCheck).
    ConfigConflict {
        /// The keys, as dotted paths, each with where its value came from.
        keys: Vec<(String, Origin)>,
        /// What is wrong and what is expected.
        message: String,
    },
    /// [`HostBuilder::replace`](crate::host::HostBuilder::replace) names a type nothing registers.
    NothingToReplace {
        /// The type.
        type_name: String,
    },
    /// A singleton would keep a scoped value beyond its scope, directly or through transients.
    CaptiveDependency {
        /// From the singleton to the scoped registration.
        chain: Vec<CaptiveLink>,
    },
    /// Registered types need each other in a circle, so none can be built first.
    DependencyCycle {
        /// The types in the circle, the first repeated at the end.
        path: Vec<String>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateService { name, sources } => {
                write!(f, "two services are named `{name}`")?;
                let places: Vec<String> =
                    sources.iter().flatten().map(ToString::to_string).collect();
                if !places.is_empty() {
                    write!(f, " (declared at {})", places.join(" and "))?;
                }
                f.write_str("; give one of them another `name`")
            }
            Self::UnknownAfter {
                service,
                after,
                known,
            } => {
                write!(
                    f,
                    "service `{service}` starts after `{after}`, but no service has that name"
                )?;
                match closest(after, known) {
                    Some(guess) => write!(f, "; did you mean `{guess}`?"),
                    None => Ok(()),
                }
            }
            Self::UnknownSelection { name, known } => {
                write!(
                    f,
                    "`only` keeps `{name}`, but no service has that name or lives in that module"
                )?;
                match closest(name, known) {
                    Some(guess) => write!(f, "; did you mean `{guess}`?"),
                    None => Ok(()),
                }
            }
            Self::OrderCycle { path } => write!(
                f,
                "services start after each other in a circle: {}",
                path.join(" -> ")
            ),
            Self::MissingRegistration {
                consumer,
                parameter,
                type_name,
            } => {
                write!(f, "`{consumer}` needs `{type_name}`")?;
                if let Some(parameter) = parameter {
                    write!(f, " (for `{parameter}`)")?;
                }
                write!(
                    f,
                    ", but nothing registers it: register it with an attribute (`#[singleton]`, `#[scoped]`, `#[transient]`, `#[hosted_service]`, or the service that provides it, such as `#[queued]` for a `Queue<T>`) or on the host builder (`provide`, `add_instance`)"
                )
            }
            Self::DuplicateRegistration { type_name, owners } => write!(
                f,
                "`{type_name}` is registered more than once (by {}): each type has one registration, so keep one, replace one with `HostBuilder::replace`, or give each its own type (a newtype around the shared one)",
                owners
                    .iter()
                    .map(|owner| format!("`{owner}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Self::Config {
                key,
                origin,
                message,
            } => match origin {
                Origin::Default => write!(f, "`{key}`: {message}"),
                origin => write!(f, "`{key}` ({origin}): {message}"),
            },
            Self::ConfigConflict { keys, message } => {
                write!(f, "{}: {message}", conflict_keys(keys))
            }
            Self::NothingToReplace { type_name } => write!(
                f,
                "a replacement for `{type_name}` was given, but nothing registers `{type_name}`; use `provide` to add it"
            ),
            Self::CaptiveDependency { chain } => captive(f, chain),
            Self::DependencyCycle { path } => write!(
                f,
                "registered types need each other in a circle, so none can be built first: {}",
                path.join(" -> ")
            ),
        }
    }
}

/// The known name that ends with the given one, or otherwise differs from it least.
fn closest<'a>(wanted: &str, known: &'a [String]) -> Option<&'a str> {
    let suffix = format!("::{wanted}");
    if let Some(name) = known.iter().find(|name| name.ends_with(&suffix)) {
        return Some(name);
    }
    known
        .iter()
        .map(|name| (crate::util::edit_distance(wanted, name), name))
        .filter(|(distance, name)| *distance <= name.len().max(wanted.len()) / 3)
        .min()
        .map(|(_, name)| name.as_str())
}

/// The message of a [`Problem::CaptiveDependency`], with a fix that exists for its holder.
fn captive(f: &mut fmt::Formatter<'_>, chain: &[CaptiveLink]) -> fmt::Result {
    let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
        return f.write_str("a scoped value is captured by a singleton");
    };
    write!(
        f,
        "{} `{}` would keep {} `{}` beyond its scope: {}; ",
        first.lifetime,
        first.type_name,
        last.lifetime,
        last.type_name,
        chain
            .iter()
            .map(|link| format!("{} ({})", link.type_name, link.lifetime))
            .collect::<Vec<_>>()
            .join(" -> "),
    )?;
    if first.service {
        write!(
            f,
            "a hosted service is always a singleton: give `{}` a `ScopeFactory` field and open a scope where `{}` is needed, or make the service a function whose runs take `{}` as a parameter (each run has its own scope)",
            first.type_name,
            last.type_name,
            chain
                .get(1)
                .map_or(last.type_name.as_str(), |link| link.type_name.as_str()),
        )
    } else {
        write!(
            f,
            "make `{}` scoped too, or give it a `ScopeFactory` and open a scope where `{}` is needed",
            first.type_name, last.type_name,
        )
    }
}

/// The keys of a [`Problem::ConfigConflict`], each with its source.
fn conflict_keys(keys: &[(String, Origin)]) -> String {
    keys.iter()
        .map(|(key, origin)| match origin {
            Origin::Default => format!("`{key}` (default)"),
            origin => format!("`{key}` ({origin})"),
        })
        .collect::<Vec<_>>()
        .join(" with ")
}

/// One registration in a [`Problem::CaptiveDependency`] chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptiveLink {
    /// The registered type.
    pub type_name: String,
    /// Its lifetime.
    pub lifetime: ServiceLifetime,
    /// Whether it is the type of a hosted service, which is always a singleton.
    pub service: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_get_a_suggestion() {
        let known = vec!["app::database".to_owned(), "app::mailer".to_owned()];
        assert_eq!(closest("database", &known), Some("app::database"));
        assert_eq!(closest("app::mailr", &known), Some("app::mailer"));
        assert_eq!(closest("zzz", &known), None);
    }
}
