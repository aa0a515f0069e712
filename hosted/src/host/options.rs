//! The host's own settings, `[host]` in configuration: budgets, the default failure policy,
//! the runtime and logging. Values set on the builder are defaults that configuration overrides.

use std::time::Duration;

use crate::service::{FailurePolicy, declare_policy, policy_from};
use crate::service::{Origin, Setting, SettingKind, SettingValue, Settings};

/// The shutdown budget when none is configured: 5 seconds, the value the .NET Generic Host
/// documents for `HostOptions.ShutdownTimeout` before .NET 7 and that our specification keeps.
/// .NET 7 and later default to 30 seconds; set `host.shutdown_timeout = "30s"` to match them.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The grace period a supervisor allows when none is configured (`host.termination_grace`):
/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_TERMINATION_GRACE: Duration = Duration::from_secs(30);

/// The log formats `host.log_format` accepts.
pub(crate) const LOG_FORMATS: &[&str] = &["text", "json"];

/// The host's settings.
#[derive(Clone, Debug)]
pub(crate) struct HostOptions {
    pub(crate) settings: Settings,
}

impl Default for HostOptions {
    fn default() -> Self {
        let mut settings = Settings::default();
        settings.declare(Setting::new(
            "shutdown_timeout",
            SettingKind::Duration {
                min: Duration::ZERO,
            },
            SettingValue::Duration(DEFAULT_SHUTDOWN_TIMEOUT),
        ));
        settings.declare(Setting::new(
            "startup_timeout",
            SettingKind::Duration {
                min: Duration::ZERO,
            },
            SettingValue::Duration(Duration::ZERO),
        ));
        settings.declare(Setting::new(
            "drain_delay",
            SettingKind::Duration {
                min: Duration::ZERO,
            },
            SettingValue::Duration(Duration::ZERO),
        ));
        settings.declare(Setting::new(
            "termination_grace",
            SettingKind::Duration {
                min: Duration::ZERO,
            },
            SettingValue::Duration(DEFAULT_TERMINATION_GRACE),
        ));
        declare_policy(&mut settings, &FailurePolicy::StopHost);
        settings.declare(Setting::new(
            "worker_threads",
            SettingKind::Integer { min: 0, max: 4096 },
            SettingValue::Integer(0),
        ));
        settings.declare(Setting::new(
            "log",
            SettingKind::Text { check: None },
            SettingValue::Text("info".to_owned()),
        ));
        settings.declare(Setting::new(
            "log_format",
            SettingKind::Choice(LOG_FORMATS),
            SettingValue::Text("text".to_owned()),
        ));
        #[cfg(feature = "otel")]
        {
            settings.declare(Setting::new(
                "otel_endpoint",
                SettingKind::Text {
                    check: Some(crate::telemetry::otel::check_endpoint),
                },
                SettingValue::Text(String::new()),
            ));
            settings.declare(Setting::new(
                "otel_service_name",
                SettingKind::Text { check: None },
                SettingValue::Text(String::new()),
            ));
        }
        Self { settings }
    }
}

impl HostOptions {
    /// Sets a value in code.
    pub(crate) fn set(&mut self, key: &str, value: SettingValue) {
        if let Some(setting) = self.settings.get_mut(key) {
            setting.set(value, Origin::Code);
        }
    }

    pub(crate) fn set_policy(&mut self, policy: &FailurePolicy) {
        let mut declared = Settings::default();
        declare_policy(&mut declared, policy);
        for setting in declared.iter() {
            self.set(setting.key(), setting.value().clone());
        }
    }

    pub(crate) fn shutdown_timeout(&self) -> Duration {
        self.settings
            .duration("shutdown_timeout")
            .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT)
    }

    /// Between the stop request (readiness failing) and the services' stop.
    pub(crate) fn drain_delay(&self) -> Duration {
        self.settings
            .duration("drain_delay")
            .unwrap_or(Duration::ZERO)
    }

    /// The supervisor's grace period; zero when not to be checked.
    pub(crate) fn termination_grace(&self) -> Duration {
        self.settings
            .duration("termination_grace")
            .unwrap_or(DEFAULT_TERMINATION_GRACE)
    }

    /// `None` when unlimited (configured as zero).
    pub(crate) fn startup_timeout(&self) -> Option<Duration> {
        self.settings
            .duration("startup_timeout")
            .filter(|budget| !budget.is_zero())
    }

    /// The failure policy of services that declare none.
    pub(crate) fn default_policy(&self) -> Result<FailurePolicy, String> {
        policy_from(&self.settings)
    }

    /// Runtime worker threads; `None` for tokio's default, one per core.
    pub(crate) fn worker_threads(&self) -> Option<usize> {
        self.settings
            .integer("worker_threads")
            .and_then(|threads| usize::try_from(threads).ok())
            .filter(|threads| *threads > 0)
    }

    /// The log filter, as `RUST_LOG` would give it.
    pub(crate) fn log(&self) -> &str {
        self.settings.text("log").unwrap_or("info")
    }

    /// Where spans are exported to over OTLP/HTTP, and under which service name; `None` when
    /// no endpoint is configured.
    #[cfg(feature = "otel")]
    pub(crate) fn otel(&self) -> Option<(&str, &str)> {
        let endpoint = self.settings.text("otel_endpoint").unwrap_or_default();
        let name = self.settings.text("otel_service_name").unwrap_or_default();
        (!endpoint.is_empty()).then_some((endpoint, name))
    }

    /// Whether logs are JSON lines rather than text.
    pub(crate) fn log_json(&self) -> bool {
        self.settings.text("log_format") == Some("json")
    }
}
