//! The `[durable]` configuration section: where the store is and how the workers use it.

use std::fmt;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sqlx_postgres::PgConnectOptions;

use super::{DurableError, PgBackend, masked_url};
use crate::config::Section;

/// The `[durable]` section: the PostgreSQL store of the durable queues, read like any
/// configuration (file, `HOSTED_DURABLE__URL`, `--durable.url=...`), so code does not change
/// between a laptop and production.
///
/// ```toml
/// [durable]
/// url = "postgres://app:secret@db:5432/app"   # required; the password never shows
/// pool_size = 10              # connections of this process (plus one for notifications)
/// schema = "hosted"           # where the tables live; created when missing
/// migrate = "auto"            # or "manual": start only on a schema already migrated
/// lease = "30s"               # how long a claim holds without a heartbeat
/// poll_interval = "1s"        # the fallback when no notification comes
/// sweep_interval = "5s"       # how often the elected replica rescues expired leases
/// retention = "1d"            # how long completed jobs are kept
/// dead_retention = "7d"       # how long dead jobs are kept ("never": until retried or discarded)
/// connect_timeout = "5s"      # how long to wait for a connection
/// listen = true               # wake idle workers by LISTEN/NOTIFY (false: poll only)
/// hub_backplane = false       # with the web host: broadcast to every replica's WebSockets
/// ```
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurableConfig {
    /// The PostgreSQL URL.
    pub url: DatabaseUrl,
    /// How many connections this process keeps to the store.
    #[serde(default = "defaults::pool_size")]
    pub pool_size: u32,
    /// The schema holding the tables.
    #[serde(default = "defaults::schema")]
    pub schema: String,
    /// Whether the schema is migrated at start.
    #[serde(default)]
    pub migrate: Migrate,
    /// How long a claim holds without a heartbeat (heartbeats come every third of it).
    #[serde(default = "defaults::lease", with = "crate::config::duration")]
    pub lease: Duration,
    /// How often an idle worker looks for jobs when no notification comes.
    #[serde(default = "defaults::poll_interval", with = "crate::config::duration")]
    pub poll_interval: Duration,
    /// How often the elected replica rescues expired leases and prunes.
    #[serde(default = "defaults::sweep_interval", with = "crate::config::duration")]
    pub sweep_interval: Duration,
    /// How long completed jobs are kept before pruning.
    #[serde(default = "defaults::retention", with = "crate::config::duration")]
    pub retention: Duration,
    /// How long dead jobs are kept before pruning, from their last attempt; `None` (`"never"`):
    /// until retried or discarded.
    #[serde(
        default = "defaults::dead_retention",
        deserialize_with = "dead_retention"
    )]
    pub dead_retention: Option<Duration>,
    /// How long to wait for a connection.
    #[serde(
        default = "defaults::connect_timeout",
        with = "crate::config::duration"
    )]
    pub connect_timeout: Duration,
    /// Whether idle workers are woken by `LISTEN`/`NOTIFY`; with `false` they only poll.
    #[serde(default = "defaults::listen")]
    pub listen: bool,
    /// With the `web` feature: whether the hub's broadcasts reach the WebSocket clients of every
    /// replica, through `NOTIFY` on this database (`PgBackplane`), rather than this replica's
    /// only.
    #[serde(default)]
    pub hub_backplane: bool,
    /// The host's one store, connected by the first durable queue that starts.
    #[serde(skip)]
    pub(crate) backend: tokio::sync::OnceCell<Arc<PgBackend>>,
}

mod defaults {
    use std::time::Duration;

    pub(super) fn pool_size() -> u32 {
        10
    }
    pub(super) fn schema() -> String {
        "hosted".to_owned()
    }
    pub(super) fn lease() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn poll_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub(super) fn sweep_interval() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn retention() -> Duration {
        Duration::from_hours(24)
    }
    /// A week: a dead job waits for a person, who may first see it after a weekend and then
    /// needs time to fix the cause before retrying it; beyond that, a flood of poison items
    /// would grow the table without bound. River keeps discarded jobs as long by default.
    #[expect(
        clippy::unnecessary_wraps,
        reason = "serde's default for an `Option` field"
    )]
    pub(super) fn dead_retention() -> Option<Duration> {
        Some(Duration::from_hours(24 * 7))
    }
    pub(super) fn connect_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn listen() -> bool {
        true
    }
}

/// Whether the schema is migrated when the host starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Migrate {
    /// Apply the embedded migrations the schema lacks (the default).
    #[default]
    Auto,
    /// Apply nothing: a schema behind this build stops the start, until
    /// [`PgBackend::migrate`] has run (a deployment step).
    Manual,
}

