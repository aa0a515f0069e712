//! [`TimerOptions`]: every runtime parameter of a timed service, with the checks the `#[timed]`
//! attribute makes at compile time, made again at run time for options built by hand (or, later,
//! overridden from configuration).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::service::{Origin, Setting, SettingKind, SettingValue, Settings};
use crate::timer::schedule::CronSchedule;

/// What happens to a tick that comes due while the previous one is still running.
///
/// Applies to `every` and `cron` schedules; a fixed `delay` never overlaps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overlap {
    /// The tick is dropped; the timer waits for the next tick due after the running one ends.
    Skip,
    /// The tick waits; when the running one ends, one tick runs at once for every tick that came
    /// due meanwhile ([`Tick::missed`](crate::Tick::missed) says how many it stands for). The
    /// default, like .NET's `PeriodicTimer`.
    #[default]
    Coalesce,
    /// The tick starts on its own task beside the running ones, up to `max_concurrent` at once
    /// (like .NET's `System.Threading.Timer`, but bounded); past the limit, ticks coalesce until
    /// a run ends.
    Concurrent,
}

/// What a fixed-rate (`every`) timer does when it wakes up late by more than a period (the
/// process was suspended, or the runtime was too busy to wake it), so several ticks are due at
/// once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Missed {
    /// Run every missed tick, one after the other, until the timer has caught up.
    Burst,
    /// Run one tick now for all of them and move the schedule: the next tick is due a period
    /// after this one.
    Delay,
    /// Run one tick now for all of them and keep the schedule: the next tick is due at its
    /// original time. The default.
    #[default]
    Skip,
}

/// The limit on ticks running at once under [`Overlap::Concurrent`] when none is given.
pub const DEFAULT_MAX_CONCURRENT: u32 = 4;

/// Every runtime parameter of a timed service; field names are the `#[timed]` argument names.
///
/// The attribute builds one with a `const` expression; by hand, start from a schedule
/// ([`every`](Self::every), [`delay`](Self::delay) or [`cron`](Self::cron)) and adjust it with the
/// `with_*` methods, or set the public fields. [`ServiceDescriptor::timed`](crate::registry::ServiceDescriptor::timed)
/// checks the options when the host starts the service; [`check`](Self::check) does it earlier.
///
/// ```
/// use std::time::Duration;
/// use hosted::timer::{Overlap, TimerOptions};
///
/// const OPTIONS: TimerOptions = TimerOptions::every(Duration::from_secs(5))
///     .with_initial_delay(Duration::from_secs(1))
///     .with_overlap(Overlap::Skip);
/// assert!(OPTIONS.check().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimerOptions {
    /// Fixed rate: tick *n* is due at `start + initial_delay + (n - 1) × every`.
    pub every: Option<Duration>,
    /// Fixed delay: each tick is due `delay` after the previous one ended.
    pub delay: Option<Duration>,
    /// A cron expression with a seconds field (see [`CronSchedule`]).
    pub cron: Option<Cow<'static, str>>,
    /// The IANA time zone a `cron` schedule is read in (feature `time-zones`); UTC when `None`.
    pub time_zone: Option<Cow<'static, str>>,
    /// How long after the timer starts the first tick may come due. Default zero.
    pub initial_delay: Duration,
    /// The upper bound of a random delay added to each tick's start. Default none.
    pub jitter: Option<Duration>,
    /// What a tick due while the previous one runs does; `None` for the default,
    /// [`Overlap::Coalesce`].
    pub overlap: Option<Overlap>,
    /// How many ticks may run at once under [`Overlap::Concurrent`]; `None` for
    /// [`DEFAULT_MAX_CONCURRENT`].
    pub max_concurrent: Option<u32>,
    /// What a late fixed-rate timer does; `None` for the default, [`Missed::Skip`].
    pub missed: Option<Missed>,
}

