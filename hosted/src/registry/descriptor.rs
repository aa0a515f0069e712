//! A [`ServiceDescriptor`]: one service as registered, and how to make it once the container
//! exists.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::FnService;
use crate::di::{
    Built, Construct, Dependencies, GeneratedFactory, InjectError, Provider, RunContext,
    ServiceLifetime,
};
use crate::service::{
    ErasedService, FailurePolicy, HostedService, IntoOutcome, ServiceKind, Setting, Settings,
    SettingsCheck, SettingsConflict, SourceLocation,
};
use crate::util::BoxFuture;

/// Builds the running service once the container exists.
pub(crate) type MakeService = Arc<
    dyn Fn(RunContext) -> BoxFuture<'static, Result<Arc<dyn ErasedService>, InjectError>>
        + Send
        + Sync,
>;

/// A service as registered: its name, kind, ordering, failure policy and how to run it.
///
/// The attributes create descriptors for you; create them by hand to register services on the
/// [`HostBuilder`](crate::host::HostBuilder) (tests, or platforms where link-time registration does not
/// work):
///
/// ```
/// use hosted::{FailurePolicy, Host};
/// use hosted::di::RunContext;
/// use hosted::registry::ServiceDescriptor;
///
/// let host = Host::builder()
///     .add_service(
///         ServiceDescriptor::background("ticker", |cx: RunContext| async move {
///             cx.stop_token().cancelled().await;
///         })
///         .order(-1)
///         .on_failure(FailurePolicy::Ignore),
///     )
///     .build()
///     .expect("a valid host");
/// # drop(host);
/// ```
pub struct ServiceDescriptor {
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: ServiceKind,
    pub(crate) order: i32,
    pub(crate) after: Vec<Cow<'static, str>>,
    pub(crate) policy: Option<FailurePolicy>,
    pub(crate) source: Option<SourceLocation>,
    /// What the service resolves, when known (generated code declares it; closures registered
    /// by hand do not, and their runs always get a scope).
    pub(crate) declare: Option<fn(&mut Dependencies)>,
    pub(crate) make: MakeService,
    pub(crate) provider: Option<Provider>,
    pub(crate) settings: Settings,
    /// Rules over several settings together, run on the effective settings as the host is
    /// built.
    pub(crate) checks: Vec<SettingsCheck>,
    /// Where the service keeps its work when not in memory (`"postgres"` for a durable queue or
    /// a once-per-cluster timer): what the features' `--list`/`--check` hooks look for.
    pub(crate) store: Option<&'static str>,
}

impl ServiceDescriptor {
    /// A background service whose body is `body`, called with a fresh [`RunContext`] for each run
    /// (once, or again after a restart). The body returns `()` or `Result<(), E>`.
    pub fn background<F, Fut>(name: impl Into<Cow<'static, str>>, body: F) -> Self
    where
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        let body = Arc::new(body);
        Self::new(
            name.into(),
            ServiceKind::Background,
            Arc::new(move |cx| {
                let service: Arc<dyn ErasedService> =
                    Arc::new(FnService::new(Arc::clone(&body), cx));
                Box::pin(std::future::ready(Ok(service)))
            }),
        )
    }

    /// A service implemented by a [`HostedService`] type, from an instance you built; keep a
    /// clone of the `Arc` to reach it from outside.
    ///
    /// Unlike a `#[hosted_service]` type, an instance registered this way is not injectable
    /// into other services, so several instances of one type may run side by side; add it with
    /// [`HostBuilder::add_instance`](crate::host::HostBuilder::add_instance) as well to share it.
    pub fn hosted<T: HostedService>(name: impl Into<Cow<'static, str>>, instance: Arc<T>) -> Self {
        Self::new(
            name.into(),
            ServiceKind::Hosted,
            Arc::new(move |_| {
                let service: Arc<dyn ErasedService> =
                    Arc::clone(&instance) as Arc<dyn ErasedService>;
                Box::pin(std::future::ready(Ok(service)))
            }),
        )
    }

    pub(crate) fn new(name: Cow<'static, str>, kind: ServiceKind, make: MakeService) -> Self {
        Self {
            name,
            kind,
            order: 0,
            after: Vec::new(),
            policy: None,
            source: None,
            declare: None,
            make,
            provider: None,
            settings: Settings::default(),
            checks: Vec::new(),
            store: None,
        }
    }

    /// Sets the start order: lower starts first; equal orders start by name. Default 0.
    #[must_use]
    pub fn order(mut self, order: i32) -> Self {
        self.order = order;
        self
    }

    /// Starts this service after the named one (and stops it before).
    #[must_use]
    pub fn after(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.after.push(name.into());
        self
    }

