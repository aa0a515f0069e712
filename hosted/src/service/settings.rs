//! Overridable settings: every value an attribute argument gives (a period, a capacity, a
//! failure policy) is declared as a setting whose default is the literal written in the source.
//! Configuration overrides settings by key; a runner reads the effective values when it starts.
//!
//! This is the one mechanism every attribute plugs into: an attribute declares its keys, their
//! kinds and defaults on its [`ServiceDescriptor`](crate::registry::ServiceDescriptor); the configuration
//! layer checks and overrides them without knowing the attribute.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

// The attributes' grammar, compiled into this crate too: one definition for both sides.
#[path = "../../../hosted-macros/src/duration_grammar.rs"]
mod duration_grammar;

/// The value of a setting.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingValue {
    /// A duration, written with units (`"250ms"`, `"5s"`, `"1m30s"`).
    Duration(Duration),
    /// A whole number.
    Integer(i64),
    /// `true` or `false`.
    Bool(bool),
    /// Text: one of a set of words, a cron expression, a name.
    Text(String),
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration(duration) => f.write_str(&format_duration(*duration)),
            Self::Integer(number) => write!(f, "{number}"),
            Self::Bool(flag) => write!(f, "{flag}"),
            Self::Text(text) => write!(f, "{text:?}"),
        }
    }
}

/// A duration the way the attributes write it: `1m30s`, `250ms`.
pub(crate) fn format_duration(duration: Duration) -> String {
    duration_grammar::format(duration)
}

/// Reads a duration in the grammar the attributes use (see the configuration guide).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    duration_grammar::parse(text).map_err(|refusal| refusal.describe(text))
}

/// Checks a text setting; the error says what is expected.
pub type TextCheck = fn(&str) -> Result<(), String>;

/// What a setting accepts. A configured value of another form stops startup with the key, its
/// source and the form expected.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum SettingKind {
    /// A duration of at least `min`.
    Duration {
        /// The smallest duration accepted (`Duration::ZERO` allows zero).
        min: Duration,
    },
    /// A whole number within `min..=max`.
    Integer {
        /// The smallest number accepted.
        min: i64,
        /// The largest number accepted.
        max: i64,
    },
    /// `true` or `false`.
    Bool,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// Free text, checked by `check` when there is one (which returns what is expected).
    Text {
        /// Checks a value; the error says what is expected.
        check: Option<TextCheck>,
    },
}