impl TimerOptions {
    /// The names of the fields, which are the names of the attribute's timer arguments.
    pub const KEYS: &'static [&'static str] = &[
        "every",
        "delay",
        "cron",
        "time_zone",
        "initial_delay",
        "jitter",
        "overlap",
        "max_concurrent",
        "missed",
    ];

    const NONE: Self = Self {
        every: None,
        delay: None,
        cron: None,
        time_zone: None,
        initial_delay: Duration::ZERO,
        jitter: None,
        overlap: None,
        max_concurrent: None,
        missed: None,
    };

    /// A fixed-rate schedule: a tick every `period`, drift-free.
    #[must_use]
    pub const fn every(period: Duration) -> Self {
        Self {
            every: Some(period),
            ..Self::NONE
        }
    }

    /// A fixed-delay schedule: each tick `delay` after the previous one ended.
    #[must_use]
    pub const fn delay(delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..Self::NONE
        }
    }

    /// A cron schedule, in UTC unless [`with_time_zone`](Self::with_time_zone) says otherwise.
    #[must_use]
    pub const fn cron(expression: &'static str) -> Self {
        Self {
            cron: Some(Cow::Borrowed(expression)),
            ..Self::NONE
        }
    }

    /// Reads the cron schedule in this IANA time zone (`"Europe/Paris"`); needs the
    /// `time-zones` feature.
    #[must_use]
    pub const fn with_time_zone(mut self, time_zone: &'static str) -> Self {
        let previous = self.time_zone.replace(Cow::Borrowed(time_zone));
        // A `const fn` cannot run the destructor of the value it replaces; built from the
        // attribute it is always `None`, so forgetting it leaks nothing.
        std::mem::forget(previous);
        self
    }

    /// Delays the first tick.
    #[must_use]
    pub const fn with_initial_delay(mut self, initial_delay: Duration) -> Self {
        self.initial_delay = initial_delay;
        self
    }

    /// Adds a random delay of up to `jitter` to each tick's start.
    #[must_use]
    pub const fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Sets the overlap policy.
    #[must_use]
    pub const fn with_overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = Some(overlap);
        self
    }

    /// Sets the limit of ticks running at once under [`Overlap::Concurrent`].
    #[must_use]
    pub const fn with_max_concurrent(mut self, max_concurrent: u32) -> Self {
        self.max_concurrent = Some(max_concurrent);
        self
    }

    /// Sets the missed-tick policy of a fixed-rate timer.
    #[must_use]
    pub const fn with_missed(mut self, missed: Missed) -> Self {
        self.missed = Some(missed);
        self
    }

    /// The settings configuration may override under the timer's section, named like the
    /// attribute's arguments, with these options as defaults: the schedule's own key (`every`,
    /// `delay` or `cron`, plus `time_zone` for cron), `initial_delay`, `jitter` (`"0s"` for none),
    /// and the policies the schedule has (`overlap` and `max_concurrent` for `every` and `cron`,
    /// `missed` for `every`).
    pub(crate) fn settings(&self) -> Vec<Setting> {
        let positive = SettingKind::Duration {
            min: Duration::from_nanos(1),
        };
        let any = SettingKind::Duration {
            min: Duration::ZERO,
        };
        let mut settings = Vec::new();
        if let Some(every) = self.every {
            settings.push(Setting::new(
                "every",
                positive,
                SettingValue::Duration(every),
            ));
        }
        if let Some(delay) = self.delay {
            settings.push(Setting::new(
                "delay",
                positive,
                SettingValue::Duration(delay),
            ));
        }
        if let Some(cron) = &self.cron {
            settings.push(Setting::new(
                "cron",
                SettingKind::Text {
                    check: Some(check_cron),
                },
                SettingValue::Text(cron.to_string()),
            ));
            settings.push(Setting::new(
                "time_zone",
                SettingKind::Text {
                    check: Some(check_time_zone),
                },
                SettingValue::Text(self.time_zone.as_deref().unwrap_or("UTC").to_owned()),
            ));
        }
        settings.push(Setting::new(
            "initial_delay",
            any,
            SettingValue::Duration(self.initial_delay),
        ));
        settings.push(Setting::new(
            "jitter",
            any,
            SettingValue::Duration(self.jitter.unwrap_or_default()),
        ));
        if self.delay.is_none() {
            settings.push(Setting::new(
                "overlap",
                SettingKind::Choice(OVERLAP_WORDS),
                SettingValue::Text(self.overlap.unwrap_or_default().as_str().to_owned()),
            ));
            settings.push(Setting::new(
                "max_concurrent",
                SettingKind::Integer {
                    min: 1,
                    max: i64::from(u32::MAX),
                },
                SettingValue::Integer(i64::from(
                    self.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT),
                )),
            ));
        }
        if self.every.is_some() {
            settings.push(Setting::new(
                "missed",
                SettingKind::Choice(MISSED_WORDS),
                SettingValue::Text(self.missed.unwrap_or_default().as_str().to_owned()),
            ));
        }
        settings
    }

    /// These options with the effective values of [`settings`](Self::settings). A value equal
    /// to its default changes nothing, so an untouched `max_concurrent` does not conflict with a
    /// schedule that does not run concurrently; the result is checked by [`plan`](Self::plan).
    #[must_use]
    pub(crate) fn configured(&self, settings: &Settings) -> Self {
        let mut options = self.clone();
        if self.every.is_some() {
            options.every = settings.duration("every").or(self.every);
        }
        if self.delay.is_some() {
            options.delay = settings.duration("delay").or(self.delay);
        }
        if let Some(cron) = settings.text("cron").filter(|_| self.cron.is_some()) {
            options.cron = Some(Cow::Owned(cron.to_owned()));
        }
        if let Some(zone) = settings.text("time_zone").filter(|_| self.cron.is_some()) {
            options.time_zone =
                (zone != "UTC" || self.time_zone.is_some()).then(|| Cow::Owned(zone.to_owned()));
        }
        if let Some(delay) = settings.duration("initial_delay") {
            options.initial_delay = delay;
        }
        if let Some(jitter) = settings.duration("jitter") {
            options.jitter = (!jitter.is_zero()).then_some(jitter);
        }
        // A policy counts as given when it differs from the default or configuration names it,
        // so a configured value equal to the default is checked against the schedule too.
        let configured = |key: &str| {
            settings
                .get(key)
                .is_some_and(|setting| !matches!(setting.origin(), Origin::Default))
        };
        if let Some(overlap) = settings.text("overlap").and_then(|word| word.parse().ok())
            && (overlap != self.overlap.unwrap_or_default() || configured("overlap"))
        {
            options.overlap = Some(overlap);
        }
        if let Some(limit) = settings
            .integer("max_concurrent")
            .and_then(|limit| u32::try_from(limit).ok())
            && (limit != self.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT)
                || configured("max_concurrent"))
        {
            options.max_concurrent = Some(limit);
        }
        if let Some(missed) = settings.text("missed").and_then(|word| word.parse().ok())
            && (missed != self.missed.unwrap_or_default() || configured("missed"))
        {
            options.missed = Some(missed);
        }
        options
    }

    /// Checks the options as the `#[timed]` attribute does at compile time.
    ///
    /// # Errors
    /// The first problem found, saying what to write instead.
    pub fn check(&self) -> Result<(), TimerOptionsError> {
        self.plan().map(drop)
    }

    /// The checked options, as the timer runs them.
    pub(crate) fn plan(&self) -> Result<Plan, TimerOptionsError> {
        let mut given = [
            ("every", self.every.is_some()),
            ("delay", self.delay.is_some()),
            ("cron", self.cron.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(key, _)| key);
        let (Some(first), second) = (given.next(), given.next()) else {
            return Err(TimerOptionsError::NoSchedule);
        };
        if let Some(second) = second {
            return Err(TimerOptionsError::TwoSchedules { first, second });
        }
        let cadence = match (self.every, self.delay, &self.cron) {
            (Some(period), _, _) => {
                if period.is_zero() {
                    return Err(TimerOptionsError::Zero { key: "every" });
                }
                Cadence::Rate(period)
            }
            (_, Some(delay), _) => {
                if delay.is_zero() {
                    return Err(TimerOptionsError::Zero { key: "delay" });
                }
                Cadence::Delay(delay)
            }
            (_, _, Some(expression)) => {
                let mut schedule = CronSchedule::parse(expression)?;
                if let Some(zone) = &self.time_zone {
                    schedule = schedule.with_time_zone(zone)?;
                }
                Cadence::Cron(Box::new(schedule))
            }
            (None, None, None) => return Err(TimerOptionsError::NoSchedule),
        };
        if self.time_zone.is_some() && self.cron.is_none() {
            return Err(TimerOptionsError::Requires {
                key: "time_zone",
                needs: "a `cron` schedule",
            });
        }
        let jitter = match self.jitter {
            Some(jitter) if jitter.is_zero() => {
                return Err(TimerOptionsError::Zero { key: "jitter" });
            }
            Some(jitter) => jitter,
            None => Duration::ZERO,
        };
        if let Cadence::Rate(period) = &cadence
            && jitter >= *period
        {
            return Err(TimerOptionsError::JitterTooLong {
                jitter,
                period: *period,
            });
        }
        if self.overlap.is_some() && matches!(cadence, Cadence::Delay(_)) {
            return Err(TimerOptionsError::Conflict {
                key: "overlap",
                with: "delay",
                why: "a fixed delay never overlaps: the next tick is due only after the previous one ended",
            });
        }
        if self.missed.is_some() && !matches!(cadence, Cadence::Rate(_)) {
            return Err(TimerOptionsError::Requires {
                key: "missed",
                needs: "a fixed-rate `every` schedule",
            });
        }
        let overlap = self.overlap.unwrap_or_default();
        let max_concurrent = match (self.max_concurrent, overlap) {
            (Some(0), _) => {
                return Err(TimerOptionsError::Zero {
                    key: "max_concurrent",
                });
            }
            (Some(_), Overlap::Skip | Overlap::Coalesce) => {
                return Err(TimerOptionsError::Requires {
                    key: "max_concurrent",
                    needs: "`overlap = \"concurrent\"`",
                });
            }
            (Some(limit), Overlap::Concurrent) => limit,
            (None, Overlap::Concurrent) => DEFAULT_MAX_CONCURRENT,
            (None, Overlap::Skip | Overlap::Coalesce) => 1,
        };
        Ok(Plan {
            cadence,
            initial_delay: self.initial_delay,
            jitter,
            overlap,
            max_concurrent: usize::try_from(max_concurrent).unwrap_or(usize::MAX),
            missed: self.missed.unwrap_or_default(),
        })
    }
}

