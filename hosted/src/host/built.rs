//! A built [`Host`], ready to start, and the [`RunningHost`] it becomes.

use std::sync::Arc;

use super::HostBuilder;
use super::lifecycle::{Outcome, Planned, Shared, Started};
use super::options::HostOptions;
use crate::di::{InjectError, ScopeFactory};
use crate::service::{ApplicationLifetime, ServiceInfo, Setting, StopReason};

/// A built host: services checked and ordered, nothing started.
///
/// Embed it in an existing tokio application with [`run`](Self::run), or drive it step by step
/// with [`start`](Self::start), [`RunningHost::wait`] and [`RunningHost::stop`].
#[derive(Debug)]
pub struct Host {
    pub(super) planned: Vec<Planned>,
    pub(super) listing: Listing,
    pub(super) shared: Shared,
}

/// What `--list` shows beside the services: every setting's effective value and origin.
#[derive(Debug)]
pub(super) struct Listing {
    pub(super) options: HostOptions,
    /// Crates named with [`HostBuilder::expect_crates`] that contributed no registration.
    pub(super) missing_crates: Vec<&'static str>,
    /// Libraries using `hosted` that `link` does not name and that contributed nothing.
    pub(super) silent_crates: Vec<&'static str>,
    #[cfg(feature = "config")]
    pub(super) sections: Vec<crate::config::SectionLoader>,
    #[cfg(feature = "config")]
    pub(super) configuration: Option<crate::config::Configuration>,
}

/// One line of the settings listing: a dotted key, its value as written (secrets masked) and
/// where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingLine {
    /// The dotted key, as configuration names it.
    pub key: String,
    /// The effective value; `***` for a secret.
    pub value: String,
    /// Where the value came from.
    pub origin: crate::service::Origin,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// An empty builder. Use [`HostBuilder::discover`] to add the attribute-registered services.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The services, in start order.
    #[must_use = "an iterator does nothing unless consumed"]
    pub fn services(&self) -> impl ExactSizeIterator<Item = &ServiceInfo> {
        self.planned.iter().map(|planned| &planned.info)
    }

    /// Every overridable setting with its effective value and where it came from: the host's,
    /// each service's, and the typed sections' (secrets masked). What `--list` prints.
    #[must_use]
    pub fn settings(&self) -> Vec<SettingLine> {
        let line = |prefix: &str, setting: &Setting| SettingLine {
            key: format!("{prefix}.{}", setting.key()),
            value: setting.value().to_string(),
            origin: setting.origin().clone(),
        };
        let mut lines: Vec<SettingLine> = self
            .listing
            .options
            .settings
            .iter()
            .map(|setting| line("host", setting))
            .collect();
        for service in self.services() {
            let prefix = format!("services.{}", service.name().replace("::", "."));
            lines.extend(
                service
                    .settings()
                    .iter()
                    .map(|setting| line(&prefix, setting)),
            );
        }
        #[cfg(feature = "config")]
        if let Some(configuration) = &self.listing.configuration {
            for section in &self.listing.sections {
                lines.extend(
                    configuration
                        .listing(section.key, section.secrets)
                        .into_iter()
                        .map(|(key, value, origin)| SettingLine { key, value, origin }),
                );
            }
        }
        lines
    }

    /// The runtime worker threads configured (`host.worker_threads`); `None` for one per core.
    pub(crate) fn worker_threads(&self) -> Option<usize> {
        self.listing.options.worker_threads()
    }

    /// The log filter configured (`host.log`) and whether logs are JSON lines.
    pub(crate) fn log_options(&self) -> (&str, bool) {
        (self.listing.options.log(), self.listing.options.log_json())
    }

    /// The crates named with [`HostBuilder::expect_crates`] (`run!(link = [...])`) that
    /// contributed no service and no registered type: dropped by the linker, or registering
    /// nothing.
    #[must_use]
    pub fn missing_crates(&self) -> &[&'static str] {
        &self.listing.missing_crates
    }

    /// Libraries the binary depends on that use `hosted`, are not named in `link`, and
    /// contributed nothing: probably dropped by the linker.
    pub(crate) fn silent_crates(&self) -> &[&'static str] {
        &self.listing.silent_crates
    }

    /// How many types are registered with the container.
    #[must_use]
    pub fn registrations(&self) -> usize {
        // The host's own `HostStatus` is not one of the application's.
        self.shared.container.len().saturating_sub(1)
    }

    /// The host's lifetime, to observe its events or request a stop from outside.
    #[must_use]
    pub fn lifetime(&self) -> &ApplicationLifetime {
        &self.shared.lifetime
    }

    /// Starts every service in order, one at a time.
    ///
    /// # Errors
    /// When a service could not be built or started, or a stop was requested during startup:
    /// the services already started have been stopped again, and the outcome says why.
    pub async fn start(self) -> Result<RunningHost, Outcome> {
        let started = self.shared.start_all(self.planned).await?;
        Ok(RunningHost {
            started,
            shared: self.shared,
        })
    }

    /// Starts the services, runs until SIGINT or SIGTERM (Ctrl+C on Windows), a stop request or
    /// a failure, then stops them.
    ///
    /// A second signal while stopping exits the process at once with 130 (SIGINT) or 143
    /// (SIGTERM), as shells report a process killed by that signal.
    pub async fn run(self) -> Outcome {
        let _signals = super::signals::watch_signals(self.shared.lifetime.clone());
        match self.start().await {
            Ok(running) => {
                running.wait().await;
                running.stop().await
            }
            Err(outcome) => outcome,
        }
    }
}

