//! [`HostBuilder`]: collects registrations and options, then checks everything at once and
//! plans the start order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::built::Listing;
use super::host_lifetime::{ErasedLifetime, LifetimeContext, Lifetimes};
use super::lifecycle::{Planned, Shared};
use super::options::HostOptions;
use super::ordering::{Node, start_order};
use super::supervisor::{Incidents, Supervision};
use super::{BuildError, Host, validation};
use crate::di::{Container, Provider};
use crate::registry::{Problem, Registry, ServiceDescriptor};
use crate::status::HostStatus;
#[cfg(feature = "config")]
type Configured = crate::config::Configuration;
#[cfg(not(feature = "config"))]
type Configured = ();
#[cfg(feature = "config")]
type SectionLoaded = crate::config::SectionLoader;
#[cfg(not(feature = "config"))]
type SectionLoaded = ();

use crate::service::{
    ApplicationLifetime, FailurePolicy, ServiceInfo, Setting, SettingKind, SettingValue, Settings,
};

/// Collects services and host options, then checks everything at once in [`build`](Self::build).
///
/// [`Host::builder`] starts empty; [`discover`](Self::discover) adds everything the attributes
/// registered in the linked crates, which is what `hosted::run!()` does.
#[derive(Default)]
#[must_use]
pub struct HostBuilder {
    registry: Registry,
    replacements: Vec<Provider>,
    discovered: bool,
    linked: Vec<&'static str>,
    /// Libraries the binary depends on that use `hosted` but are not linked by name.
    unnamed: Vec<&'static str>,
    selection: Selection,
    options: HostOptions,
    lifetimes: Vec<Arc<dyn ErasedLifetime>>,
    /// `false` once [`handle_signals(false)`](Self::handle_signals) was called.
    no_signals: bool,
    #[cfg(feature = "config")]
    configuration: Option<crate::config::Configuration>,
    #[cfg(feature = "config")]
    aliases: Vec<(String, String)>,
}

