//! A record of every tick, for tests.

use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

use super::Tick;

/// Every tick the timers of a host started, when registered with
/// [`HostBuilder::add_instance`](crate::host::HostBuilder::add_instance); [`TestHost`](crate::testing::TestHost) does.
#[derive(Debug, Default)]
pub struct TickLog {
    records: Mutex<Vec<TickRecord>>,
}

/// One tick, as a [`TickLog`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TickRecord {
    /// The service's name.
    pub service: String,
    /// The tick, as its function received it.
    pub tick: Tick,
    /// When it ended; `None` while it runs.
    pub finished: Option<Instant>,
    /// Whether it succeeded; `None` while it runs.
    pub succeeded: Option<bool>,
}

impl TickLog {
    /// Every tick recorded so far, in the order they started.
    #[must_use]
    pub fn records(&self) -> Vec<TickRecord> {
        self.lock().clone()
    }

    /// The ticks of the service named `service`, in the order they started.
    #[must_use]
    pub fn of(&self, service: &str) -> Vec<TickRecord> {
        self.lock()
            .iter()
            .filter(|record| record.service == service)
            .cloned()
            .collect()
    }

    pub(crate) fn started(&self, service: &str, tick: Tick) -> usize {
        let mut records = self.lock();
        records.push(TickRecord {
            service: service.to_owned(),
            tick,
            finished: None,
            succeeded: None,
        });
        records.len() - 1
    }

    pub(crate) fn finished(&self, entry: usize, at: Instant, succeeded: bool) {
        if let Some(record) = self.lock().get_mut(entry) {
            record.finished = Some(at);
            record.succeeded = Some(succeeded);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TickRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
