//! Reading configuration: the sources in their precedence, merged by `figment` into a
//! [`Configuration`].

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format as _, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider as FigmentProvider};

use super::{Configuration, DEFAULT_ENV_PREFIX, DEFAULT_ENVIRONMENT, DEFAULT_FILE};

/// Where configuration comes from, before it is read. `hosted::run!()` builds one from the
/// process (its environment and `--config`, `--environment` and `--key=value` arguments); tests
/// and embedding applications build their own.
///
/// ```
/// let configuration = hosted::config::ConfigSources::new()
///     .file("tests/config/hosted.toml")
///     .environment("staging")
///     .argument("--services.heartbeat.every=2s")
///     .expect("a --key=value argument")
///     .load();
/// # drop(configuration);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ConfigSources {
    file: PathBuf,
    file_named: bool,
    environment: Option<String>,
    prefix: String,
    arguments: Vec<CommandLineValue>,
    inline: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
struct CommandLineValue {
    key: String,
    value: String,
    written: String,
}

impl Default for ConfigSources {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigSources {
    /// The defaults: `hosted.toml` in the working directory (read if it exists),
    /// `hosted.<environment>.toml` beside it, the environment named by `HOSTED_ENVIRONMENT`
    /// (default `production`), and `HOSTED_` environment variables.
    pub fn new() -> Self {
        Self {
            file: PathBuf::from(DEFAULT_FILE),
            file_named: false,
            environment: None,
            prefix: DEFAULT_ENV_PREFIX.to_owned(),
            arguments: Vec::new(),
            inline: Vec::new(),
        }
    }

    /// Reads this file instead of `hosted.toml`; it must exist.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = path.into();
        self.file_named = true;
        self
    }

    /// Names the environment instead of reading `<PREFIX>ENVIRONMENT`.
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }

    /// Reads environment variables with this prefix instead of `HOSTED_`.
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Adds a `--key=value` command-line argument, the highest-precedence source.
    ///
    /// # Errors
    /// When `argument` is not of the form `--key=value`.
    pub fn argument(mut self, argument: &str) -> Result<Self, String> {
        let Some((key, value)) = argument
            .strip_prefix("--")
            .and_then(|pair| pair.split_once('='))
            .filter(|(key, _)| !key.is_empty())
        else {
            return Err(format!(
                "`{argument}` is not a setting: write `--key=value`, like `--host.shutdown_timeout=10s`"
            ));
        };
        self.arguments.push(CommandLineValue {
            key: key.to_owned(),
            value: value.to_owned(),
            written: argument.to_owned(),
        });
        Ok(self)
    }

    /// Adds TOML text as a layer above the files, named `name` in messages: for tests and for
    /// applications that keep configuration elsewhere.
    pub fn toml(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.inline.push((name.into(), text.into()));
        self
    }

    /// Reads the sources.
    ///
    /// # Errors
    /// A named file that does not exist, or a file that is not valid TOML.
    pub fn load(self) -> Result<Configuration, ConfigError> {
        let environment = self
            .environment
            .clone()
            .or_else(|| std::env::var(format!("{}ENVIRONMENT", self.prefix)).ok())
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
        if self.file_named && !self.file.exists() {
            return Err(ConfigError {
                message: format!(
                    "the configuration file `{}` does not exist",
                    self.file.display()
                ),
            });
        }
        let environment_file = environment_file(&self.file, &environment);
        let mut files = Vec::new();
        let mut figment = Figment::new();
        for path in [&self.file, &environment_file] {
            if let Ok(text) = std::fs::read_to_string(path) {
                check_toml(path, &text)?;
                figment = figment.merge(Lowercase(Toml::file_exact(path)));
                files.push((path.clone(), text));
            }
        }
        for (name, text) in &self.inline {
            let path = PathBuf::from(name);
            check_toml(&path, text)?;
            figment = figment.merge(Lowercase(Inline {
                name: name.clone(),
                text: text.clone(),
            }));
            files.push((path, text.clone()));
        }
        figment = figment.merge(
            Env::prefixed(&self.prefix)
                .split("__")
                .ignore(&["environment", "config"]),
        );
        for argument in &self.arguments {
            figment = figment.merge(Lowercase(argument.clone()));
        }
        Ok(Configuration {
            figment,
            prefix: self.prefix,
            environment,
            files,
        })
    }
}

/// `hosted.staging.toml` beside `hosted.toml`.
fn environment_file(file: &Path, environment: &str) -> PathBuf {
    let stem = file.file_stem().map_or_else(
        || "hosted".into(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    let extension = file.extension().map_or_else(
        || "toml".into(),
        |extension| extension.to_string_lossy().into_owned(),
    );
    file.with_file_name(format!("{stem}.{environment}.{extension}"))
}

/// Rejects invalid TOML with the file and line, before `figment` merges it.
fn check_toml(path: &Path, text: &str) -> Result<(), ConfigError> {
    toml_edit::ImDocument::parse(text)
        .map(drop)
        .map_err(|error| {
            let line = error.span().map(|span| line_at(text, span.start));
            let place = match line {
                Some(line) => format!("{}:{line}", path.display()),
                None => path.display().to_string(),
            };
            ConfigError {
                message: format!("{place} is not valid TOML: {}", error.message()),
            }
        })
}

pub(super) fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Configuration that could not be read at all (a missing named file, invalid TOML).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
}

/// A source whose keys are read in lowercase, so that keys are case-insensitive across
/// sources (environment variables come lowercased) and `QueueCapacity` in a file and
/// `HOSTED_QUEUECAPACITY` name the same key.
struct Lowercase<P>(P);

impl<P: FigmentProvider> FigmentProvider for Lowercase<P> {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(self
            .0
            .data()?
            .into_iter()
            .map(|(profile, dict)| (profile, lowercase_dict(dict)))
            .collect())
    }
}

fn lowercase_dict(dict: Dict) -> Dict {
    dict.into_iter()
        .map(|(key, value)| (key.to_ascii_lowercase(), lowercase_value(value)))
        .collect()
}

fn lowercase_value(value: Value) -> Value {
    match value {
        Value::Dict(tag, dict) => Value::Dict(tag, lowercase_dict(dict)),
        Value::Array(tag, items) => {
            Value::Array(tag, items.into_iter().map(lowercase_value).collect())
        }
        other => other,
    }
}

/// TOML text given in code, as a source.
struct Inline {
    name: String,
    text: String,
}

impl FigmentProvider for Inline {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            self.name.clone(),
            figment::Source::File(PathBuf::from(&self.name)),
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Toml::string(&self.text).data()
    }
}

impl FigmentProvider for CommandLineValue {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            "command line",
            figment::Source::Custom(self.written.clone()),
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let value: Value = self
            .value
            .parse()
            .unwrap_or_else(|_| Value::from(self.value.clone()));
        let nested = figment::util::nest(&self.key, value);
        let dict = nested.into_dict().unwrap_or_default();
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_files_sit_beside_the_base_file() {
        assert_eq!(
            environment_file(Path::new("conf/hosted.toml"), "staging"),
            PathBuf::from("conf/hosted.staging.toml")
        );
        assert_eq!(
            environment_file(Path::new("app"), "test"),
            PathBuf::from("app.test.toml")
        );
    }

    #[test]
    fn command_line_arguments_must_be_key_value_pairs() {
        assert!(ConfigSources::new().argument("--host.log=debug").is_ok());
        for bad in ["--host.log", "host.log=debug", "--=x"] {
            let error = ConfigSources::new().argument(bad).unwrap_err();
            assert!(error.contains("write `--key=value`"), "{error}");
        }
    }
}