impl std::fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBuilder")
            .field("registry", &self.registry)
            .field("selection", &self.selection)
            .field("options", &self.options)
            .field(
                "lifetimes",
                &self.lifetimes.iter().map(|l| l.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl HostBuilder {
    /// Adds every service and type registered by the attributes in the crates linked into this
    /// binary. Calling it twice adds them once.
    pub fn discover(mut self) -> Self {
        if !self.discovered {
            self.discovered = true;
            self.registry.extend(Registry::discovered());
        }
        self
    }

    /// Names library crates that must contribute registrations through [`discover`](Self::discover):
    /// what `hosted::run!(link = [...])` declares. A crate the linker dropped after all (or
    /// that registers nothing) is listed by [`Host::missing_crates`]; `run!()` then warns at
    /// startup and in `--list`, and fails `--check`. Names are crate names as Rust writes them
    /// (`linked_services` for the package `linked-services`).
    pub fn expect_crates(mut self, crates: impl IntoIterator<Item = &'static str>) -> Self {
        self.linked.extend(crates);
        self
    }

    /// Libraries the binary depends on that use `hosted` without `link` naming them: the ones
    /// of them that contributed nothing are reported as possibly dropped by the linker.
    pub(crate) fn suspect_crates(mut self, crates: impl IntoIterator<Item = &'static str>) -> Self {
        self.unnamed.extend(crates);
        self
    }

    /// Adds a service registered by hand.
    pub fn add_service(mut self, service: ServiceDescriptor) -> Self {
        self.registry.add_service(service);
        self
    }

    /// Registers a ready-made value, injectable as `Arc<T>` into services and registered types.
    /// `T` may be a trait object: `add_instance::<dyn Mailer>(Arc::new(Smtp::new()))`.
    pub fn add_instance<T: ?Sized + Send + Sync + 'static>(self, instance: Arc<T>) -> Self {
        self.provide(Provider::instance(instance))
    }

    /// Registers a type by hand, with its service lifetime and factory. Registering a type twice is a
    /// build error; use [`replace`](Self::replace) to substitute a registration.
    pub fn provide(mut self, provider: Provider) -> Self {
        self.registry.providers.push(provider);
        self
    }

    /// Substitutes the registration of the same type, wherever it came from (an attribute, or
    /// [`provide`](Self::provide)): how a test swaps a real SMTP client for a fake. Applied when
    /// the host is built, after discovery; replacing a type nothing registers is a build error,
    /// so a typo cannot leave the real registration in place.
    pub fn replace(mut self, provider: Provider) -> Self {
        self.replacements.push(provider);
        self
    }

    /// Keeps only the services named here (and the types they register), dropping every other
    /// service: a test of one binary can run one scenario although the binary registers many.
    /// Each entry is a service's full name (`app::billing::invoicer`) or a module prefix of it
    /// (`app::billing` keeps every service in that module). An entry that matches no service is
    /// a build problem, so a typo cannot leave a test running nothing. Applied when the host is
    /// built, so it may come before or after [`discover`](Self::discover); calling it again
    /// narrows the selection further.
    ///
    /// ```
    /// use hosted::Host;
    /// use hosted::di::RunContext;
    /// use hosted::registry::ServiceDescriptor;
    ///
    /// let host = Host::builder()
    ///     .add_service(ServiceDescriptor::background("app::billing::invoicer", |_: RunContext| async {}))
    ///     .add_service(ServiceDescriptor::background("app::mail::sender", |_: RunContext| async {}))
    ///     .only(["app::billing"])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(host.services().map(|service| service.name()).collect::<Vec<_>>(), ["app::billing::invoicer"]);
    /// ```
    pub fn only<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        self.selection.named.push(names);
        self
    }

    /// Keeps only the services whose name `keep` accepts (and the types they register), as
    /// [`only`](Self::only) does for a list of names.
    pub fn select(mut self, keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.selection.predicates.push(Arc::new(keep));
        self
    }

    /// Removes the named service (and the type it registers), for example a discovered service a
    /// test replaces with its own. Removing a name nothing has is not an error.
    pub fn remove_service(mut self, name: &str) -> Self {
        let owned = |owner: &str| owner == name;
        self.registry
            .services
            .retain(|service| service.name != name);
        self.registry
            .providers
            .retain(|provider| !owned(&provider.owner));
        self
    }

    /// Whether a service of that name is registered (for a feature that adds its own service
    /// only when the application did not).
    #[cfg(feature = "prometheus")]
    pub(crate) fn has_service(&self, name: &str) -> bool {
        self.registry
            .services
            .iter()
            .any(|service| service.name == name)
    }

    /// Whether the configuration given to [`configuration`](Self::configuration) sets `key`
    /// (a dotted key, from any source).
    #[cfg(feature = "prometheus")]
    pub(crate) fn is_configured(&self, key: &str) -> bool {
        self.configuration
            .as_ref()
            .is_some_and(|configuration| !configuration.listing(key, &[]).is_empty())
    }

    /// The time all services together get to stop once a stop begins. Default 5 s. Services
    /// still running when it runs out are abandoned, named in the log, and the exit code is 1.
    /// Configuration (`host.shutdown_timeout`) overrides it.
    pub fn shutdown_timeout(mut self, budget: Duration) -> Self {
        self.options
            .set("shutdown_timeout", SettingValue::Duration(budget));
        self
    }

    /// How long, once a stop is requested, the host waits before stopping any service, while
    /// readiness (`/readyz`) already fails and everything keeps serving: the time a load
    /// balancer or an orchestrator takes to stop sending work. Default 0. Comes on top of the
    /// shutdown budget. Configuration (`host.drain_delay`) overrides it.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.options
            .set("drain_delay", SettingValue::Duration(delay));
        self
    }

    /// Adds a [`HostLifetime`](super::HostLifetime): something outside the services that the host
    /// tells when it starts, is ready, stops and has stopped, and that may request the stop
    /// (systemd, a service manager). Lifetimes are called in the order added, after the
    /// [`SignalLifetime`](super::SignalLifetime) that [`Host::run`] puts first.
    pub fn lifetime(mut self, lifetime: impl super::HostLifetime) -> Self {
        self.lifetimes.push(Arc::new(lifetime));
        self
    }

    /// Whether [`Host::run`] listens for SIGINT, SIGTERM and SIGQUIT through the
    /// [`SignalLifetime`](super::SignalLifetime). Default `true`; turn it off when another
    /// lifetime or the embedding application owns the signals.
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.no_signals = !handle;
        self
    }

    /// The time all services together get to start. Default: unlimited. When it runs out,
    /// startup fails like a failing start. Configuration (`host.startup_timeout`) overrides it.
    pub fn startup_timeout(mut self, budget: Duration) -> Self {
        self.options
            .set("startup_timeout", SettingValue::Duration(budget));
        self
    }

    /// The failure policy of services that declare none. Default [`FailurePolicy::StopHost`].
    /// Configuration (`host.on_failure` and the restart keys) overrides it.
    #[allow(clippy::needless_pass_by_value, reason = "a builder takes its values")]
    pub fn default_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.options.set_policy(&policy);
        self
    }

    /// Applies configuration when the host is built: host options, each service's section
    /// (`enabled`, the failure policy, every argument of its attribute), and typed sections.
    /// See [`Configuration`](crate::config::Configuration).
    #[cfg(feature = "config")]
    pub fn configuration(mut self, configuration: crate::config::Configuration) -> Self {
        self.configuration = Some(configuration);
        self
    }

    /// Lets the configuration key `alias` set the setting `target` when `target` itself is not
    /// configured: keeps an existing flat key working, such as seed 002's `QueueCapacity` for
    /// `services.my_app.work.capacity`.
    #[cfg(feature = "config")]
    pub fn config_alias(mut self, alias: impl Into<String>, target: impl Into<String>) -> Self {
        self.aliases.push((alias.into(), target.into()));
        self
    }

    /// Checks the registrations and builds the host. Nothing starts yet.
    ///
    /// # Errors
    /// Every problem found, together: duplicate names, unknown or circular `after`, types needed
    /// but not registered, registered twice, or needing each other in a circle.
    #[allow(
        clippy::too_many_lines,
        reason = "one pass from registrations to a host; the status and its recorder added a few"
    )]
    pub fn build(self) -> Result<Host, BuildError> {
        let (mut services, mut providers) = (self.registry.services, self.registry.providers);
        let mut problems = self.selection.apply(&mut services, &mut providers);
        let missing_crates = missing(&self.linked, &self.registry.crates);
        let silent_crates = missing(&self.unnamed, &self.registry.crates);
        let mut options = self.options;
        #[cfg(feature = "config")]
        let configuration = self
            .configuration
            .as_ref()
            .map(|configuration| (configuration, self.aliases.as_slice()));
        #[cfg(not(feature = "config"))]
        let configuration = None;
        #[cfg_attr(
            not(feature = "config"),
            allow(unused_variables, reason = "no sections")
        )]
        let (default_policy, sections) = prepare(
            configuration,
            &mut options,
            &mut services,
            &mut providers,
            &mut problems,
        );
        // One policy shared by every service whose own is the default.
        let default_policy = Arc::new(default_policy);
        problems.extend(validation::duplicate_names(&services));
        problems.extend(replace(&mut providers, self.replacements));
        let nodes: Vec<Node<'_>> = services
            .iter()
            .map(|service| Node {
                name: &service.name,
                order: service.order,
                after: service.after.iter().map(AsRef::as_ref).collect(),
            })
            .collect();
        let order = match start_order(&nodes) {
            Ok(order) if problems.is_empty() => order,
            Ok(_) => Vec::new(),
            Err(found) => {
                problems.extend(found);
                Vec::new()
            }
        };
        // Installed before any handle is taken, so the histograms record from the start; only
        // by a host that exposes it (the web host's `/metrics`, the standalone listener), so a
        // host without either pays nothing for it.
        #[cfg(feature = "prometheus")]
        if services
            .iter()
            .any(|service| matches!(&*service.name, "hosted::web" | "hosted::metrics"))
        {
            let _ = crate::status::metrics::prometheus();
        }
        let status = Arc::new(HostStatus::new());
        providers.push(Provider::instance(Arc::clone(&status)));
        problems.extend(validation::check_dependencies(&services, &providers));
        if !problems.is_empty() {
            return Err(BuildError::new(problems));
        }

        let needs_scope = validation::services_needing_scope(&services, &providers);
        let mut services: Vec<Option<(ServiceDescriptor, bool)>> =
            services.into_iter().zip(needs_scope).map(Some).collect();
        let planned: Vec<Planned> = order
            .into_iter()
            .filter_map(|position| services[position].take())
            .map({
                let mut policies = SharedPolicies::new(default_policy);
                move |(service, needs_scope)| planned(service, needs_scope, &mut policies, &status)
            })
            .collect();
        let lifetime = ApplicationLifetime::new();
        let container = container(providers, &lifetime, &planned);
        let (startup_timeout, shutdown_timeout) =
            (options.startup_timeout(), options.shutdown_timeout());
        let services = planned.iter().map(|planned| planned.info.clone());
        let cx = LifetimeContext::new(lifetime.clone(), services.collect(), &options);
        Ok(Host {
            planned,
            lifetimes: Lifetimes::new(self.lifetimes, cx),
            signals: !self.no_signals,
            listing: Listing {
                options,
                missing_crates,
                silent_crates,
                #[cfg(feature = "config")]
                sections,
                #[cfg(feature = "config")]
                configuration: self.configuration,
            },
            shared: Shared {
                supervision: Arc::new(Supervision::new(lifetime, Incidents::default())),
                container,
                startup_timeout,
                shutdown_timeout,
            },
        })
    }
}

