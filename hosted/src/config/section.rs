//! Typed configuration sections: a [`Section`] read from one key, injected as [`Config<T>`];
//! values that never show, [`Secret<T>`].

use std::any::TypeId;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{Configuration, SECRET_MASK};
use crate::di::{Dependencies, Inject, InjectError, Provider, RunContext};
use crate::registry::Problem;

/// A typed configuration section: a `serde` struct read from one key of the configuration,
/// injectable as [`Config<T>`], checked before any service starts.
///
/// ```
/// use hosted::{Config, Section};
///
/// #[derive(serde::Deserialize)]
/// struct Mail {
///     relay: String,
///     #[serde(default = "default_port")]
///     port: u16,
///     password: hosted::Secret<String>,
/// }
/// # fn default_port() -> u16 { 25 }
///
/// impl Section for Mail {
///     const KEY: &'static str = "mail";
///     const SECRETS: &'static [&'static str] = &["password"];
///
///     fn validate(&self) -> Result<(), String> {
///         if self.relay.is_empty() { Err("`relay` cannot be empty".into()) } else { Ok(()) }
///     }
/// }
///
/// #[hosted::hosted_service]
/// async fn newsletter(mail: Config<Mail>) {
///     let _ = (&mail.relay, mail.port, mail.password.expose());
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a configuration section",
    label = "`Config<{Self}>` needs `{Self}: hosted::Section`",
    note = "implement `hosted::Section` for `{Self}` with the key it is read from, as in `impl Section for {Self} {{ const KEY: &'static str = \"limits\"; }}`, and derive `serde::Deserialize` for it"
)]
pub trait Section: DeserializeOwned + Send + Sync + 'static {
    /// Where the section is in the configuration, as a dotted path (`"mail"`, `"mail.relay"`).
    const KEY: &'static str;
    /// Keys of the section whose values `--list` masks.
    const SECRETS: &'static [&'static str] = &[];

    /// Checks the values beyond their types; the error says what is wrong.
    ///
    /// # Errors
    /// A description of what is wrong.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A typed configuration section as a parameter or field: read, deserialized and checked once,
/// before any service starts, then shared.
///
/// `Option<Config<T>>` is for code that can do without the section: `None` when no source has
/// a section at `T::KEY` (and nothing else requires one), and otherwise the section, read and
/// checked like any other.
#[derive(Debug)]
pub struct Config<T>(Arc<T>);

impl<T> Clone for Config<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Deref for Config<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Section> Config<T> {
    /// The shared section.
    #[must_use]
    pub fn shared(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T: Section> Inject for Config<T> {
    fn declare(needs: &mut Dependencies) {
        let loader = SectionLoader::of::<T>();
        needs.require_id(loader.type_id, loader.key);
        needs.declare_extra(loader);
    }

    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        cx.resolve::<Arc<T>>().await.map(Self)
    }
}

/// How the host loads one typed section it found declared.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SectionLoader {
    pub(crate) type_id: TypeId,
    pub(crate) key: &'static str,
    pub(crate) secrets: &'static [&'static str],
    pub(crate) load: fn(&Configuration) -> Result<Provider, Vec<Problem>>,
}

impl SectionLoader {
    fn of<T: Section>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            key: T::KEY,
            secrets: T::SECRETS,
            load: |configuration| {
                let section = configuration.section::<T>()?;
                let mut provider = Provider::instance(Arc::new(section));
                provider.owner = format!("the configuration section `{}`", T::KEY);
                Ok(provider)
            },
        }
    }
}

/// A value that is never shown: `Debug` and `Display` print `***`. Deserializes as the value
/// itself; read it with [`expose`](Self::expose).
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the code that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_MASK)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        assert_eq!(secret.expose(), "hunter2");
    }
}
