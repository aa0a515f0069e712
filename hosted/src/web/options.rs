//! The `web` configuration section: where the server listens and how it treats requests and
//! its stop.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::dashboard::DashboardOptions;
use super::hub::{HubOptions, Overflow};

/// The web host's settings, read from the `web` section of the configuration
/// (`hosted.toml`, `HOSTED_WEB__BIND`, `--web.bind=...`), or given in code with
/// [`WebServer::options`](super::WebServer::options) for a host built without configuration.
///
/// ```toml
/// [web]
/// bind = "0.0.0.0:8080"       # address and port
/// request_timeout = "30s"     # a request still running after this gets 408
/// body_limit = 1048576        # bytes; a larger body gets 413
/// livez_path = "/livez"
/// readyz_path = "/readyz"
///
/// [web.hub]
/// buffer = 64                 # messages waiting per WebSocket connection
/// overflow = "drop_oldest"    # or "disconnect"
///
/// [web.dashboard]
/// enabled = true              # the operator's page; off by default
/// path = "/hosted"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WebOptions {
    /// The address and port the server listens on. Default `127.0.0.1:8080`; port 0 picks a free
    /// port (the bound address is logged and injectable as [`ServerAddress`](super::ServerAddress)).
    #[serde(with = "crate::config::socket_address")]
    pub bind: SocketAddr,
    /// The time a request may take; after it the request is answered 408 Request Timeout.
    /// Default 30 s. WebSocket connections are not subject to it once upgraded.
    #[serde(with = "crate::config::duration")]
    pub request_timeout: Duration,
    /// The largest request body accepted, in bytes; a larger one is answered 413. Default 1 MiB.
    pub body_limit: usize,
    /// The liveness path: 200 as long as the process and its runtime answer. Default `/livez`.
    pub livez_path: String,
    /// The readiness path: 200 once every service has started and while none is stopping and
    /// every registered readiness check passes, 503 otherwise. Default `/readyz`.
    pub readyz_path: String,
    /// The WebSocket hub's settings.
    pub hub: HubOptions,
    /// `web.drain_delay`, which became `host.drain_delay`: read only to say so.
    #[serde(rename = "drain_delay")]
    moved_drain_delay: Option<Moved>,
    /// The operator's dashboard; off by default.
    pub dashboard: DashboardOptions,
}

/// A key that moved elsewhere: any value is read, to name the new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Moved;

impl<'de> Deserialize<'de> for Moved {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Self)
    }
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout: Duration::from_secs(30),
            body_limit: 1024 * 1024,
            livez_path: "/livez".to_owned(),
            readyz_path: "/readyz".to_owned(),
            hub: HubOptions::default(),
            moved_drain_delay: None,
            dashboard: DashboardOptions::default(),
        }
    }
}

impl WebOptions {
    /// Checks what serde cannot: paths that start with `/`, a positive timeout, a usable hub
    /// buffer.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.moved_drain_delay.is_some() {
            return Err(
                "`web.drain_delay` is now `host.drain_delay`, one drain delay for the whole host \
                 (readiness fails, then every service keeps running that long before the stop): \
                 write `[host] drain_delay = \"5s\"` or `--host.drain_delay=5s`"
                    .to_owned(),
            );
        }
        for (key, path) in [
            ("livez_path", &self.livez_path),
            ("readyz_path", &self.readyz_path),
        ] {
            if !path.starts_with('/') {
                return Err(format!("`{key}` must start with `/`, got {path:?}"));
            }
        }
        if self.dashboard.enabled {
            self.dashboard.check()?;
        }
        if self.livez_path == self.readyz_path {
            return Err("`livez_path` and `readyz_path` must differ".to_owned());
        }
        if self.request_timeout.is_zero() {
            return Err("`request_timeout` must be longer than zero, like \"30s\"".to_owned());
        }
        if self.hub.buffer == 0 {
            return Err("`hub.buffer` must be at least 1".to_owned());
        }
        if let Overflow::Disconnect { code } = self.hub.overflow()
            && !(1000..5000).contains(&code)
        {
            return Err(format!(
                "`hub.close_code` must be a WebSocket close code (1000-4999), got {code}"
            ));
        }
        Ok(())
    }
}

#[cfg(feature = "config")]
#[diagnostic::do_not_recommend]
impl crate::config::Section for WebOptions {
    const KEY: &'static str = "web";

    fn validate(&self) -> Result<(), String> {
        self.check()
    }
}