/// The container, which knows each service's facts and stop token for the types it owns.
fn container(
    providers: Vec<Provider>,
    lifetime: &ApplicationLifetime,
    planned: &[Planned],
) -> Arc<Container> {
    let homes: HashMap<&str, &Planned> = planned
        .iter()
        .map(|planned| (planned.info.name(), planned))
        .collect();
    Arc::new(Container::new(providers, lifetime.clone(), |owner| {
        homes
            .get(owner)
            .map(|planned| (planned.info.clone(), planned.stop.clone()))
    }))
}

/// Substitutes each replacement for the registration of its type; a replacement of nothing is
/// a problem.
fn replace(providers: &mut Vec<Provider>, replacements: Vec<Provider>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for replacement in replacements {
        let before = providers.len();
        providers.retain(|provider| provider.type_id != replacement.type_id);
        if providers.len() == before {
            problems.push(Problem::NothingToReplace {
                type_name: replacement.type_name.to_owned(),
            });
        }
        providers.push(replacement);
    }
    problems
}

/// How many distinct lists of settings [`merge_settings`] keeps at hand to share with the
/// next services.
const RECENT_SETTINGS: usize = 4;

/// Gives each service the common settings (`shared` for the default policy, `common(policy)`
/// for its own) followed by its own. Services alike (the same kind with the same arguments: a
/// thousand identical timers) share one merged list too. The lists met last are compared, not
/// hashed: alike services are usually registered together, and one that matches none costs a
/// comparison with a few.
fn merge_settings(
    services: &mut [ServiceDescriptor],
    shared: &Settings,
    common: impl Fn(&FailurePolicy) -> Settings,
) {
    let mut recent: VecDeque<Settings> = VecDeque::with_capacity(RECENT_SETTINGS);
    for service in services.iter_mut() {
        let base = match &service.policy {
            Some(policy) => common(policy),
            None => shared.clone(),
        };
        if service.settings.is_empty() {
            service.settings = base;
            continue;
        }
        let merged = Settings::merged(&base, &service.settings);
        if let Some(seen) = recent.iter().find(|seen| seen.same_content(&merged)) {
            service.settings = seen.clone();
            continue;
        }
        if recent.len() == RECENT_SETTINGS {
            recent.pop_back();
        }
        recent.push_front(merged.clone());
        service.settings = merged;
    }
}