/// Why [`TimerOptions`] cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimerOptionsError {
    /// None of `every`, `delay`, `cron`.
    #[error(
        "a timer needs a schedule: `every = \"5s\"` (fixed rate), `delay = \"5s\"` (fixed delay) or `cron = \"0 */5 * * * *\"`"
    )]
    NoSchedule,
    /// More than one of them.
    #[error(
        "`{second}` conflicts with `{first}`: a timer has one schedule; keep one of `every`, `delay` or `cron`"
    )]
    TwoSchedules {
        /// The first schedule given.
        first: &'static str,
        /// The second.
        second: &'static str,
    },
    /// A duration or count that must be positive is zero.
    #[error("`{key}` must be greater than zero")]
    Zero {
        /// The option.
        key: &'static str,
    },
    /// `jitter` is not shorter than the fixed-rate period.
    #[error(
        "`jitter` ({jitter:?}) must be shorter than the period `every` ({period:?}), or ticks would reorder"
    )]
    JitterTooLong {
        /// The jitter.
        jitter: Duration,
        /// The period.
        period: Duration,
    },
    /// An option given where it does not apply.
    #[error("`{key}` applies only to {needs}")]
    Requires {
        /// The option.
        key: &'static str,
        /// What it applies to.
        needs: &'static str,
    },
    /// Two options that contradict each other.
    #[error("`{key}` conflicts with `{with}`: {why}")]
    Conflict {
        /// The option.
        key: &'static str,
        /// The option it conflicts with.
        with: &'static str,
        /// Why.
        why: &'static str,
    },
    /// The cron expression is not valid.
    #[error("invalid cron expression `{expression}`: {reason}")]
    Cron {
        /// The expression.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The time zone is not known, or time zones are not compiled in.
    #[error("{0}")]
    TimeZone(String),
}

