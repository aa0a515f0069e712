//! [`QueueOptions`]: every runtime parameter of a queue, named like the `#[queued]` arguments.

use std::fmt;
use std::time::Duration;

use crate::service::format_duration;
use crate::service::{Origin, Setting, SettingKind, SettingValue, Settings, SettingsConflict};

/// The words of `full_mode`, in [`FullMode`]'s order.
const FULL_MODES: &[&str] = &[
    "wait",
    "reject",
    "drop_oldest",
    "drop_newest",
    "drop_incoming",
];

/// What a send does when the queue is full.
///
/// The drop modes never make a sender wait and never hand an item back for fullness; every item
/// they drop is counted in [`QueueStats::dropped`](crate::queue::QueueStats::dropped) and logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FullMode {
    /// [`Queue::send`](crate::Queue::send) waits until a slot frees up: backpressure. The
    /// default, as in the seed's `BoundedChannelFullMode.Wait`.
    #[default]
    Wait,
    /// [`Queue::send`](crate::Queue::send) returns at once with
    /// [`SendError::Full`](crate::queue::SendError::Full), handing the item back.
    Reject,
    /// The oldest queued item is dropped to make room (.NET's `DropOldest`).
    DropOldest,
    /// The most recently queued item is dropped to make room for the one being sent (.NET's
    /// `DropNewest`).
    DropNewest,
    /// The item being sent is dropped; the queue is left as it is (.NET's `DropWrite`).
    DropIncoming,
}

impl FullMode {
    /// The word the `full_mode` argument uses for this mode.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Wait => "wait",
            Self::Reject => "reject",
            Self::DropOldest => "drop_oldest",
            Self::DropNewest => "drop_newest",
            Self::DropIncoming => "drop_incoming",
        }
    }

    /// The mode a `full_mode` word names.
    #[must_use]
    pub fn from_word(word: &str) -> Option<Self> {
        [
            Self::Wait,
            Self::Reject,
            Self::DropOldest,
            Self::DropNewest,
            Self::DropIncoming,
        ]
        .into_iter()
        .find(|mode| mode.as_str() == word)
    }

    /// Whether full sends drop an item rather than wait or hand it back.
    #[must_use]
    pub const fn drops(self) -> bool {
        matches!(
            self,
            Self::DropOldest | Self::DropNewest | Self::DropIncoming
        )
    }
}

impl fmt::Display for FullMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every runtime parameter of a queue, one field per `#[queued]` argument of the same name, so
/// configuration can override any of them.
///
/// Built with `const` methods, as the generated code does:
///
/// ```
/// use std::time::Duration;
/// use hosted::queue::{FullMode, QueueOptions};
///
/// const OPTIONS: QueueOptions = QueueOptions::new(100)
///     .with_full_mode(FullMode::Wait)
///     .with_workers(4)
///     .with_retries(3)
///     .with_retry_backoff(Duration::from_secs(1))
///     .with_timeout(Duration::from_secs(30));
/// assert_eq!(OPTIONS.capacity(), 100);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    capacity: usize,
    full_mode: FullMode,
    workers: usize,
    retries: u32,
    retry_backoff: Duration,
    retry_max_backoff: Duration,
    timeout: Option<Duration>,
}

impl QueueOptions {
    /// The default delay before the first retry: 1 second, as the seed's e-mail sender waits.
    pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
    /// The default ceiling of the retry delay: 30 seconds.
    pub const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(30);

    /// A queue of `capacity` items, waiting when full, with one worker, no retries and no
    /// per-item timeout. A capacity of 0 is reported when the host is built, with the service
    /// named (the attribute rejects it at compile time).
    #[must_use]
    pub const fn new(capacity: usize) -> Self {
        Self {
            capacity,
            full_mode: FullMode::Wait,
            workers: 1,
            retries: 0,
            retry_backoff: Self::DEFAULT_RETRY_BACKOFF,
            retry_max_backoff: Self::DEFAULT_RETRY_MAX_BACKOFF,
            timeout: None,
        }
    }

    /// Sets how many items the queue holds, not counting those being handled; at least 1,
    /// checked when the host is built.
    #[must_use]
    pub const fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets what a send does when the queue is full.
    #[must_use]
    pub const fn with_full_mode(mut self, full_mode: FullMode) -> Self {
        self.full_mode = full_mode;
        self
    }