/// Applies configuration and the per-service settings before the checks: host options, each
/// service's `enabled`, failure policy and attribute settings, and typed sections. Disabled
/// services are removed with the types they register. Returns the default failure policy and
/// the typed sections loaded.
fn prepare(
    configuration: Option<(&Configured, &[(String, String)])>,
    options: &mut HostOptions,
    services: &mut Vec<ServiceDescriptor>,
    providers: &mut Vec<Provider>,
    problems: &mut Vec<Problem>,
) -> (FailurePolicy, Vec<SectionLoaded>) {
    // Configuration first: it decides which services run and with what settings.
    #[cfg(feature = "config")]
    if let Some((configuration, _)) = configuration {
        problems.extend(configuration.apply_host(&mut options.settings));
    }
    let default_policy = options.default_policy().unwrap_or_else(|message| {
        problems.push(Problem::Config {
            key: "host".to_owned(),
            origin: crate::service::Origin::Default,
            message,
        });
        FailurePolicy::StopHost
    });
    // `enabled` and the policy come first in listings, then the attribute's own keys. Declared
    // once for the default policy: every service without a policy or settings of its own shares
    // that one list.
    let common = |policy: &FailurePolicy| {
        let mut settings = Settings::default();
        settings.declare(Setting::new(
            "enabled",
            SettingKind::Bool,
            SettingValue::Bool(true),
        ));
        crate::service::declare_policy(&mut settings, policy);
        settings
    };
    let shared = common(&default_policy);
    merge_settings(services, &shared, common);
    #[cfg(feature = "config")]
    let sections = match configuration {
        Some((configuration, aliases)) => {
            problems.extend(configuration.apply_services(services, aliases));
            let (sections, found) = configuration.provide_sections(services, providers);
            problems.extend(found);
            let known = ["host", "services"]
                .into_iter()
                .chain(sections.iter().map(|section| section.key))
                .chain(aliases.iter().map(|(alias, _)| alias.as_str()));
            problems.extend(configuration.unknown_roots(known));
            sections
        }
        None => Vec::new(),
    };
    #[cfg(not(feature = "config"))]
    let sections = {
        let _ = (configuration, &providers);
        Vec::new()
    };
    let disabled: Vec<String> = services
        .iter()
        .filter(|service| service.settings.bool("enabled") == Some(false))
        .map(|service| service.name.to_string())
        .collect();
    services.retain(|service| !disabled.contains(&service.name.to_string()));
    providers.retain(|provider| !disabled.contains(&provider.owner));
    // A list of settings shared by many services (see above) is checked once, not per service.
    let mut fitting: Option<Settings> = None;
    for service in services.iter() {
        if service.checks.is_empty() && fitting.as_ref().is_some_and(|s| s.same(&service.settings))
        {
            continue;
        }
        let found = check_settings(service);
        if found.is_empty() && service.checks.is_empty() {
            fitting = Some(service.settings.clone());
        }
        problems.extend(found);
    }
    let mut read: Option<(Settings, FailurePolicy)> = None;
    for service in services.iter_mut() {
        // Services sharing one list of settings share its policy: read it once.
        if let Some((settings, policy)) = &read
            && settings.same(&service.settings)
        {
            service.policy = Some(policy.clone());
            continue;
        }
        match crate::service::policy_from(&service.settings) {
            Ok(policy) => {
                read = Some((service.settings.clone(), policy.clone()));
                service.policy = Some(policy);
            }
            Err(message) => problems.push(Problem::Config {
                key: format!("{}", service.name),
                origin: crate::service::Origin::Default,
                message,
            }),
        }
    }
    (default_policy, sections)
}