impl SettingKind {
    /// Whether `other` accepts what this one does. A `Text` check is compared by address, which
    /// may tell two copies of one function apart: then two alike lists are not shared, which
    /// costs room, never meaning.
    fn same_as(self, other: Self) -> bool {
        match (self, other) {
            (Self::Duration { min: a }, Self::Duration { min: b }) => a == b,
            (Self::Integer { min: a, max: c }, Self::Integer { min: b, max: d }) => {
                a == b && c == d
            }
            (Self::Bool, Self::Bool) => true,
            (Self::Choice(a), Self::Choice(b)) => a == b,
            (Self::Text { check: a }, Self::Text { check: b }) => match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => std::ptr::fn_addr_eq(a, b),
                _ => false,
            },
            _ => false,
        }
    }

    /// The form expected, for messages.
    #[must_use]
    pub fn expected(&self) -> String {
        match self {
            Self::Duration { min } if min.is_zero() => {
                "a duration like \"250ms\", \"5s\" or \"1m30s\"".to_owned()
            }
            Self::Duration { min } => format!(
                "a duration of at least {}, like \"250ms\", \"5s\" or \"1m30s\"",
                format_duration(*min)
            ),
            Self::Integer { min, max } if *max == i64::MAX => {
                format!("a whole number of at least {min}")
            }
            Self::Integer { min, max } => format!("a whole number from {min} to {max}"),
            Self::Bool => "`true` or `false`".to_owned(),
            Self::Choice(choices) => format!(
                "one of {}",
                choices
                    .iter()
                    .map(|choice| format!("\"{choice}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Text { .. } => "text".to_owned(),
        }
    }

    /// Reads a value given as text (an environment variable, a command-line argument, or a
    /// string in a file).
    ///
    /// # Errors
    /// The form expected, when `text` is not of it.
    pub fn parse(&self, text: &str) -> Result<SettingValue, String> {
        let text = text.trim();
        match self {
            Self::Duration { .. } => parse_duration(text)
                .and_then(|duration| self.check(SettingValue::Duration(duration))),
            Self::Integer { .. } => text
                .parse::<i64>()
                .map_err(|_| format!("`{text}` is not a whole number"))
                .and_then(|number| self.check(SettingValue::Integer(number))),
            Self::Bool => match text {
                "true" => Ok(SettingValue::Bool(true)),
                "false" => Ok(SettingValue::Bool(false)),
                _ => Err(format!("`{text}` is neither `true` nor `false`")),
            },
            Self::Choice(_) | Self::Text { .. } => self.check(SettingValue::Text(text.to_owned())),
        }
    }

    /// Checks a value already of a type (a number or a boolean in a file).
    ///
    /// # Errors
    /// Why the value does not fit, when it does not.
    pub fn check(&self, value: SettingValue) -> Result<SettingValue, String> {
        match (self, &value) {
            (Self::Duration { min }, SettingValue::Duration(duration)) => {
                if duration < min {
                    Err(format!("{} is too short", format_duration(*duration)))
                } else {
                    Ok(value)
                }
            }
            (Self::Integer { min, max }, SettingValue::Integer(number)) => {
                if number < min || number > max {
                    Err(format!("{number} is out of range"))
                } else {
                    Ok(value)
                }
            }
            (Self::Bool, SettingValue::Bool(_)) => Ok(value),
            (Self::Choice(choices), SettingValue::Text(text)) => {
                if choices.contains(&text.as_str()) {
                    Ok(value)
                } else {
                    Err(format!("\"{text}\" is not one of them"))
                }
            }
            (Self::Text { check }, SettingValue::Text(text)) => match check {
                Some(check) => check(text).map(|()| value),
                None => Ok(value),
            },
            (
                Self::Duration { .. } | Self::Choice(_) | Self::Text { .. },
                SettingValue::Integer(_) | SettingValue::Bool(_),
            ) => Err("found a number or a boolean".to_owned()),
            (_, SettingValue::Text(text)) => self.parse(text),
            (_, other) => Err(format!("found {other}")),
        }
    }
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The literal in the attribute, or the builder's default.
    Default,
    /// A configuration file, with the line when it could be told.
    File {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: Option<usize>,
    },
    /// An environment variable.
    Environment {
        /// The variable's name.
        variable: String,
    },
    /// A `--key=value` command-line argument.
    CommandLine {
        /// The argument as written.
        argument: String,
    },
    /// Set in code, on the host builder.
    Code,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Self::File { path, line: None } => write!(f, "{}", path.display()),
            Self::Environment { variable } => write!(f, "environment variable {variable}"),
            Self::CommandLine { argument } => write!(f, "command-line argument {argument}"),
            Self::Code => f.write_str("set in code"),
        }
    }
}

/// One overridable setting of a service.
#[derive(Clone)]
pub struct Setting {
    key: &'static str,
    kind: SettingKind,
    value: SettingValue,
    /// `None` for [`Origin::Default`], the usual case: a setting costs no room for a file path
    /// until configuration sets it.
    origin: Option<Box<Origin>>,
}

/// What [`Setting::origin`] lends for a setting that keeps its default.
static DEFAULT_ORIGIN: Origin = Origin::Default;

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("value", &self.value)
            .field("origin", self.origin())
            .finish()
    }
}