impl DurableConfig {
    /// A configuration with the defaults, for `url`: what code and tests use without a file.
    ///
    /// # Errors
    /// When `url` is not a PostgreSQL URL.
    pub fn new(url: &str) -> Result<Self, String> {
        Ok(Self {
            url: DatabaseUrl::parse(url)?,
            pool_size: defaults::pool_size(),
            schema: defaults::schema(),
            migrate: Migrate::Auto,
            lease: defaults::lease(),
            poll_interval: defaults::poll_interval(),
            sweep_interval: defaults::sweep_interval(),
            retention: defaults::retention(),
            dead_retention: defaults::dead_retention(),
            connect_timeout: defaults::connect_timeout(),
            listen: true,
            hub_backplane: false,
            backend: tokio::sync::OnceCell::new(),
        })
    }

    /// How long finished jobs are kept: `retention` and `dead_retention`.
    #[must_use]
    pub fn retention(&self) -> super::Retention {
        super::Retention::new(self.retention, self.dead_retention)
    }

    /// The store of this configuration, connected (and migrated, with `migrate = "auto"`) once
    /// and shared by every durable queue of the host.
    ///
    /// # Errors
    /// When the database is unreachable or its schema at another version.
    pub async fn backend(&self) -> Result<Arc<PgBackend>, DurableError> {
        self.backend
            .get_or_try_init(|| async { PgBackend::connect(self).await.map(Arc::new) })
            .await
            .cloned()
    }
}

impl fmt::Debug for DurableConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableConfig")
            .field("url", &self.url)
            .field("pool_size", &self.pool_size)
            .field("schema", &self.schema)
            .field("migrate", &self.migrate)
            .field("lease", &self.lease)
            .field("poll_interval", &self.poll_interval)
            .field("sweep_interval", &self.sweep_interval)
            .field("retention", &self.retention)
            .field("dead_retention", &self.dead_retention)
            .finish_non_exhaustive()
    }
}

#[diagnostic::do_not_recommend]
impl Section for DurableConfig {
    const KEY: &'static str = "durable";
    const SECRETS: &'static [&'static str] = &["url"];

    fn validate(&self) -> Result<(), String> {
        let schema = &self.schema;
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(format!(
                "`durable.schema` is `{schema}`; expected a lowercase SQL name like `hosted` \
                 (letters, digits and `_`, at most 63)"
            ));
        }
        if self.pool_size == 0 {
            return Err("`durable.pool_size` must be at least 1".to_owned());
        }
        for (key, value) in [
            ("lease", self.lease),
            ("poll_interval", self.poll_interval),
            ("sweep_interval", self.sweep_interval),
        ] {
            if value < Duration::from_millis(10) {
                return Err(format!(
                    "`durable.{key}` is {value:?}; expected at least 10ms, like \"1s\""
                ));
            }
        }
        Ok(())
    }
}

/// A PostgreSQL URL, checked when the configuration is read; its `Debug` and `Display` mask the
/// password.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    pub(crate) options: PgConnectOptions,
}

impl DatabaseUrl {
    /// Checks `url`.
    ///
    /// # Errors
    /// When it is not a PostgreSQL URL; the message never repeats the URL, which may hold a
    /// password.
    pub fn parse(url: &str) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(
                "expected a PostgreSQL URL like `postgres://user:password@host:5432/database`"
                    .to_owned(),
            );
        }
        let options = PgConnectOptions::from_str(url).map_err(|error| {
            format!(
                "expected a PostgreSQL URL like `postgres://user:password@host:5432/database` \
                 ({})",
                strip_url(&error.to_string(), url)
            )
        })?;
        Ok(Self {
            url: url.to_owned(),
            options,
        })
    }

    /// The URL with its password masked.
    #[must_use]
    pub fn masked(&self) -> String {
        masked_url(&self.url)
    }

    /// The URL itself, password included.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.url
    }
}

/// A driver message with any copy of the URL masked.
fn strip_url(message: &str, url: &str) -> String {
    message.replace(url, &masked_url(url))
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = String::deserialize(deserializer)?;
        Self::parse(&url).map_err(serde::de::Error::custom)
    }
}

/// `durable.dead_retention`: a positive duration, or `"never"`.
fn dead_retention<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    match crate::service::parse_duration(&text) {
        Ok(kept) if !kept.is_zero() => Ok(Some(kept)),
        Ok(_) => Err(serde::de::Error::custom(format!(
            "expected a positive duration like \"7d\", or \"never\" to keep dead jobs until \
             they are retried or discarded, found `{text}` (a dead job would vanish before anyone \
             could look at it)"
        ))),
        Err(error) => Err(serde::de::Error::custom(format!(
            "expected a duration like \"7d\", or \"never\" to keep dead jobs until they are \
             retried or discarded: {error}"
        ))),
    }
}