/// A service's settings, each against its kind, then (when each fits) together against the
/// service's cross-key checks.
fn check_settings(service: &ServiceDescriptor) -> Vec<Problem> {
    let mut problems = Vec::new();
    let prefix = || format!("services.{}", service.name.replace("::", "."));

    for setting in service.settings.iter() {
        if let Some(message) = setting.misfit() {
            problems.push(Problem::Config {
                key: format!("{}.{}", prefix(), setting.key()),
                origin: setting.origin().clone(),
                message,
            });
        }
    }
    // Combinations are judged only over values that each fit.
    if !problems.is_empty() {
        return problems;
    }
    if service.checks.is_empty() {
        return problems;
    }
    let prefix = prefix();
    for check in &service.checks {
        problems.extend(check(&service.settings).into_iter().map(|conflict| {
            Problem::ConfigConflict {
                keys: conflict
                    .keys
                    .iter()
                    .enumerate()
                    .filter(|(position, key)| *position == 0 || service.settings.get(key).is_some())
                    .map(|(_, key)| {
                        let origin = service
                            .settings
                            .get(key)
                            .map_or(crate::service::Origin::Default, |setting| {
                                setting.origin().clone()
                            });
                        (format!("{prefix}.{key}"), origin)
                    })
                    .collect(),
                message: conflict.message,
            }
        }));
    }
    problems
}