impl TimerOptionsError {
    /// The options involved, the one to change first.
    #[must_use]
    pub fn keys(&self) -> Vec<&'static str> {
        match self {
            Self::NoSchedule => vec!["every", "delay", "cron"],
            Self::TwoSchedules { first, second } => vec![second, first],
            Self::Zero { key } => vec![key],
            Self::JitterTooLong { .. } => vec!["jitter", "every"],
            Self::Requires { key, .. } => match *key {
                "max_concurrent" => vec![key, "overlap"],
                "time_zone" => vec![key, "cron"],
                "missed" => vec![key, "every"],
                key => vec![key],
            },
            Self::Conflict { key, with, .. } => vec![key, with],
            Self::Cron { .. } => vec!["cron"],
            Self::TimeZone(_) => vec!["time_zone", "cron"],
        }
    }
}

const OVERLAP_WORDS: &[&str] = &["skip", "coalesce", "concurrent"];
const MISSED_WORDS: &[&str] = &["burst", "delay", "skip"];

fn check_cron(expression: &str) -> Result<(), String> {
    CronSchedule::parse(expression)
        .map(drop)
        .map_err(|error| format!("a cron expression with a seconds field ({error})"))
}

fn check_time_zone(zone: &str) -> Result<(), String> {
    CronSchedule::parse("0 0 0 * * *")
        .and_then(|schedule| schedule.with_time_zone(zone))
        .map(drop)
        .map_err(|error| error.to_string())
}

/// Checked options, as the timer runs them.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) cadence: Cadence,
    pub(crate) initial_delay: Duration,
    pub(crate) jitter: Duration,
    pub(crate) overlap: Overlap,
    /// 1 unless `overlap` is concurrent.
    pub(crate) max_concurrent: usize,
    pub(crate) missed: Missed,
}

