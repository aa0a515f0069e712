//! What a service shows while it runs: whether it is running, whether it declared itself stuck,
//! its work in flight and its next due run. A host lifetime (systemd's status line and
//! watchdog) reads it; the service, its timer or its queue writes it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tokio::time::Instant;

/// A running service's live facts, reached through
/// [`ServiceInfo::activity`](super::ServiceInfo::activity). Cheap to read from any thread.
///
/// A service that knows it can no longer make progress (a connection wedged, a loop that stopped
/// turning) says so with [`declare_stuck`](Self::declare_stuck): the systemd integration then
/// stops its watchdog pings, so systemd restarts the unit, and the reason is in the log.
///
/// ```
/// # fn demo(info: hosted::service::ServiceInfo) {
/// info.activity().declare_stuck("the feed has sent nothing for 10 minutes");
/// assert!(info.activity().stuck().is_some());
/// info.activity().declare_alive(); // it recovered
/// # }
/// ```
pub struct Activity {
    running: AtomicBool,
    /// The next due time as nanoseconds from `epoch` (before it, negative); [`NO_DUE`] for none.
    /// An atomic, not a lock: a timer writes it on every tick.
    next_due: AtomicI64,
    epoch: Instant,
    /// What few services ever have, boxed when the first of it is set: a service that never
    /// declares itself stuck and counts no work in flight pays a pointer, not 56 bytes.
    rare: OnceLock<Box<Rare>>,
}

#[derive(Default)]
struct Rare {
    stuck: Mutex<Option<String>>,
    in_flight: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>,
}

/// In [`Activity::next_due`]: nothing due.
const NO_DUE: i64 = i64::MIN;

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            running: AtomicBool::new(false),
            next_due: AtomicI64::new(NO_DUE),
            epoch: Instant::now(),
            rare: OnceLock::new(),
        }
    }

    /// Declares the service stuck, with why: it no longer makes progress although it has not
    /// failed. Stays declared until [`declare_alive`](Self::declare_alive).
    pub fn declare_stuck(&self, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::warn!(reason = %reason, "declared stuck");
        *self
            .rare
            .get_or_init(Box::default)
            .stuck
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// Withdraws [`declare_stuck`](Self::declare_stuck): the service makes progress again.
    pub fn declare_alive(&self) {
        let Some(rare) = self.rare.get() else {
            return;
        };
        let was = rare
            .stuck
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if was.is_some() {
            tracing::info!("no longer stuck");
        }
    }

    /// Why the service declared itself stuck, if it did.
    #[must_use]
    pub fn stuck(&self) -> Option<String> {
        self.rare
            .get()?
            .stuck
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the service has started and not yet stopped.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// For a timed service, when its next tick is due (on tokio's clock); `None` for other
    /// services, before the first tick is planned and once no tick will ever be.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        let nanos = self.next_due.load(Ordering::Relaxed);
        if nanos == NO_DUE {
            return None;
        }
        let offset = std::time::Duration::from_nanos(nanos.unsigned_abs());
        Some(if nanos >= 0 {
            self.epoch + offset
        } else {
            self.epoch - offset
        })
    }

    /// For a queued service, how many items its workers are handling now; `None` for other
    /// services.
    #[must_use]
    pub fn in_flight(&self) -> Option<u64> {
        self.rare.get()?.in_flight.get().map(|count| count())
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    /// Where `instant` falls from this activity's epoch, in the nanoseconds
    /// [`set_next_due`](Self::set_next_due) takes: a timer converts its own start once and
    /// then adds its due times to it, without an `Instant` subtraction per tick.
    pub(crate) fn since_epoch(&self, instant: Instant) -> i64 {
        // Nanoseconds in an `i64`: 292 years either side of the service's creation.
        let nanos = |duration: std::time::Duration| {
            i64::try_from(duration.as_secs())
                .ok()
                .and_then(|secs| secs.checked_mul(1_000_000_000))
                .and_then(|nanos| nanos.checked_add(i64::from(duration.subsec_nanos())))
                .unwrap_or(i64::MAX)
        };
        if instant >= self.epoch {
            nanos(instant - self.epoch)
        } else {
            -nanos(self.epoch - instant)
        }
    }

    /// Records when the next tick is due, as nanoseconds from the epoch
    /// ([`since_epoch`](Self::since_epoch)); `None` when none will be.
    pub(crate) fn set_next_due(&self, due: Option<i64>) {
        // `NO_DUE` is `i64::MIN`, below anything `since_epoch` returns.
        let value = due.map_or(NO_DUE, |due| due.max(NO_DUE + 1));
        self.next_due.store(value, Ordering::Relaxed);
    }

    /// Where [`in_flight`](Self::in_flight) reads its count; the first source set stays.
    pub(crate) fn count_in_flight_with(&self, count: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self
            .rare
            .get_or_init(Box::default)
            .in_flight
            .set(Box::new(count));
    }
}

impl fmt::Debug for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Activity")
            .field("running", &self.is_running())
            .field("stuck", &self.stuck())
            .field("next_due", &self.next_due())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