/// A predicate of [`HostBuilder::select`] over service names.
type Keep = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The services [`HostBuilder::only`] and [`HostBuilder::select`] keep.
#[derive(Default)]
struct Selection {
    named: Vec<Vec<String>>,
    predicates: Vec<Keep>,
}

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selection")
            .field("named", &self.named)
            .field("predicates", &self.predicates.len())
            .finish()
    }
}

impl Selection {
    /// Drops the services not selected, with the types they register; an `only` entry that
    /// matches nothing is a problem.
    fn apply(
        &self,
        services: &mut Vec<ServiceDescriptor>,
        providers: &mut Vec<Provider>,
    ) -> Vec<Problem> {
        if self.named.is_empty() && self.predicates.is_empty() {
            return Vec::new();
        }
        let matches = |entry: &str, name: &str| {
            name == entry
                || name
                    .strip_prefix(entry)
                    .is_some_and(|rest| rest.starts_with("::"))
        };
        let known: Vec<String> = services
            .iter()
            .map(|service| service.name.to_string())
            .collect();
        let problems = self
            .named
            .iter()
            .flatten()
            .filter(|entry| !known.iter().any(|name| matches(entry, name)))
            .map(|entry| Problem::UnknownSelection {
                name: entry.clone(),
                known: known.clone(),
            })
            .collect();
        let kept = |name: &str| {
            self.named
                .iter()
                .all(|names| names.iter().any(|entry| matches(entry, name)))
                && self.predicates.iter().all(|keep| keep(name))
        };
        let dropped: Vec<String> = known.into_iter().filter(|name| !kept(name)).collect();
        services.retain(|service| !dropped.iter().any(|name| *name == service.name));
        providers.retain(|provider| !dropped.contains(&provider.owner));
        problems
    }
}

/// The crates of `linked` that contributed nothing.
fn missing(
    linked: &[&'static str],
    contributed: &std::collections::BTreeSet<&'static str>,
) -> Vec<&'static str> {
    linked
        .iter()
        .copied()
        .filter(|krate| !contributed.contains(krate))
        .collect()
}

/// The failure policies services declare, one allocation for each distinct one: every timer
/// declares `ignore` (the timers' default), and 10,000 timers would otherwise hold 10,000
/// copies.
struct SharedPolicies {
    /// The host's default first; at most [`Self::KEPT`] of them.
    known: Vec<Arc<FailurePolicy>>,
}

impl SharedPolicies {
    /// How many distinct policies are shared; past them (restart policies with parameters of
    /// their own, say), each service gets its own.
    const KEPT: usize = 16;

    fn new(default: Arc<FailurePolicy>) -> Self {
        Self {
            known: vec![default],
        }
    }

