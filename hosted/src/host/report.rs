//! `--list --format=json` and `--check --format=json`: the documents, and the small JSON writer
//! they are written with. The schemas are in the run guide (`docs/run.md`); a change to a field
//! bumps the version in `schema`.

use std::fmt::{self, Write as _};

use super::lifecycle::Planned;
use super::{BuildError, Host};
use crate::registry::Problem;
use crate::service::{Origin, ServiceKind, Setting, SettingValue};

/// The schema of `--list --format=json`.
pub(crate) const LIST_SCHEMA: &str = "hosted.list/1";
/// The schema of `--check --format=json`.
pub(crate) const CHECK_SCHEMA: &str = "hosted.check/1";

/// A JSON value.
#[derive(Debug, Clone)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(i64),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(&'static str, Json)>),
    /// JSON text a listing hook produced itself.
    Raw(String),
}

impl Json {
    fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    fn option(text: Option<impl Into<String>>) -> Self {
        text.map_or(Self::Null, |text| Self::Text(text.into()))
    }

    fn texts<S: Into<String>>(texts: impl IntoIterator<Item = S>) -> Self {
        Self::Array(
            texts
                .into_iter()
                .map(|text| Self::Text(text.into()))
                .collect(),
        )
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(flag) => write!(f, "{flag}"),
            Self::Number(number) => write!(f, "{number}"),
            Self::Text(text) => quote(f, text),
            Self::Raw(raw) => f.write_str(raw),
            Self::Array(items) => {
                f.write_char('[')?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Self::Object(fields) => {
                f.write_char('{')?;
                for (index, (key, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        f.write_char(',')?;
                    }
                    quote(f, key)?;
                    write!(f, ":{value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// A JSON string literal.
fn quote(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Where a value came from: its kind, the details of that kind, and the text `--list` prints.
fn origin(origin: &Origin) -> Json {
    let mut fields = vec![];
    match origin {
        Origin::Default => fields.push(("kind", Json::text("default"))),
        Origin::Code => fields.push(("kind", Json::text("code"))),
        Origin::File { path, line } => {
            fields.push(("kind", Json::text("file")));
            fields.push(("path", Json::text(path.display().to_string())));
            fields.push((
                "line",
                line.map_or(Json::Null, |line| {
                    Json::Number(i64::try_from(line).unwrap_or(i64::MAX))
                }),
            ));
        }
        Origin::Environment { variable } => {
            fields.push(("kind", Json::text("environment")));
            fields.push(("variable", Json::text(variable.clone())));
        }
        Origin::CommandLine { argument } => {
            fields.push(("kind", Json::text("command_line")));
            fields.push(("argument", Json::text(argument.clone())));
        }
    }
    fields.push(("text", Json::text(origin.to_string())));
    Json::Object(fields)
}

fn value(value: &SettingValue) -> Json {
    match value {
        SettingValue::Duration(_) => Json::text(value.to_string()),
        SettingValue::Integer(number) => Json::Number(*number),
        SettingValue::Bool(flag) => Json::Bool(*flag),
        SettingValue::Text(text) => Json::text(text.clone()),
    }
}

fn setting(prefix: &str, setting: &Setting) -> Json {
    Json::Object(vec![
        ("key", Json::text(format!("{prefix}.{}", setting.key()))),
        ("value", value(setting.value())),
        ("secret", Json::Bool(false)),
        ("source", origin(setting.origin())),
    ])
}

/// The keys every service has, beside its kind's own.
const COMMON_KEYS: &[&str] = &[
    "enabled",
    "on_failure",
    "max_restarts",
    "backoff",
    "max_backoff",
];

/// What a service injects, as its parameters declare it; `null` when it declares nothing (a
/// closure registered by hand).
fn dependencies(planned: &Planned) -> Json {
    let Some(declare) = planned.declare else {
        return Json::Null;
    };
    let needs = super::validation::declared(planned.info.name(), declare);
    Json::Array(
        needs
            .into_iter()
            .map(|need| {
                Json::Object(vec![
                    ("type", Json::text(need.type_name)),
                    ("parameter", Json::option(need.parameter)),
                    ("optional", Json::Bool(need.optional)),
                ])
            })
            .collect(),
    )
}

fn service(planned: &Planned) -> Json {
    let info = &planned.info;
    let prefix = format!("services.{}", info.name().replace("::", "."));
    let own: Vec<(&'static str, Json)> = info
        .settings()
        .iter()
        .filter(|setting| !COMMON_KEYS.contains(&setting.key()))
        .map(|setting| (setting.key(), value(setting.value())))
        .collect();
    let (schedule, queue) = match info.kind() {
        ServiceKind::Timed => (Json::Object(own), Json::Null),
        ServiceKind::Queued => (Json::Null, Json::Object(own)),
        _ => (Json::Null, Json::Null),
    };
    let enabled = info
        .settings()
        .iter()
        .find(|setting| setting.key() == "enabled")
        .is_none_or(|setting| *setting.value() == SettingValue::Bool(true));
    // The policy's word; its numbers are settings of their own.
    let on_failure = info
        .settings()
        .iter()
        .find(|setting| setting.key() == "on_failure")
        .and_then(|setting| match setting.value() {
            SettingValue::Text(word) => Some(word.clone()),
            _ => None,
        })
        .unwrap_or_else(|| info.policy().to_string());
    Json::Object(vec![
        ("name", Json::text(info.name())),
        ("kind", Json::text(info.kind().to_string())),
        ("order", Json::Number(i64::from(info.order()))),
        ("after", Json::texts(info.after())),
        ("dependencies", dependencies(planned)),
        ("on_failure", Json::text(on_failure)),
        ("enabled", Json::Bool(enabled)),
        (
            "source",
            Json::option(info.source().map(|source| source.to_string())),
        ),
        ("schedule", schedule),
        ("queue", queue),
        (
            "settings",
            Json::Array(
                info.settings()
                    .iter()
                    .map(|entry| setting(&prefix, entry))
                    .collect(),
            ),
        ),
    ])
}

/// Every setting: the host's and the services' typed, the typed sections' as written (TOML),
/// secrets masked.
fn settings(host: &Host) -> Json {
    let mut all: Vec<Json> = host
        .listing
        .options
        .settings
        .iter()
        .map(|entry| setting("host", entry))
        .collect();
    for info in host.services() {
        let prefix = format!("services.{}", info.name().replace("::", "."));
        all.extend(info.settings().iter().map(|entry| setting(&prefix, entry)));
    }
    #[cfg(feature = "config")]
    if let Some(configuration) = &host.listing.configuration {
        for section in &host.listing.sections {
            for (key, shown, from) in configuration.listing(section.key, section.secrets) {
                let secret = shown == crate::config::SECRET_MASK;
                all.push(Json::Object(vec![
                    ("key", Json::text(key)),
                    ("value", Json::text(shown)),
                    ("secret", Json::Bool(secret)),
                    ("source", origin(&from)),
                ]));
            }
        }
    }
    Json::Array(all)
}

/// What a listing hook contributed: its key, its table, and its JSON when it has one.
pub(crate) struct Contribution {
    pub(crate) key: &'static str,
    pub(crate) text: Option<String>,
    pub(crate) json: Option<String>,
}

/// The `--list --format=json` document.
pub(crate) fn list(host: &Host, warnings: &[String], contributions: Vec<Contribution>) -> String {
    let contributed = contributions
        .into_iter()
        .map(|contribution| {
            Json::Object(vec![
                ("key", Json::text(contribution.key)),
                ("data", contribution.json.map_or(Json::Null, Json::Raw)),
                ("text", Json::option(contribution.text)),
            ])
        })
        .collect();
    let document = Json::Object(vec![
        ("schema", Json::text(LIST_SCHEMA)),
        ("ok", Json::Bool(true)),
        (
            "services",
            Json::Array(host.planned.iter().map(service).collect()),
        ),
        ("settings", settings(host)),
        ("contributed", Json::Array(contributed)),
        ("warnings", Json::texts(warnings.iter().cloned())),
        ("problems", Json::Array(Vec::new())),
    ]);
    format!("{document}\n")
}

/// The `--check --format=json` document of a host that was built: `problems` are the kind and
/// message of what the checks after the build found (a linked crate that contributed nothing,
/// `missing_crate`; a feature's check, such as the durable store's, `feature_check`), and
/// `exit_code` the process's.
pub(crate) fn check_passed(
    host: &Host,
    warnings: &[String],
    problems: &[(&'static str, String)],
    exit_code: i32,
) -> String {
    let problems: Vec<Json> = problems
        .iter()
        .map(|(kind, message)| problem_json(kind, None, &[], message))
        .collect();
    let document = Json::Object(vec![
        ("schema", Json::text(CHECK_SCHEMA)),
        ("ok", Json::Bool(problems.is_empty())),
        ("exit_code", Json::Number(i64::from(exit_code))),
        (
            "services",
            Json::Number(i64::try_from(host.services().len()).unwrap_or(i64::MAX)),
        ),
        (
            "registrations",
            Json::Number(i64::try_from(host.registrations()).unwrap_or(i64::MAX)),
        ),
        ("problems", Json::Array(problems)),
        ("warnings", Json::texts(warnings.iter().cloned())),
    ]);
    format!("{document}\n")
}

/// The document of a host that could not be built (`schema` names the command asked).
pub(crate) fn failed(schema: &'static str, error: &BuildError) -> String {
    let problems = error.problems().iter().map(problem).collect();
    document_failed(schema, i64::from(error.exit_code()), problems)
}

/// The document of a configuration source that could not be read.
#[cfg(feature = "config")]
pub(crate) fn unreadable(schema: &'static str, message: &str) -> String {
    let problems = vec![problem_json("config_source", None, &[], message)];
    document_failed(schema, i64::from(super::EXIT_CONFIG), problems)
}

fn document_failed(schema: &'static str, code: i64, problems: Vec<Json>) -> String {
    let document = Json::Object(vec![
        ("schema", Json::text(schema)),
        ("ok", Json::Bool(false)),
        ("exit_code", Json::Number(code)),
        ("problems", Json::Array(problems)),
        ("warnings", Json::Array(Vec::new())),
    ]);
    format!("{document}\n")
}

fn problem_json(kind: &str, key: Option<&str>, sources: &[&Origin], message: &str) -> Json {
    Json::Object(vec![
        ("kind", Json::text(kind)),
        ("key", Json::option(key)),
        (
            "source",
            sources.first().map_or(Json::Null, |first| origin(first)),
        ),
        ("message", Json::text(message)),
    ])
}

/// One problem: its kind, the configuration key and its source when configuration is at
/// fault, and the message the text output prints.
fn problem(problem: &Problem) -> Json {
    let message = problem.to_string();
    let kind = match problem {
        Problem::DuplicateService { .. } => "duplicate_service",
        Problem::UnknownAfter { .. } => "unknown_after",
        Problem::UnknownSelection { .. } => "unknown_selection",
        Problem::OrderCycle { .. } => "order_cycle",
        Problem::MissingRegistration { .. } => "missing_registration",
        Problem::DuplicateRegistration { .. } => "duplicate_registration",
        Problem::Config { .. } => "config",
        Problem::ConfigConflict { .. } => "config_conflict",
        Problem::NothingToReplace { .. } => "nothing_to_replace",
        Problem::CaptiveDependency { .. } => "captive_dependency",
        Problem::DependencyCycle { .. } => "dependency_cycle",
    };
    match problem {
        Problem::Config { key, origin, .. } => problem_json(kind, Some(key), &[origin], &message),
        Problem::ConfigConflict { keys, .. } => {
            let mut json = problem_json(
                kind,
                keys.first().map(|(key, _)| key.as_str()),
                &keys
                    .iter()
                    .map(|(_, from)| from)
                    .take(1)
                    .collect::<Vec<_>>(),
                &message,
            );
            if let Json::Object(fields) = &mut json {
                fields.push((
                    "keys",
                    Json::Array(
                        keys.iter()
                            .map(|(key, from)| {
                                Json::Object(vec![
                                    ("key", Json::text(key.clone())),
                                    ("source", origin(from)),
                                ])
                            })
                            .collect(),
                    ),
                ));
            }
            json
        }
        _ => problem_json(kind, None, &[], &message),
    }
}
