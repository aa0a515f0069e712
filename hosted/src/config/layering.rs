//! Applying a [`Configuration`] to what was registered: the host's settings, every service's
//! declared settings and aliases, with the origin of each value kept for messages and `--list`.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use figment::value::{Dict, Tag, Value};
use figment::{Figment, Metadata};

use super::sources::line_at;
use super::{Section, SectionLoader};
use crate::di::{Dependencies, Provider};
use crate::registry::{Problem, ServiceDescriptor};
use crate::service::{Origin, SettingKind, SettingValue, Settings};

/// Configuration read from its sources, ready to apply to a host with
/// [`HostBuilder::configuration`](crate::host::HostBuilder::configuration).
///
/// Keys are case-insensitive, and sections are separated by dots in files and on the command
/// line (`[services.heartbeat]`, `--services.heartbeat.every=2s`) and by `__` in environment
/// variables (`HOSTED_SERVICES__HEARTBEAT__EVERY=2s`).
#[derive(Clone)]
pub struct Configuration {
    pub(super) figment: Figment,
    pub(super) prefix: String,
    pub(super) environment: String,
    /// The files and inline texts read, for line numbers in messages.
    pub(super) files: Vec<(PathBuf, String)>,
}

impl fmt::Debug for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Configuration")
            .field("environment", &self.environment)
            .field(
                "files",
                &self.files.iter().map(|(path, _)| path).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Configuration {
    /// The environment the configuration was read for (`production` by default).
    #[must_use]
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The value at a dotted path, searched case-insensitively.
    fn find(&self, path: &[&str]) -> Option<(Vec<String>, Value)> {
        let (first, rest) = path.split_first()?;
        let first = first.to_ascii_lowercase();
        let root = self.figment.find_value(&first).ok()?;
        let mut keys = vec![first];
        let mut value = root;
        for key in rest {
            let Value::Dict(_, dict) = &value else {
                return None;
            };
            let (found, next) = dict
                .iter()
                .find(|(candidate, _)| candidate.eq_ignore_ascii_case(key))?;
            keys.push(found.clone());
            let next = next.clone();
            value = next;
        }
        Some((keys, value))
    }

    /// Where the value at `keys` came from.
    fn origin(&self, keys: &[String], tag: Tag) -> Origin {
        match self.figment.get_metadata(tag) {
            Some(metadata) => self.origin_of(metadata, keys),
            None => Origin::Default,
        }
    }

    fn origin_of(&self, metadata: &Metadata, keys: &[String]) -> Origin {
        match &metadata.source {
            Some(figment::Source::File(path)) => Origin::File {
                path: path.clone(),
                line: self.line_of(path, keys),
            },
            Some(figment::Source::Custom(argument)) => Origin::CommandLine {
                argument: argument.clone(),
            },
            _ if metadata.name.contains("environment variable") => Origin::Environment {
                variable: format!(
                    "{}{}",
                    self.prefix,
                    keys.iter()
                        .map(|key| key.to_ascii_uppercase())
                        .collect::<Vec<_>>()
                        .join("__")
                ),
            },
            _ => Origin::Default,
        }
    }

    /// The line of a key in one of the files read, when it can be found.
    fn line_of(&self, path: &Path, keys: &[String]) -> Option<usize> {
        let (_, text) = self.files.iter().find(|(file, _)| file == path)?;
        let document = toml_edit::ImDocument::parse(text.as_str()).ok()?;
        let mut table: &dyn toml_edit::TableLike = document.as_table();
        let (last, parents) = keys.split_last()?;
        for key in parents {
            let (_, item) = table
                .iter()
                .find(|(candidate, _)| candidate.eq_ignore_ascii_case(key))?;
            table = item.as_table_like()?;
        }
        let (found, _) = table
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(last))?;
        let (key, _) = table.get_key_value(found)?;
        Some(line_at(text, key.span()?.start))
    }

    /// Applies `[host]` to the host's settings.
    pub(crate) fn apply_host(&self, settings: &mut Settings) -> Vec<Problem> {
        let mut problems = Vec::new();
        let Some((keys, value)) = self.find(&["host"]) else {
            return problems;
        };
        match value {
            Value::Dict(_, dict) => {
                for (key, value) in dict {
                    self.apply_setting(settings, &keys, &key, &value, "the host", &mut problems);
                }
            }
            other => problems.push(Problem::Config {
                key: "host".to_owned(),
                origin: self.origin(&keys, other.tag()),
                message: "expected a section of host settings".to_owned(),
            }),
        }
        problems
    }

    /// Sets one setting from its configured value, or records why it cannot be.
    fn apply_setting(
        &self,
        settings: &mut Settings,
        section: &[String],
        key: &str,
        value: &Value,
        owner: &str,
        problems: &mut Vec<Problem>,
    ) {
        let mut keys = section.to_vec();
        keys.push(key.to_owned());
        let origin = self.origin(&keys, value.tag());
        let path = keys.join(".");
        let known: Vec<&str> = settings.iter().map(crate::service::Setting::key).collect();
        let Some(setting) = settings.get_mut(&key.to_ascii_lowercase()) else {
            let mut message = format!(
                "{owner} has no setting `{key}`; its settings are {}",
                known
                    .iter()
                    .map(|known| format!("`{known}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(guess) = closest(key, known.iter().copied()) {
                let _ = write!(message, "; did you mean `{guess}`?");
            }
            problems.push(Problem::Config {
                key: path,
                origin,
                message,
            });
            return;
        };
        let kind = setting.kind();
        match setting_value(kind, value) {
            Ok(parsed) => setting.set(parsed, origin),
            Err(found) => problems.push(Problem::Config {
                key: path,
                origin,
                message: format!("expected {}; {found}", kind.expected()),
            }),
        }
    }

    /// Applies `[services.<name>]` sections to the services' settings: every key must name a
    /// setting of that service, and every section a service.
    pub(crate) fn apply_services(
        &self,
        services: &mut [ServiceDescriptor],
        aliases: &[(String, String)],
    ) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some((keys, value)) = self.find(&["services"]) {
            let paths: Vec<Vec<String>> = services
                .iter()
                .map(|service| service_path(&service.name))
                .collect();
            self.walk_services(services, &paths, &keys, &value, &mut problems);
        }
        for (alias, target) in aliases {
            self.apply_alias(services, alias, target, &mut problems);
        }
        problems
    }

    /// Gives the setting at `target` (`services.<name>.<key>`) the value configured at `alias`,
    /// unless configuration set `target` itself.
    fn apply_alias(
        &self,
        services: &mut [ServiceDescriptor],
        alias: &str,
        target: &str,
        problems: &mut Vec<Problem>,
    ) {
        let alias_path: Vec<&str> = alias.split('.').collect();
        let Some((alias_keys, value)) = self.find(&alias_path) else {
            return;
        };
        let target_path: Vec<String> = target
            .strip_prefix("services.")
            .unwrap_or(target)
            .split('.')
            .map(str::to_ascii_lowercase)
            .collect();
        let Some((key, service_path_wanted)) = target_path.split_last() else {
            return;
        };
        let Some(service) = services
            .iter_mut()
            .find(|service| service_path(&service.name) == service_path_wanted)
        else {
            problems.push(Problem::Config {
                key: alias.to_owned(),
                origin: Origin::Default,
                message: format!("is an alias of `{target}`, but no service has that section"),
            });
            return;
        };
        let Some(setting) = service.settings.get_mut(key) else {
            problems.push(Problem::Config {
                key: alias.to_owned(),
                origin: Origin::Default,
                message: format!(
                    "is an alias of `{target}`, but service `{}` has no setting `{key}`",
                    service.name
                ),
            });
            return;
        };
        if *setting.origin() != Origin::Default {
            // Configured under its own key, which wins over the alias.
            return;
        }
        let origin = self.origin(&alias_keys, value.tag());
        let kind = setting.kind();
        match setting_value(kind, &value) {
            Ok(parsed) => setting.set(parsed, origin),
            Err(found) => problems.push(Problem::Config {
                key: alias_keys.join("."),
                origin,
                message: format!("expected {}; {found}", kind.expected()),
            }),
        }
    }

    fn walk_services(
        &self,
        services: &mut [ServiceDescriptor],
        paths: &[Vec<String>],
        keys: &[String],
        value: &Value,
        problems: &mut Vec<Problem>,
    ) {
        // The path below `services`, lowercased, to compare with service paths.
        let below: Vec<String> = keys[1..]
            .iter()
            .map(|key| key.to_ascii_lowercase())
            .collect();
        let owner = paths.iter().position(|path| *path == below);
        let is_prefix = paths
            .iter()
            .any(|path| path.len() > below.len() && path.starts_with(&below));
        let Value::Dict(_, dict) = value else {
            problems.push(self.unknown_service(services, keys, value));
            return;
        };
        if owner.is_none() && !is_prefix && !below.is_empty() {
            problems.push(self.unknown_service(services, keys, value));
            return;
        }
        for (key, child) in dict {
            let mut child_keys = keys.to_vec();
            child_keys.push(key.clone());
            let child_below: Vec<String> = child_keys[1..]
                .iter()
                .map(|key| key.to_ascii_lowercase())
                .collect();
            let leads_to_service = paths
                .iter()
                .any(|path| path.len() >= child_below.len() && path.starts_with(&child_below));
            match owner {
                Some(position)
                    if !leads_to_service
                        || services[position]
                            .settings
                            .get(&key.to_ascii_lowercase())
                            .is_some() =>
                {
                    let service = &mut services[position];
                    let owner = format!("service `{}`", service.name);
                    self.apply_setting(&mut service.settings, keys, key, child, &owner, problems);
                }
                _ => self.walk_services(services, paths, &child_keys, child, problems),
            }
        }
    }

    fn unknown_service(
        &self,
        services: &[ServiceDescriptor],
        keys: &[String],
        value: &Value,
    ) -> Problem {
        let name = keys[1..].join("::");
        let mut message = format!("no service is named `{name}`");
        if let Some(guess) = closest(&name, services.iter().map(|service| &*service.name)) {
            let _ = write!(
                message,
                "; did you mean `{guess}` (section `services.{}`)?",
                guess.replace("::", ".")
            );
        }
        Problem::Config {
            key: keys.join("."),
            origin: self.origin(keys, value.tag()),
            message,
        }
    }

    /// Top-level keys that nothing reads: `host`, `services`, a typed section some service asks
    /// for, or an alias are the only ones, so a typo such as `[hots]` cannot pass silently.
    pub(crate) fn unknown_roots<'a>(&self, known: impl Iterator<Item = &'a str>) -> Vec<Problem> {
        let known: Vec<String> = known
            .map(|key| key.split('.').next().unwrap_or(key).to_ascii_lowercase())
            .collect();
        let roots: Dict = self.figment.extract().unwrap_or_default();
        roots
            .keys()
            .filter(|root| !known.contains(root))
            .map(|root| {
                let keys = vec![root.clone()];
                let origin = self
                    .figment
                    .find_value(root)
                    .map_or(Origin::Default, |value| self.origin(&keys, value.tag()));
                let mut message = format!(
                    "nothing reads `{root}`: the configuration has {}",
                    known
                        .iter()
                        .map(|key| format!("`{key}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if let Some(guess) = closest(root, known.iter().map(String::as_str)) {
                    let _ = write!(message, "; did you mean `{guess}`?");
                }
                Problem::Config {
                    key: root.clone(),
                    origin,
                    message,
                }
            })
            .collect()
    }

    /// Loads every typed section a service or a registered type asks for, and registers each as
    /// an injectable value.
    pub(crate) fn provide_sections(
        &self,
        services: &[ServiceDescriptor],
        providers: &mut Vec<Provider>,
    ) -> (Vec<SectionLoader>, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut loaded = Vec::new();
        let declared = services
            .iter()
            .filter_map(|service| {
                service
                    .declare
                    .map(|declare| (service.name.to_string(), declare))
            })
            .chain(
                providers
                    .iter()
                    .map(|provider| (provider.owner.clone(), provider.declare)),
            )
            .collect::<Vec<_>>();
        // A section only asked for as `Option<Config<T>>` is loaded when the configuration has
        // it: absent, it is `None` rather than a problem about its missing keys.
        let mut wanted: Vec<(SectionLoader, bool)> = Vec::new();
        for (consumer, declare) in declared {
            let mut needs = Dependencies::new(consumer);
            declare(&mut needs);
            let loaders: Vec<SectionLoader> = needs.extras::<SectionLoader>().copied().collect();
            let requirements = needs.into_requirements();
            for loader in loaders {
                let required = requirements.iter().any(|requirement| {
                    requirement.type_id == loader.type_id && !requirement.optional
                });
                match wanted
                    .iter_mut()
                    .find(|(seen, _)| seen.type_id == loader.type_id)
                {
                    Some((_, any_required)) => *any_required |= required,
                    None => wanted.push((loader, required)),
                }
            }
        }
        for (loader, required) in wanted {
            let path: Vec<&str> = loader.key.split('.').collect();
            if !required && self.find(&path).is_none() {
                continue;
            }
            loaded.push(loader);
            match (loader.load)(self) {
                Ok(provider) => providers.push(provider),
                Err(found) => problems.extend(found),
            }
        }
        (loaded, problems)
    }

    /// The section at `key` as `T`; an absent section reads as empty, so `serde` defaults apply.
    pub(crate) fn section<T: Section>(&self) -> Result<T, Vec<Problem>> {
        let path: Vec<&str> = T::KEY.split('.').collect();
        let parsed = if self.find(&path).is_some() {
            self.figment
                .extract_inner_lossy::<T>(&T::KEY.to_ascii_lowercase())
        } else {
            Value::from(Dict::new()).deserialize::<T>()
        };
        let section = parsed.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| {
                    // `extract_inner` appends the section's own path after the field's.
                    let mut inner = error.path.clone();
                    if inner.len() >= path.len()
                        && inner[inner.len() - path.len()..]
                            .iter()
                            .zip(&path)
                            .all(|(a, b)| a.eq_ignore_ascii_case(b))
                    {
                        inner.truncate(inner.len() - path.len());
                    }
                    let keys: Vec<String> = path
                        .iter()
                        .map(|key| (*key).to_owned())
                        .chain(inner)
                        .collect();
                    let origin = error
                        .metadata
                        .as_ref()
                        .map_or(Origin::Default, |metadata| self.origin_of(metadata, &keys));
                    Problem::Config {
                        key: keys.join("."),
                        origin,
                        message: error.kind.to_string(),
                    }
                })
                .collect::<Vec<_>>()
        })?;
        section.validate().map_err(|message| {
            vec![Problem::Config {
                key: T::KEY.to_owned(),
                origin: Origin::Default,
                message,
            }]
        })?;
        Ok(section)
    }

    /// Every value under `key`, flattened to dotted keys, with secrets masked: for `--list`.
    pub(crate) fn listing(&self, key: &str, secrets: &[&str]) -> Vec<(String, String, Origin)> {
        let path: Vec<&str> = key.split('.').collect();
        let mut lines = Vec::new();
        if let Some((keys, value)) = self.find(&path) {
            self.flatten(&keys, &value, key, secrets, &mut lines);
        }
        lines
    }

    fn flatten(
        &self,
        keys: &[String],
        value: &Value,
        section: &str,
        secrets: &[&str],
        lines: &mut Vec<(String, String, Origin)>,
    ) {
        if let Value::Dict(_, dict) = value {
            for (key, child) in dict {
                let mut child_keys = keys.to_vec();
                child_keys.push(key.clone());
                self.flatten(&child_keys, child, section, secrets, lines);
            }
            return;
        }
        let path = keys.join(".");
        let relative = path
            .get(section.len() + 1..)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let shown = if secrets
            .iter()
            .any(|secret| secret.eq_ignore_ascii_case(&relative))
        {
            SECRET_MASK.to_owned()
        } else {
            display_value(value)
        };
        lines.push((path, shown, self.origin(keys, value.tag())));
    }
}