    /// The shared `policy`, or the default when the service declared none.
    fn get(&mut self, policy: Option<FailurePolicy>) -> Arc<FailurePolicy> {
        let Some(policy) = policy else {
            return Arc::clone(&self.known[0]);
        };
        if let Some(known) = self.known.iter().find(|known| ***known == policy) {
            return Arc::clone(known);
        }
        let policy = Arc::new(policy);
        if self.known.len() < Self::KEPT {
            self.known.push(Arc::clone(&policy));
        }
        policy
    }
}

/// A checked service, ready to be built when the host starts.
fn planned(
    service: ServiceDescriptor,
    needs_scope: bool,
    policies: &mut SharedPolicies,
    status: &HostStatus,
) -> Planned {
    let info = ServiceInfo::new(
        service.name,
        service.kind,
        service.order,
        service.after,
        policies.get(service.policy),
        service.source,
        service.settings,
    );
    Planned {
        store: service.store,
        status: status.add(&info),
        info,
        stop: CancellationToken::new(),
        make: service.make,
        needs_scope,
        declare: service.declare,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::SharedPolicies;
    use crate::service::{FailurePolicy, RestartPolicy};

    #[test]
    fn services_with_the_same_policy_share_one() {
        let mut policies = SharedPolicies::new(Arc::new(FailurePolicy::StopHost));
        let default = policies.get(None);
        assert_eq!(*default, FailurePolicy::StopHost);
        assert!(Arc::ptr_eq(&default, &policies.get(None)));
        assert!(Arc::ptr_eq(
            &default,
            &policies.get(Some(FailurePolicy::StopHost))
        ));
        let ignore = policies.get(Some(FailurePolicy::Ignore));
        assert_eq!(*ignore, FailurePolicy::Ignore);
        assert!(Arc::ptr_eq(
            &ignore,
            &policies.get(Some(FailurePolicy::Ignore))
        ));
        // Past the ones kept, each gets its own, still the one it declared.
        for restarts in 0..40 {
            let declared = FailurePolicy::Restart(RestartPolicy::new().with_max_restarts(restarts));
            assert_eq!(*policies.get(Some(declared.clone())), declared);
        }
        assert!(Arc::ptr_eq(
            &ignore,
            &policies.get(Some(FailurePolicy::Ignore))
        ));
    }

    use crate::di::RunContext;
    use crate::host::Host;
    use crate::registry::ServiceDescriptor;
    use crate::service::{Setting, SettingKind, SettingValue};

    fn every(name: String, seconds: u64) -> ServiceDescriptor {
        ServiceDescriptor::background(name, |_: RunContext| async {}).setting(Setting::new(
            "every",
            SettingKind::Duration {
                min: Duration::from_millis(1),
            },
            SettingValue::Duration(Duration::from_secs(seconds)),
        ))
    }

    /// A thousand alike timers keep one list of settings, not a thousand: the list is most of
    /// an idle timer's memory (BENCHMARKS.md, issue 14's timer memory).
    #[test]
    fn alike_services_share_one_list_of_settings() {
        let mut builder = Host::builder();
        for index in 0..6 {
            // Two kinds interleaved, then one of its own.
            let seconds = if index == 5 { 7 } else { index % 2 + 1 };
            builder = builder.add_service(every(format!("t{index}"), seconds));
        }
        let host = builder.build().unwrap();
        let infos: Vec<_> = host.services().collect();
        let shared = |a: usize, b: usize| infos[a].settings().same(infos[b].settings());
        assert!(shared(0, 2) && shared(2, 4), "the 1 s ones share");
        assert!(shared(1, 3), "the 2 s ones share");
        assert!(!shared(0, 1) && !shared(4, 5), "different values do not");
        assert_eq!(
            infos[5].settings().duration("every"),
            Some(Duration::from_secs(7))
        );
        assert!(
            infos[0].settings().get("enabled").is_some(),
            "merged with the common keys"
        );
    }
}