impl Setting {
    /// A setting with its default: the literal written in the attribute, or a value given in
    /// code. The host checks the default against `kind` when it is built, like a configured
    /// value, and reports a default that does not fit as a build problem.
    #[must_use]
    pub fn new(key: &'static str, kind: SettingKind, default: SettingValue) -> Self {
        Self {
            key,
            kind,
            value: default,
            origin: None,
        }
    }

    /// The setting's key inside its service's section.
    #[must_use]
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// What it accepts.
    #[must_use]
    pub fn kind(&self) -> SettingKind {
        self.kind
    }

    /// The effective value.
    #[must_use]
    pub fn value(&self) -> &SettingValue {
        &self.value
    }

    /// Where the effective value came from.
    #[must_use]
    pub fn origin(&self) -> &Origin {
        self.origin.as_deref().unwrap_or(&DEFAULT_ORIGIN)
    }

    /// Why the current value does not fit the setting's kind, if it does not.
    pub(crate) fn misfit(&self) -> Option<String> {
        self.kind
            .check(self.value.clone())
            .err()
            .map(|found| format!("expected {}; {found}", self.kind.expected()))
    }

    pub(crate) fn set(&mut self, value: SettingValue, origin: Origin) {
        self.value = value;
        self.origin = match origin {
            Origin::Default => None,
            origin => Some(Box::new(origin)),
        };
    }
}

/// Adds `setting` to `entries`, in place of the one with its key if there is one.
fn put(entries: &mut Vec<Setting>, setting: Setting) {
    match entries.iter_mut().find(|entry| entry.key == setting.key) {
        Some(entry) => *entry = setting,
        None => entries.push(setting),
    }
}

/// The settings of one service, in declaration order.
///
/// Cheap to clone: services declaring the same settings with the same values (every service
/// of the default failure policy without settings of its own) share one list, copied only when
/// configuration changes one of them.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    entries: Arc<Vec<Setting>>,
}

impl Settings {
    /// Adds a setting; a later one with the same key replaces the earlier.
    pub fn declare(&mut self, setting: Setting) {
        put(Arc::make_mut(&mut self.entries), setting);
    }

    /// `base`'s settings, then `own`'s (one with a key `base` has replaces it), in one
    /// allocation of the exact size: a list kept by every service for as long as it runs.
    pub(crate) fn merged(base: &Self, own: &Self) -> Self {
        let mut entries = Vec::with_capacity(base.entries.len() + own.entries.len());
        entries.extend(base.entries.iter().cloned());
        for setting in own.entries.iter() {
            put(&mut entries, setting.clone());
        }
        entries.shrink_to_fit();
        Self {
            entries: Arc::new(entries),
        }
    }

    /// Whether both hold the same settings in the same order: keys, kinds, values and origins.
    /// Two such lists can be one, shared (see [`same`](Self::same)).
    pub(crate) fn same_content(&self, other: &Self) -> bool {
        self.same(other)
            || (self.entries.len() == other.entries.len()
                && self.entries.iter().zip(other.entries.iter()).all(|(a, b)| {
                    a.key == b.key
                        && a.value == b.value
                        && a.origin == b.origin
                        && a.kind.same_as(b.kind)
                }))
    }

