//! The facts the host keeps about each service: [`ServiceInfo`], its [`ServiceKind`] and where
//! it was declared.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::{FailurePolicy, Settings};

/// The kinds of service the host runs; shown by `--list` and in logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceKind {
    /// An `async fn` run once as the service's body (`#[hosted_service]` on a function).
    Background,
    /// A type implementing [`HostedService`](super::HostedService) (`#[hosted_service]` on a type).
    Hosted,
    /// A function run on a schedule (`#[timed]`).
    Timed,
    /// A function run for each item of a queue (`#[queued]`).
    Queued,
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Background => "background",
            Self::Hosted => "hosted",
            Self::Timed => "timed",
            Self::Queued => "queued",
        })
    }
}

/// Where a service was declared in source code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceLocation {
    /// The file, as `file!()` gives it.
    pub file: &'static str,
    /// The line of the annotated item.
    pub line: u32,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The facts the host keeps about one service. Cheap to clone; injectable as a parameter.
#[derive(Clone)]
pub struct ServiceInfo(Arc<InfoInner>);

struct InfoInner {
    name: Cow<'static, str>,
    kind: ServiceKind,
    order: i32,
    /// Exactly as long as the list: every service holds one, most of them empty.
    after: Box<[Cow<'static, str>]>,
    /// Shared by every service whose policy is the host's default.
    policy: Arc<FailurePolicy>,
    source: Option<SourceLocation>,
    settings: Settings,
    activity: super::Activity,
}

impl ServiceInfo {
    pub(crate) fn new(
        name: Cow<'static, str>,
        kind: ServiceKind,
        order: i32,
        after: Vec<Cow<'static, str>>,
        policy: Arc<FailurePolicy>,
        source: Option<SourceLocation>,
        settings: Settings,
    ) -> Self {
        Self(Arc::new(InfoInner {
            name,
            kind,
            order,
            after: after.into_boxed_slice(),
            policy,
            source,
            settings,
            activity: super::Activity::new(),
        }))
    }

    /// The service's name: the `name` argument, or the item's path (`my_app::heartbeat`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// What kind of service this is.
    #[must_use]
    pub fn kind(&self) -> ServiceKind {
        self.0.kind
    }

    /// The declared `order` (lower starts first; default 0).
    #[must_use]
    pub fn order(&self) -> i32 {
        self.0.order
    }

    /// The names of the services this one starts after.
    pub fn after(&self) -> impl Iterator<Item = &str> {
        self.0.after.iter().map(AsRef::as_ref)
    }

    /// The failure policy in force: the service's own, or the host's default.
    #[must_use]
    pub fn policy(&self) -> &FailurePolicy {
        &self.0.policy
    }

    /// The service's settings, with configuration applied: what its attribute declared
    /// overridable (a period, a capacity, the failure policy), each with its effective value
    /// and where that came from.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// What the service shows while it runs: running or not, declared stuck, work in flight,
    /// next due run. Shared by every clone of this `ServiceInfo`.
    #[must_use]
    pub fn activity(&self) -> &super::Activity {
        &self.0.activity
    }

    /// Where the service was declared, for services registered by an attribute.
    #[must_use]
    pub fn source(&self) -> Option<SourceLocation> {
        self.0.source
    }
}

impl fmt::Debug for ServiceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceInfo")
            .field("name", &self.0.name)
            .field("kind", &self.0.kind)
            .field("order", &self.0.order)
            .field("after", &self.0.after)
            .field("policy", &self.0.policy)
            .field("source", &self.0.source)
            .finish()
    }
}