    /// Sets how many items are handled at once. With 1, items are handled one by one in the
    /// order they were accepted. At least 1, checked when the host is built.
    #[must_use]
    pub const fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets how many times a failed item is tried again before it goes to the dead letter.
    #[must_use]
    pub const fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the delay before the first retry; it doubles after each further failure, with jitter.
    #[must_use]
    pub const fn with_retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Sets the ceiling of the retry delay.
    #[must_use]
    pub const fn with_retry_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.retry_max_backoff = max_backoff;
        self
    }

    /// Sets how long one attempt at an item may take; an attempt still running then fails.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many items the queue holds.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// What a send does when the queue is full.
    #[must_use]
    pub const fn full_mode(&self) -> FullMode {
        self.full_mode
    }

    /// How many items are handled at once.
    #[must_use]
    pub const fn workers(&self) -> usize {
        self.workers
    }

    /// How many times a failed item is tried again.
    #[must_use]
    pub const fn retries(&self) -> u32 {
        self.retries
    }

    /// The delay before the first retry.
    #[must_use]
    pub const fn retry_backoff(&self) -> Duration {
        self.retry_backoff
    }

    /// The ceiling of the retry delay.
    #[must_use]
    pub const fn retry_max_backoff(&self) -> Duration {
        self.retry_max_backoff
    }

    /// How long one attempt may take, if limited.
    #[must_use]
    pub const fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The settings configuration may override under the queue's section, one per field, named
    /// like the attribute's arguments, with these options as defaults. In configuration,
    /// `timeout = "0s"` means no limit.
    pub(crate) fn settings(&self) -> Vec<Setting> {
        let count = |value: usize| SettingValue::Integer(i64::try_from(value).unwrap_or(i64::MAX));
        let any_duration = SettingKind::Duration {
            min: Duration::ZERO,
        };
        vec![
            Setting::new(
                "capacity",
                SettingKind::Integer {
                    min: 1,
                    max: i64::MAX,
                },
                count(self.capacity),
            ),
            Setting::new(
                "full_mode",
                SettingKind::Choice(FULL_MODES),
                SettingValue::Text(self.full_mode.as_str().to_owned()),
            ),
            Setting::new(
                "workers",
                SettingKind::Integer {
                    min: 1,
                    max: i64::MAX,
                },
                count(self.workers),
            ),
            Setting::new(
                "retries",
                SettingKind::Integer {
                    min: 0,
                    max: i64::from(u32::MAX),
                },
                SettingValue::Integer(i64::from(self.retries)),
            ),
            Setting::new(
                "retry_backoff",
                any_duration,
                SettingValue::Duration(self.retry_backoff),
            ),
            Setting::new(
                "retry_max_backoff",
                any_duration,
                SettingValue::Duration(self.retry_max_backoff),
            ),
            Setting::new(
                "timeout",
                any_duration,
                SettingValue::Duration(self.timeout.unwrap_or(Duration::ZERO)),
            ),
        ]
    }

    /// These options with the effective values of [`settings`](Self::settings): configuration
    /// applied. Values the settings' kinds reject never get here.
    #[must_use]
    pub(crate) fn configured(mut self, settings: &Settings) -> Self {
        let count = |key: &str| {
            settings
                .integer(key)
                .and_then(|value| usize::try_from(value).ok())
                .filter(|value| *value > 0)
        };
        if let Some(capacity) = count("capacity") {
            self.capacity = capacity;
        }
        if let Some(workers) = count("workers") {
            self.workers = workers;
        }
        if let Some(mode) = settings.text("full_mode").and_then(FullMode::from_word) {
            self.full_mode = mode;
        }
        if let Some(retries) = settings
            .integer("retries")
            .and_then(|value| u32::try_from(value).ok())
        {
            self.retries = retries;
        }
        if let Some(backoff) = settings.duration("retry_backoff") {
            self.retry_backoff = backoff;
        }
        if let Some(max_backoff) = settings.duration("retry_max_backoff") {
            self.retry_max_backoff = max_backoff;
        }
        if let Some(timeout) = settings.duration("timeout") {
            self.timeout = (!timeout.is_zero()).then_some(timeout);
        }
        self
    }

    /// The combinations of these (effective) options the queue refuses, as the `#[queued]`
    /// attribute refuses them at compile time: a backoff longer than its ceiling, a zero
    /// ceiling, and backoff keys configured for a queue that never retries.
    pub(crate) fn conflicts(&self, settings: &Settings) -> Vec<SettingsConflict> {
        let mut found = Vec::new();
        let configured = |key: &str| {
            settings
                .get(key)
                .is_some_and(|setting| !matches!(setting.origin(), Origin::Default))
        };
        if self.retries == 0 {
            for key in ["retry_backoff", "retry_max_backoff"] {
                if configured(key) {
                    found.push(SettingsConflict::new(
                        [key, "retries"],
                        format!("`{key}` applies only to retried items; set `retries` too"),
                    ));
                }
            }
            return found;
        }
        if self.retry_max_backoff.is_zero() {
            found.push(SettingsConflict::new(
                ["retry_max_backoff", "retries"],
                "`retry_max_backoff` must be greater than zero when items are retried",
            ));
        } else if self.retry_backoff > self.retry_max_backoff {
            found.push(SettingsConflict::new(
                ["retry_backoff", "retry_max_backoff"],
                format!(
                    "`retry_backoff` ({}) is longer than `retry_max_backoff` ({}); lower it or \
                     raise `retry_max_backoff`",
                    format_duration(self.retry_backoff),
                    format_duration(self.retry_max_backoff),
                ),
            ));
        }
        found
    }

    /// The delay before retry `retry` (1-based): `retry_backoff × 2^(retry-1)`, at most
    /// `retry_max_backoff`, drawn uniformly from its upper half so failing items spread out.
    pub(crate) fn retry_delay(&self, retry: u32) -> Duration {
        crate::service::RestartPolicy::new()
            .with_backoff(self.retry_backoff)
            .with_max_backoff(self.retry_max_backoff.max(self.retry_backoff))
            .jittered_delay(retry)
    }
}
