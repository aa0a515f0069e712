//! Timed services: a function run on a schedule (`#[timed]`), with declared overlap and
//! missed-tick policies.
//!
//! The [`#[timed]`](crate::timed) attribute is the usual way in; this module holds what it
//! builds on, for services registered by hand with [`ServiceDescriptor::timed`] and for the
//! configuration of timers: [`TimerOptions`] (every runtime parameter, named like the
//! attribute's arguments), the policies [`Overlap`] and [`Missed`], and [`CronSchedule`].

mod clock;
mod options;
mod overrides;
mod runner;
mod schedule;
mod stop_signal;
mod tick;
mod tick_log;
mod timeline;

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

pub use self::clock::VirtualWallClock;
pub use self::options::{DEFAULT_MAX_CONCURRENT, Missed, Overlap, TimerOptions, TimerOptionsError};
pub use self::overrides::TimerOverrides;
pub use self::schedule::CronSchedule;
pub use self::tick::Tick;
pub use self::tick_log::{TickLog, TickRecord};

use crate::di::{InjectError, RunContext};
use crate::registry::{MakeService, ServiceDescriptor};
use crate::service::ErasedService;
use crate::service::FailurePolicy;
use crate::service::{IntoOutcome, ServiceKind, SettingsConflict};

impl ServiceDescriptor {
    /// A timed service: `body` runs on the schedule of `options`, each tick with a fresh
    /// [`RunContext`] carrying its [`Tick`]. The body returns `()` or `Result<(), E>`.
    ///
    /// A failed tick is logged with its number and the timer keeps going: the failure policy of
    /// a timer is [`FailurePolicy::Ignore`] unless [`on_failure`](Self::on_failure) says
    /// otherwise (see [`#[timed]`](crate::timed) for what `stop` and `restart` mean for a
    /// timer). The options are checked, configuration applied, when the host is built: a
    /// combination that cannot run (`jitter` not shorter than `every`, `max_concurrent` without
    /// `overlap = "concurrent"`, …) is a configuration problem that `--check` and startup report
    /// with the keys and their sources (exit 78). A [`TimerOverrides`] registered on the host replaces them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hosted::timer::TimerOptions;
    /// use hosted::Tick;
    /// use hosted::di::RunContext;
    /// use hosted::registry::ServiceDescriptor;
    ///
    /// let heartbeat = ServiceDescriptor::timed(
    ///     "heartbeat",
    ///     TimerOptions::every(Duration::from_secs(5)),
    ///     |cx: RunContext| async move {
    ///         let tick = cx.resolve::<Tick>().await?;
    ///         tracing::info!(tick = tick.number(), "beat");
    ///         Ok::<(), hosted::BoxError>(())
    ///     },
    /// );
    /// # drop(heartbeat);
    /// ```
    pub fn timed<F, Fut>(name: impl Into<Cow<'static, str>>, options: TimerOptions, body: F) -> Self
    where
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        let body = Arc::new(body);
        let settings = options.settings();
        let checked = options.clone();
        let make: MakeService = Arc::new(move |cx: RunContext| {
            let body = Arc::clone(&body);
            let options = options.clone();
            Box::pin(async move {
                let options = match overrides::for_service(&cx).await {
                    Some(replaced) => replaced,
                    None => options.configured(cx.info().settings()),
                };
                let plan = options.plan().map_err(|error| {
                    InjectError::Custom(format!("invalid timer options: {error}"))
                })?;
                let timer = runner::TimerService::new(body, cx, plan).await;
                Ok(Arc::new(timer) as Arc<dyn ErasedService>)
            })
        });
        let mut descriptor =
            Self::new(name.into(), ServiceKind::Timed, make).check_settings(move |settings| {
                match checked.configured(settings).plan() {
                    Ok(_) => Vec::new(),
                    Err(error) => vec![SettingsConflict::new(error.keys(), error.to_string())],
                }
            });
        descriptor.policy = Some(FailurePolicy::Ignore);
        for setting in settings {
            descriptor = descriptor.setting(setting);
        }
        descriptor
    }
}
