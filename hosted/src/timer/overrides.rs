//! [`TimerOverrides`]: timer options replaced at startup, by service name.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use crate::di::RunContext;
use crate::timer::options::TimerOptions;

/// Options that replace those of named timers when the host builds them: how a binary shortens
/// a period from its command line or environment, and the hook configuration plugs into.
/// Register it with [`HostBuilder::add_instance`](crate::host::HostBuilder::add_instance).
///
/// The replacement options are checked like the attribute's; a mistake stops startup with the
/// service named.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hosted::timer::{TimerOptions, TimerOverrides};
///
/// let overrides = TimerOverrides::new()
///     .set("app::heartbeat", TimerOptions::every(Duration::from_millis(100)));
/// let builder = hosted::Host::builder().discover().add_instance(Arc::new(overrides));
/// # drop(builder);
/// ```
#[derive(Clone, Debug, Default)]
pub struct TimerOverrides {
    by_service: HashMap<String, TimerOptions>,
}

impl TimerOverrides {
    /// No overrides.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces every option of the timer named `service` with `options`.
    #[must_use]
    pub fn set(mut self, service: impl Into<String>, options: TimerOptions) -> Self {
        self.by_service.insert(service.into(), options);
        self
    }

    /// The options that replace those of `service`, if any.
    #[must_use]
    pub fn get(&self, service: &str) -> Option<&TimerOptions> {
        self.by_service.get(service)
    }
}

/// The options registered for the service `cx` builds, if any.
pub(crate) async fn for_service(cx: &RunContext) -> Option<TimerOptions> {
    let container = Arc::clone(cx.container());
    if !container.provides(TypeId::of::<TimerOverrides>()) {
        return None;
    }
    let overrides = container.resolve::<TimerOverrides>(cx).await.ok()?;
    overrides.get(cx.info().name()).cloned()
}