    /// Sets this service's failure policy, instead of the host's default.
    #[must_use]
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Declares a setting configuration may override under the service's section, with its
    /// default. Attributes declare one per argument; a runner reads the effective values from
    /// [`ServiceInfo::settings`](crate::service::ServiceInfo::settings) when it starts.
    #[must_use]
    pub fn setting(mut self, setting: Setting) -> Self {
        self.settings.declare(setting);
        self
    }

    /// Adds a rule over several of this service's settings together, run on their effective
    /// values (configuration applied) while the host is built: what it returns is reported by
    /// `--check` and at startup as a configuration problem, with each key's source, and the
    /// process exits with 78. `#[timed]` and `#[queued]` declare their cross-key rules this way.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hosted::di::RunContext;
    /// use hosted::registry::ServiceDescriptor;
    /// use hosted::service::{Setting, SettingKind, SettingValue, SettingsConflict};
    ///
    /// let poller = ServiceDescriptor::background("poller", |_: RunContext| async {})
    ///     .setting(Setting::new("low", SettingKind::Integer { min: 0, max: 100 }, SettingValue::Integer(10)))
    ///     .setting(Setting::new("high", SettingKind::Integer { min: 0, max: 100 }, SettingValue::Integer(90)))
    ///     .check_settings(|settings| {
    ///         let (low, high) = (settings.integer("low"), settings.integer("high"));
    ///         if low > high {
    ///             vec![SettingsConflict::new(["low", "high"], "`low` must not exceed `high`")]
    ///         } else {
    ///             Vec::new()
    ///         }
    ///     });
    /// # drop(poller);
    /// ```
    #[must_use]
    pub fn check_settings(
        mut self,
        check: impl Fn(&Settings) -> Vec<SettingsConflict> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// The service's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Not public API, used by generated code.
    #[doc(hidden)]
    #[must_use]
    pub fn __source(mut self, file: &'static str, line: u32) -> Self {
        self.source = Some(SourceLocation { file, line });
        self
    }

    /// Not public API, used by generated code: [`Self::__source`] from where an annotated item
    /// was written.
    #[doc(hidden)]
    #[must_use]
    pub fn __at(self, at: super::At) -> Self {
        self.__source(at.file, at.line)
    }

    /// Declares what the body resolves, so the host checks it before anything starts (missing
    /// registrations, typed configuration sections to load) and gives runs a scope only when
    /// needed. Generated code declares this itself; closures registered by hand that resolve
    /// through their [`RunContext`] should say what they resolve:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # struct Database;
    /// use hosted::di::{Inject, RunContext};
    /// use hosted::registry::ServiceDescriptor;
    ///
    /// let service = ServiceDescriptor::background("reports", |cx: RunContext| async move {
    ///     let database = cx.resolve::<Arc<Database>>().await?;
    ///     # drop(database);
    ///     Ok::<(), hosted::BoxError>(())
    /// })
    /// .needs(<Arc<Database> as Inject>::declare);
    /// ```
    #[must_use]
    pub fn needs(mut self, declare: fn(&mut Dependencies)) -> Self {
        self.declare = Some(declare);
        self
    }

    /// Not public API, used by generated code.
    #[doc(hidden)]
    #[must_use]
    pub fn __declare(self, declare: fn(&mut Dependencies)) -> Self {
        self.needs(declare)
    }

    /// Not public API, used by generated code: a service of a `#[hosted_service]` type, built
    /// from injected fields by the container.
    #[doc(hidden)]
    #[must_use]
    pub fn __hosted_type<T: HostedService + Construct>(name: &'static str) -> Self {
        let mut provider = Provider::__erased_sized::<T>(
            ServiceLifetime::Singleton,
            GeneratedFactory::Async(|cx: RunContext| {
                Box::pin(async move {
                    let value = <T as Construct>::construct(&cx).await?;
                    Ok(Built::__sized(Arc::new(value), None))
                })
            }),
            <T as Construct>::declare,
            false,
        );
        name.clone_into(&mut provider.owner);
        provider.service_type = true;
        let mut descriptor = Self::new(
            Cow::Borrowed(name),
            ServiceKind::Hosted,
            resolve_hosted::<T>(),
        );
        descriptor.provider = Some(provider);
        descriptor
    }
}

/// Finds the instance of `T` in the container and drives it as the service.
fn resolve_hosted<T: HostedService>() -> MakeService {
    Arc::new(|cx: RunContext| {
        Box::pin(async move {
            let instance = cx.container().resolve::<T>(&cx).await?;
            Ok(instance as Arc<dyn ErasedService>)
        })
    })
}

impl fmt::Debug for ServiceDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceDescriptor")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("order", &self.order)
            .field("after", &self.after)
            .field("policy", &self.policy)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