impl Plan {
    /// The schedule in words, as the status shows it: `every 5s`, `delay 1m`, `cron "0 * * * * *"`.
    pub(crate) fn describe(&self) -> String {
        match &self.cadence {
            Cadence::Rate(period) => format!("every {}", humantime::format_duration(*period)),
            Cadence::Delay(delay) => format!("delay {}", humantime::format_duration(*delay)),
            Cadence::Cron(schedule) => format!("cron \"{schedule}\""),
        }
    }
}

/// When ticks come due.
#[derive(Clone, Debug)]
pub(crate) enum Cadence {
    Rate(Duration),
    Delay(Duration),
    Cron(Box<CronSchedule>),
}

/// The word an attribute argument uses for a policy.
macro_rules! words {
    ($type:ident { $($variant:ident => $word:literal),* $(,)? }) => {
        impl $type {
            /// The attribute's word for this policy.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)*
                }
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Reads the attribute's word, as configuration writes it.
        impl FromStr for $type {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($word => Ok(Self::$variant),)*
                    other => Err(format!(
                        "unknown value `\"{other}\"`; expected one of {}",
                        [$(concat!("`\"", $word, "\"`")),*].join(", ")
                    )),
                }
            }
        }
    };
}

words!(Overlap { Skip => "skip", Coalesce => "coalesce", Concurrent => "concurrent" });
words!(Missed { Burst => "burst", Delay => "delay", Skip => "skip" });

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(options: &TimerOptions) -> String {
        options.check().unwrap_err().to_string()
    }

    #[test]
    fn one_schedule_is_required() {
        assert!(problem(&TimerOptions::NONE).starts_with("a timer needs a schedule"));
        let mut two = TimerOptions::every(Duration::from_secs(1));
        two.cron = Some("* * * * * *".into());
        assert_eq!(
            problem(&two),
            "`cron` conflicts with `every`: a timer has one schedule; keep one of `every`, `delay` or `cron`"
        );
    }

    #[test]
    fn zero_and_conflicting_values_are_refused() {
        assert_eq!(
            problem(&TimerOptions::every(Duration::ZERO)),
            "`every` must be greater than zero"
        );
        assert_eq!(
            problem(
                &TimerOptions::every(Duration::from_secs(1)).with_jitter(Duration::from_secs(1))
            ),
            "`jitter` (1s) must be shorter than the period `every` (1s), or ticks would reorder"
        );
        assert!(
            problem(&TimerOptions::delay(Duration::from_secs(1)).with_overlap(Overlap::Skip))
                .starts_with("`overlap` conflicts with `delay`")
        );
        assert_eq!(
            problem(&TimerOptions::cron("* * * * * *").with_missed(Missed::Burst)),
            "`missed` applies only to a fixed-rate `every` schedule"
        );
        assert_eq!(
            problem(&TimerOptions::every(Duration::from_secs(1)).with_max_concurrent(2)),
            "`max_concurrent` applies only to `overlap = \"concurrent\"`"
        );
        assert_eq!(
            problem(
                &TimerOptions::every(Duration::from_secs(1))
                    .with_overlap(Overlap::Concurrent)
                    .with_max_concurrent(0)
            ),
            "`max_concurrent` must be greater than zero"
        );
        assert_eq!(
            problem(&TimerOptions::every(Duration::from_secs(1)).with_time_zone("UTC")),
            "`time_zone` applies only to a `cron` schedule"
        );
    }

    #[test]
    fn the_defaults_are_planned() {
        let plan = TimerOptions::every(Duration::from_secs(5)).plan().unwrap();
        assert_eq!(plan.overlap, Overlap::Coalesce);
        assert_eq!(plan.missed, Missed::Skip);
        assert_eq!(plan.max_concurrent, 1);
        assert_eq!(plan.jitter, Duration::ZERO);
        let concurrent = TimerOptions::every(Duration::from_secs(5))
            .with_overlap(Overlap::Concurrent)
            .plan()
            .unwrap();
        assert_eq!(concurrent.max_concurrent, 4);
    }

    #[test]
    fn policy_words_round_trip() {
        for overlap in [Overlap::Skip, Overlap::Coalesce, Overlap::Concurrent] {
            assert_eq!(overlap.as_str().parse::<Overlap>(), Ok(overlap));
        }
        assert_eq!(
            "sometimes".parse::<Missed>(),
            Err("unknown value `\"sometimes\"`; expected one of `\"burst\"`, `\"delay\"`, `\"skip\"`".to_owned())
        );
    }
}
