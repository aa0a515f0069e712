//! A built [`Host`], ready to start, and the [`RunningHost`] it becomes.

use std::sync::Arc;

use super::HostBuilder;
use super::SignalLifetime;
use super::host_lifetime::Lifetimes;
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
    pub(super) lifetimes: Lifetimes,
    /// Whether [`run`](Self::run) puts the [`SignalLifetime`] first.
    pub(super) signals: bool,
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

    /// The services keeping their work in `store` (`"postgres"`), for the hooks of the feature
    /// that provides it.
    #[cfg(feature = "postgres")]
    pub(crate) fn services_in(&self, store: &str) -> impl Iterator<Item = &ServiceInfo> {
        self.planned
            .iter()
            .filter(move |planned| planned.store == Some(store))
            .map(|planned| &planned.info)
    }

    /// The configuration section `T` as the services read it; `None` without configuration.
    #[cfg(feature = "postgres")]
    pub(crate) fn section<T: crate::config::Section>(
        &self,
    ) -> Option<Result<T, Vec<crate::registry::Problem>>> {
        self.listing
            .configuration
            .as_ref()
            .map(crate::config::Configuration::section::<T>)
    }

    /// The runtime worker threads configured (`host.worker_threads`); `None` for one per core.
    pub(crate) fn worker_threads(&self) -> Option<usize> {
        self.listing.options.worker_threads()
    }

    /// Where spans are exported to, and under which service name (feature `otel`).
    #[cfg(feature = "otel")]
    pub(crate) fn otel_options(&self) -> Option<(&str, &str)> {
        self.listing.options.otel()
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
        self.shared.lifetime()
    }

    /// Starts every service in order, one at a time, after every
    /// [`HostLifetime`](super::HostLifetime)'s `starting`; their `started` follows.
    ///
    /// # Errors
    /// When a lifetime or a service could not start, or a stop was requested during startup:
    /// the services already started have been stopped again, and the outcome says why.
    pub async fn start(self) -> Result<RunningHost, Outcome> {
        self.warn_past_grace();
        let lifetimes = self.lifetimes;
        if let Err((passed, name, error)) = lifetimes.starting().await {
            tracing::error!(lifetime = name, %error, "the host lifetime could not start; aborting startup");
            self.shared
                .incidents()
                .record_named(name, format!("the host lifetime could not start: {error}"));
            self.shared
                .lifetime()
                .request_stop(StopReason::StartFailed {
                    service: name.to_owned(),
                });
            let outcome = self.shared.stop_all(Vec::new(), Vec::new()).await;
            lifetimes.stopping(passed).await;
            lifetimes.stopped(passed, &outcome).await;
            return Err(outcome);
        }
        let every = lifetimes.all.len();
        match self.shared.start_all(self.planned).await {
            Ok(started) => {
                lifetimes.started().await;
                Ok(RunningHost {
                    started,
                    shared: self.shared,
                    lifetimes,
                })
            }
            Err(outcome) => {
                lifetimes.stopping(every).await;
                lifetimes.stopped(every, &outcome).await;
                Err(outcome)
            }
        }
    }

    /// Warns when a stop may take longer than the supervisor waits before it kills the process.
    fn warn_past_grace(&self) {
        let options = &self.listing.options;
        let grace = options.termination_grace();
        let (drain, budget) = (options.drain_delay(), options.shutdown_timeout());
        if grace.is_zero() || drain.saturating_add(budget) <= grace {
            return;
        }
        tracing::warn!(
            drain_delay = ?drain,
            shutdown_timeout = ?budget,
            termination_grace = ?grace,
            "`host.drain_delay` ({drain:?}) + `host.shutdown_timeout` ({budget:?}) exceed the \
             supervisor's grace period `host.termination_grace` ({grace:?}; Kubernetes' default \
             `terminationGracePeriodSeconds` is 30 s): the process may be killed before its \
             services have stopped. Lower `host.drain_delay` or `host.shutdown_timeout`, or raise \
             the pod's `terminationGracePeriodSeconds` and set `host.termination_grace` to it \
             (`0s` turns this check off)"
        );
    }

    /// Starts the services, runs until SIGINT or SIGTERM (Ctrl+C on Windows), a stop request, a
    /// failure or a [`HostLifetime`](super::HostLifetime)'s stop request, then stops them.
    ///
    /// The [`SignalLifetime`] comes first among the lifetimes, unless
    /// [`HostBuilder::handle_signals`] turned it off: a second signal while stopping exits the
    /// process at once with 130 (SIGINT) or 143 (SIGTERM), as shells report a process killed by
    /// that signal.
    pub async fn run(mut self) -> Outcome {
        if self.signals {
            self.lifetimes
                .all
                .insert(0, Arc::new(SignalLifetime::new()));
        }
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
    lifetimes: Lifetimes,
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
        self.shared.lifetime()
    }

    /// Completes when the host is asked to stop: [`ApplicationLifetime::stop_application`], a failure
    /// whose policy stops the host, or (under [`Host::run`]) a signal. Returns the reason.
    pub async fn wait(&self) -> StopReason {
        self.shared
            .lifetime()
            .stop_requested_token()
            .cancelled()
            .await;
        self.shared
            .lifetime()
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

    /// Stops every service in reverse start order within the shutdown budget, after the
    /// lifetimes' `stopping` and the drain delay (`host.drain_delay`, during which readiness
    /// fails and every service still runs); the lifetimes' `stopped` follow.
    ///
    /// Safe to cancel: the stop runs on a task of its own, which this future only awaits.
    /// Dropping it (a caller's `tokio::time::timeout`, a `select!`) leaves the stop running to
    /// its end: every `stop` and `stopped` hook, the singletons' disposal and the
    /// [`stopped`](ApplicationLifetime::stopped) event still happen, within the shutdown budget.
    /// Await [`ApplicationLifetime::stopped`] to know when.
    pub async fn stop(self) -> Outcome {
        self.shared.lifetime().record_stop(StopReason::Requested);
        let shared = self.shared.clone();
        let started = self.started;
        let lifetimes = self.lifetimes;
        let stop = tokio::spawn(async move {
            let every = lifetimes.all.len();
            lifetimes.stopping(every).await;
            let drain = lifetimes.cx.drain_delay();
            if !drain.is_zero() {
                tracing::info!(
                    ?drain,
                    "draining: readiness fails, every service keeps running for the drain delay"
                );
                tokio::time::sleep(drain).await;
            }
            let outcome = shared.stop_all(started, Vec::new()).await;
            lifetimes.stopped(every, &outcome).await;
            outcome
        });
        match stop.await {
            Ok(outcome) => outcome,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Outcome::interrupted(
                self.shared.lifetime().stop_reason(),
                "the stop was cut short: the runtime shut down".to_owned(),
            ),
        }
    }
}