/// What a secret value shows instead of itself.
pub(crate) const SECRET_MASK: &str = "***";

fn display_value(value: &Value) -> String {
    match value {
        Value::String(_, text) => format!("{text:?}"),
        Value::Char(_, character) => format!("{character:?}"),
        Value::Bool(_, flag) => flag.to_string(),
        Value::Num(_, number) => integer(*number)
            .map(|number| number.to_string())
            .or_else(|| number.to_f64().map(|number| number.to_string()))
            .unwrap_or_default(),
        Value::Empty(..) => "(empty)".to_owned(),
        Value::Array(_, items) => format!(
            "[{}]",
            items
                .iter()
                .map(display_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Dict(..) => "{…}".to_owned(),
    }
}

/// A whole number, signed or not.
fn integer(number: figment::value::Num) -> Option<i128> {
    number.to_i128().or_else(|| {
        number
            .to_u128()
            .and_then(|number| i128::try_from(number).ok())
    })
}

/// A configured value as a setting of `kind`, or what was found instead.
fn setting_value(kind: SettingKind, value: &Value) -> Result<SettingValue, String> {
    match value {
        Value::String(_, text) => kind.parse(text),
        Value::Bool(_, flag) => kind.check(SettingValue::Bool(*flag)),
        Value::Num(_, number) => {
            match integer(*number).and_then(|number| i64::try_from(number).ok()) {
                Some(number) => match kind {
                    // A bare number in a file for a duration is ambiguous: say what is expected.
                    SettingKind::Duration { .. } => {
                        Err(format!("found the number {number} without a unit"))
                    }
                    _ => kind.check(SettingValue::Integer(number)),
                },
                None => Err("found a fractional number".to_owned()),
            }
        }
        Value::Dict(..) => Err("found a section".to_owned()),
        Value::Array(..) => Err("found a list".to_owned()),
        Value::Char(_, character) => kind.parse(&character.to_string()),
        Value::Empty(..) => Err("found nothing".to_owned()),
    }
}

/// `demo::heartbeat` → `["demo", "heartbeat"]`, the path of its section under `services`.
fn service_path(name: &str) -> Vec<String> {
    name.split("::").map(str::to_ascii_lowercase).collect()
}

/// The candidate closest to `wanted`, if any is close.
fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = wanted.to_ascii_lowercase();
    candidates
        .map(|candidate| {
            (
                crate::util::edit_distance(&wanted, &candidate.to_ascii_lowercase()),
                candidate,
            )
        })
        .filter(|(distance, candidate)| *distance <= (candidate.len().max(wanted.len()) / 3).max(1))
        .min()
        .map(|(_, candidate)| candidate)
}
