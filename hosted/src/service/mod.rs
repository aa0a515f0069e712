//! What a service is, before any host runs it: the [`HostedService`] trait and the
//! [`ServiceContext`] its methods get, the facts kept about each service ([`ServiceInfo`]), what
//! its code returns ([`IntoOutcome`], [`Failure`]), its [`FailurePolicy`], the [`Settings`]
//! configuration may override, and the [`ApplicationLifetime`] it can watch or stop.
//!
//! Everything here is below the registry in the flow (see the
//! [design guide](crate::docs::design)): it names no container, no registration, no host.

mod activity;
mod erased;
mod hosted;
mod info;
mod lifetime;
mod outcome;
mod policy;
mod settings;

pub use self::activity::Activity;
pub(crate) use self::erased::ErasedService;
pub use self::hosted::{HostedService, ServiceContext, implements_hosted_service};
pub use self::info::{ServiceInfo, ServiceKind, SourceLocation};
pub use self::lifetime::{ApplicationLifetime, StopReason};
pub use self::outcome::{BoxError, Failure, IntoOutcome};
pub(crate) use self::outcome::{Caught, call_caught, call_caught_unbounded};
pub use self::policy::{FailurePolicy, RestartPolicy};
pub(crate) use self::policy::{declare_policy, policy_from};
pub(crate) use self::settings::format_duration;
#[cfg(feature = "config")]
pub(crate) use self::settings::parse_duration;
pub use self::settings::{
    Origin, Setting, SettingKind, SettingValue, Settings, SettingsCheck, SettingsConflict,
    TextCheck,
};