/// A host whose services have started.
#[derive(Debug)]
pub struct RunningHost {
    started: Vec<Started>,
    shared: Shared,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").finish_non_exhaustive()
    }
}

impl RunningHost {
    /// The host's lifetime.
    #[must_use]
    pub fn lifetime(&self) -> &ApplicationLifetime {
        &self.shared.lifetime
    }

    /// Completes when the host is asked to stop: [`ApplicationLifetime::stop_application`], a failure
    /// whose policy stops the host, or (under [`Host::run`]) a signal. Returns the reason.
    pub async fn wait(&self) -> StopReason {
        self.shared
            .lifetime
            .stop_requested_token()
            .cancelled()
            .await;
        self.shared
            .lifetime
            .stop_reason()
            .unwrap_or(StopReason::Requested)
    }

    /// The shared instance of a registered type, for code outside the services.
    ///
    /// # Errors
    /// When `T` is not registered.
    pub async fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Result<Arc<T>, InjectError> {
        let cx = self.shared.container.root_context();
        self.shared.container.resolve::<T>(&cx).await
    }

    /// Opens scopes for code outside the services, such as a test or an embedding
    /// application: scoped values resolved through them live until the scope ends.
    #[must_use]
    pub fn scope_factory(&self) -> ScopeFactory {
        ScopeFactory::new(self.shared.container.root_context())
    }

    /// Stops every service in reverse start order within the shutdown budget.
    ///
    /// Safe to cancel: the stop runs on a task of its own, which this future only awaits.
    /// Dropping it (a caller's `tokio::time::timeout`, a `select!`) leaves the stop running to
    /// its end: every `stop` and `stopped` hook, the singletons' disposal and the
    /// [`stopped`](ApplicationLifetime::stopped) event still happen, within the shutdown budget.
    /// Await [`ApplicationLifetime::stopped`] to know when.
    pub async fn stop(self) -> Outcome {
        self.shared.lifetime.record_stop(StopReason::Requested);
        let shared = self.shared.clone();
        let started = self.started;
        let stop = tokio::spawn(async move { shared.stop_all(started, Vec::new()).await });
        match stop.await {
            Ok(outcome) => outcome,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Outcome::interrupted(
                self.shared.lifetime.stop_reason(),
                "the stop was cut short: the runtime shut down".to_owned(),
            ),
        }
    }
}
