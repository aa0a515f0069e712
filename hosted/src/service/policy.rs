//! What the host does when a running service fails: [`FailurePolicy`] and its restart backoff.

use std::fmt;
use std::time::Duration;

use crate::service::{Setting, SettingKind, SettingValue, Settings};

/// What the host does when a service's body returns an error or panics while the host is
/// running. Set per service with the `on_failure` argument, or for every service with
/// [`HostBuilder::default_failure_policy`](crate::host::HostBuilder::default_failure_policy).
///
/// A failure while the host is already stopping is logged and makes the exit code non-zero
/// whatever the policy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Log the failure and stop the host; the exit code is non-zero. The default, as in .NET 6+.
    #[default]
    StopHost,
    /// Log the failure; the service stays stopped and the host keeps running.
    Ignore,
    /// Log the failure and run the body again after a backoff; once the attempts are used up,
    /// stop the host (non-zero exit).
    Restart(RestartPolicy),
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StopHost => f.write_str("stop"),
            Self::Ignore => f.write_str("ignore"),
            Self::Restart(restart) => write!(f, "restart({restart})"),
        }
    }
}

/// How a [`FailurePolicy::Restart`] service is restarted: exponential backoff with jitter and a
/// bounded number of consecutive attempts.
///
/// After failure *n* (counting from 1) the host waits a delay drawn uniformly from
/// `[d / 2, d]` where `d = min(backoff × 2^(n-1), max_backoff)`; the jitter keeps many failing
/// services from retrying in lockstep. A run that lasted at least `max_backoff` counts as a
/// recovery: the count of consecutive failures starts again from zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    max_restarts: u32,
    backoff: Duration,
    max_backoff: Duration,
}

impl RestartPolicy {
    /// The defaults: at most 5 consecutive restarts, backoff 1 s doubling up to 30 s.
    pub const DEFAULT: Self = Self {
        max_restarts: 5,
        backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(30),
    };

    /// The default policy; adjust it with the `with_*` methods.
    #[must_use]
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// The number of consecutive restarts before the host gives up and stops.
    #[must_use]
    pub const fn with_max_restarts(mut self, max_restarts: u32) -> Self {
        self.max_restarts = max_restarts;
        self
    }

    /// The delay before the first restart; it doubles after each further failure.
    #[must_use]
    pub const fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The upper bound of the delay.
    #[must_use]
    pub const fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// The number of consecutive restarts allowed.
    #[must_use]
    pub const fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The delay before the first restart.
    #[must_use]
    pub const fn backoff(&self) -> Duration {
        self.backoff
    }

    /// The upper bound of the delay.
    #[must_use]
    pub const fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The ceiling of the delay after consecutive failure `failure` (1-based), before jitter.
    #[must_use]
    pub fn delay_ceiling(&self, failure: u32) -> Duration {
        let doublings = failure.saturating_sub(1).min(31);
        self.backoff
            .saturating_mul(1_u32 << doublings)
            .min(self.max_backoff)
    }

    /// The delay to wait after consecutive failure `failure` (1-based): jittered within
    /// `[ceiling / 2, ceiling]`.
    pub(crate) fn jittered_delay(&self, failure: u32) -> Duration {
        let ceiling = self.delay_ceiling(failure);
        let half = ceiling / 2;
        let span = u64::try_from(ceiling.saturating_sub(half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=span))
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max {}, backoff {:?}..{:?}",
            self.max_restarts, self.backoff, self.max_backoff
        )
    }
}

const POLICY_CHOICES: &[&str] = &["stop", "ignore", "restart"];

/// The failure policy as overridable settings, the policy given as defaults.
pub(crate) fn declare_policy(settings: &mut Settings, policy: &FailurePolicy) {
    let (word, restart) = match policy {
        FailurePolicy::StopHost => ("stop", RestartPolicy::DEFAULT),
        FailurePolicy::Ignore => ("ignore", RestartPolicy::DEFAULT),
        FailurePolicy::Restart(restart) => ("restart", restart.clone()),
    };
    settings.declare(Setting::new(
        "on_failure",
        SettingKind::Choice(POLICY_CHOICES),
        SettingValue::Text(word.to_owned()),
    ));
    settings.declare(Setting::new(
        "max_restarts",
        SettingKind::Integer {
            min: 0,
            max: i64::from(u32::MAX),
        },
        SettingValue::Integer(i64::from(restart.max_restarts)),
    ));
    settings.declare(Setting::new(
        "backoff",
        SettingKind::Duration {
            min: Duration::ZERO,
        },
        SettingValue::Duration(restart.backoff),
    ));
    settings.declare(Setting::new(
        "max_backoff",
        SettingKind::Duration {
            min: Duration::from_nanos(1),
        },
        SettingValue::Duration(restart.max_backoff),
    ));
}

/// The failure policy the settings describe.
///
/// # Errors
/// When `backoff` is longer than `max_backoff`.
pub(crate) fn policy_from(settings: &Settings) -> Result<FailurePolicy, String> {
    let restart = RestartPolicy::new()
        .with_max_restarts(
            settings
                .integer("max_restarts")
                .and_then(|number| u32::try_from(number).ok())
                .unwrap_or(RestartPolicy::DEFAULT.max_restarts),
        )
        .with_backoff(
            settings
                .duration("backoff")
                .unwrap_or(RestartPolicy::DEFAULT.backoff),
        )
        .with_max_backoff(
            settings
                .duration("max_backoff")
                .unwrap_or(RestartPolicy::DEFAULT.max_backoff),
        );
    if restart.backoff > restart.max_backoff {
        return Err(format!(
            "`backoff` ({}) is longer than `max_backoff` ({})",
            crate::service::format_duration(restart.backoff),
            crate::service::format_duration(restart.max_backoff)
        ));
    }
    Ok(match settings.text("on_failure") {
        Some("ignore") => FailurePolicy::Ignore,
        Some("restart") => FailurePolicy::Restart(restart),
        _ => FailurePolicy::StopHost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_settings() {
        for policy in [
            FailurePolicy::StopHost,
            FailurePolicy::Ignore,
            FailurePolicy::Restart(
                RestartPolicy::new()
                    .with_max_restarts(2)
                    .with_backoff(Duration::from_millis(10)),
            ),
        ] {
            let mut settings = Settings::default();
            declare_policy(&mut settings, &policy);
            assert_eq!(policy_from(&settings), Ok(policy));
        }
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let policy = RestartPolicy::new()
            .with_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(1));
        let ceilings: Vec<_> = (1..=6).map(|n| policy.delay_ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
        assert_eq!(policy.delay_ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn the_jitter_stays_within_half_and_whole_ceiling() {
        let policy = RestartPolicy::new();
        for failure in 1..=8 {
            let ceiling = policy.delay_ceiling(failure);
            for _ in 0..200 {
                let delay = policy.jittered_delay(failure);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "{delay:?} vs {ceiling:?}"
                );
            }
        }
    }

    #[test]
    fn the_jitter_spreads_delays() {
        let policy = RestartPolicy::new();
        let delays: std::collections::HashSet<_> =
            (0..50).map(|_| policy.jittered_delay(3)).collect();
        assert!(
            delays.len() > 10,
            "jitter produced {} distinct delays",
            delays.len()
        );
    }
}
