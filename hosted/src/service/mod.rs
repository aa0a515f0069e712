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
pub use self::hosted::{HostedService, ServiceContext};
pub use self::info::{ServiceInfo, ServiceKind, SourceLocation};
pub use self::lifetime::{ApplicationLifetime, StopReason};
pub(crate) use self::outcome::call_caught;
pub use self::outcome::{BoxError, Failure, IntoOutcome};
pub use self::policy::{FailurePolicy, RestartPolicy};
pub(crate) use self::policy::{declare_policy, policy_from};
pub use self::settings::{
    Origin, Setting, SettingKind, SettingValue, Settings, SettingsCheck, SettingsConflict,
    TextCheck,
};
pub(crate) use self::settings::{format_duration, parse_duration};