    /// Whether `other` is this very list, shared: what holds for one holds for the other.
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries)
    }

    /// The setting with this key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.entries.iter().find(|entry| entry.key == key)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Setting> {
        let position = self.entries.iter().position(|entry| entry.key == key)?;
        Arc::make_mut(&mut self.entries).get_mut(position)
    }

    /// Every setting.
    pub fn iter(&self) -> impl Iterator<Item = &Setting> {
        self.entries.iter()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The duration under `key`, if it is one.
    #[must_use]
    pub fn duration(&self, key: &str) -> Option<Duration> {
        match self.get(key)?.value {
            SettingValue::Duration(duration) => Some(duration),
            _ => None,
        }
    }

    /// The whole number under `key`, if it is one.
    #[must_use]
    pub fn integer(&self, key: &str) -> Option<i64> {
        match self.get(key)?.value {
            SettingValue::Integer(number) => Some(number),
            _ => None,
        }
    }

    /// The boolean under `key`, if it is one.
    #[must_use]
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)?.value {
            SettingValue::Bool(flag) => Some(flag),
            _ => None,
        }
    }

    /// The text under `key`, if it is text.
    #[must_use]
    pub fn text(&self, key: &str) -> Option<&str> {
        match &self.get(key)?.value {
            SettingValue::Text(text) => Some(text),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_and_written_with_units() {
        let kind = SettingKind::Duration {
            min: Duration::from_millis(1),
        };
        assert_eq!(
            kind.parse("1m30s"),
            Ok(SettingValue::Duration(Duration::from_secs(90)))
        );
        assert_eq!(
            kind.parse("250ms"),
            Ok(SettingValue::Duration(Duration::from_millis(250)))
        );
        assert!(kind.parse("0s").unwrap_err().contains("too short"));
        assert!(kind.parse("five").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(
            kind.expected(),
            "a duration of at least 1ms, like \"250ms\", \"5s\" or \"1m30s\""
        );
    }

    /// One side of the table both crates test against (the other is in
    /// `hosted-macros/src/duration.rs`).
    #[test]
    fn the_shared_table_of_cases_holds_in_configuration() {
        let kind = SettingKind::Duration {
            min: Duration::ZERO,
        };
        for (text, expected) in duration_grammar::CASES {
            match (kind.parse(text), expected) {
                (Ok(SettingValue::Duration(duration)), Ok(nanos)) => {
                    assert_eq!(duration.as_nanos(), *nanos, "{text:?}");
                }
                (Err(error), Err(refusal)) => {
                    // Configuration trims the value first, so the text quoted is the trimmed one.
                    let refusal = refusal.replace(text, text.trim());
                    assert_eq!(error, refusal, "{text:?}");
                }
                (found, expected) => panic!("{text:?}: {found:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn integers_choices_and_booleans_are_checked() {
        let capacity = SettingKind::Integer {
            min: 1,
            max: i64::MAX,
        };
        assert_eq!(capacity.parse("10"), Ok(SettingValue::Integer(10)));
        assert!(capacity.parse("0").unwrap_err().contains("out of range"));
        assert_eq!(capacity.expected(), "a whole number of at least 1");
        let policy = SettingKind::Choice(&["stop", "ignore"]);
        assert_eq!(
            policy.parse("ignore"),
            Ok(SettingValue::Text("ignore".into()))
        );
        assert!(policy.parse("retry").is_err());
        assert_eq!(policy.expected(), "one of \"stop\", \"ignore\"");
        assert_eq!(
            SettingKind::Bool.parse("false"),
            Ok(SettingValue::Bool(false))
        );
        assert!(SettingKind::Bool.check(SettingValue::Integer(1)).is_err());
    }
}

/// A rule over several of a service's settings together, which no one setting's
/// [`SettingKind`] can express (`jitter` shorter than `every`, `max_concurrent` only with
/// `overlap = "concurrent"`): given the effective settings, configuration applied, it returns
/// what does not fit. The host runs it while it is built, so `--check` and startup report a bad
/// combination like a bad value: with the keys, their sources, and exit code 78.
pub type SettingsCheck = Arc<dyn Fn(&Settings) -> Vec<SettingsConflict> + Send + Sync>;

/// A combination of settings that does not fit, found by a [`SettingsCheck`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsConflict {
    /// The keys involved, relative to the service (`every`, `jitter`), the one to change first.
    pub keys: Vec<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl SettingsConflict {
    /// A conflict between `keys`, explained by `message`.
    pub fn new<K: Into<String>>(
        keys: impl IntoIterator<Item = K>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            keys: keys.into_iter().map(Into::into).collect(),
            message: message.into(),
        }
    }
}
