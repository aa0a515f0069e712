//! One connection's outbox: a bounded buffer that a sender never waits on, with a declared
//! overflow policy.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{HubCounters, Overflow};

/// Why a connection's outbox closed: the close frame its writer sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

/// What the writer of a connection gets next.
pub(crate) enum Next {
    Message(Utf8Bytes),
    Close(Close),
}

struct State {
    queue: VecDeque<Utf8Bytes>,
    closed: Option<Close>,
}

/// The messages waiting for one connection's writer. `push` never waits: when the buffer is
/// full, the overflow policy decides (drop the oldest waiting message, or disconnect).
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
    overflow: Overflow,
    queued: AtomicU64,
    dropped: AtomicU64,
    /// Fires when the overflow policy disconnects the connection: its writer may be stuck on a
    /// client that does not read, so the connection is dropped rather than waited for.
    pub(crate) overflowed: CancellationToken,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(16)),
                closed: None,
            }),
            ready: Notify::new(),
            capacity,
            overflow,
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            overflowed: CancellationToken::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a message for the writer, applying the overflow policy when the buffer is full.
    pub(crate) fn push(&self, message: Utf8Bytes, counters: &HubCounters) {
        let mut state = self.lock();
        if state.closed.is_some() {
            return;
        }
        if state.queue.len() >= self.capacity {
            match self.overflow {
                Overflow::DropOldest => {
                    state.queue.pop_front();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Overflow::Disconnect { code } => {
                    state.queue.clear();
                    state.closed = Some(Close {
                        code,
                        reason: "too slow: the outbox overflowed",
                    });
                    counters.disconnected.fetch_add(1, Ordering::Relaxed);
                    drop(state);
                    self.overflowed.cancel();
                    self.ready.notify_one();
                    return;
                }
            }
        }
        state.queue.push_back(message);
        self.queued.fetch_add(1, Ordering::Relaxed);
        counters.queued.fetch_add(1, Ordering::Relaxed);
        drop(state);
        self.ready.notify_one();
    }

    /// Closes the outbox: the writer sends what is queued, then the close frame. A second close
    /// keeps the first reason.
    pub(crate) fn close(&self, close: Close) {
        let mut state = self.lock();
        if state.closed.is_none() {
            state.closed = Some(close);
        }
        drop(state);
        self.ready.notify_one();
    }

    /// The next thing to write: waits while the buffer is empty and open. An overflow
    /// disconnect skips what is queued.
    pub(crate) async fn next(&self) -> Next {
        loop {
            let ready = self.ready.notified();
            {
                let mut state = self.lock();
                if let Some(message) = state.queue.pop_front() {
                    return Next::Message(message);
                }
                if let Some(close) = &state.closed {
                    return Next::Close(close.clone());
                }
            }
            ready.await;
        }
    }

    pub(crate) fn stats(&self) -> (u64, u64, usize) {
        let waiting = self.lock().queue.len();
        (
            self.queued.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            waiting,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Utf8Bytes {
        Utf8Bytes::from(n.to_string())
    }

    #[tokio::test]
    async fn a_full_outbox_drops_the_oldest_message() {
        let counters = HubCounters::default();
        let outbox = Outbox::new(2, Overflow::DropOldest);
        for n in 0..5 {
            outbox.push(text(n), &counters);
        }
        let (queued, dropped, waiting) = outbox.stats();
        assert_eq!((queued, dropped, waiting), (5, 3, 2));
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3);
        let Next::Message(first) = outbox.next().await else {
            panic!("a message")
        };
        assert_eq!(first.as_str(), "3");
    }

    #[tokio::test]
    async fn a_full_outbox_may_disconnect_instead() {
        let counters = HubCounters::default();
        let outbox = Outbox::new(1, Overflow::Disconnect { code: 1008 });
        outbox.push(text(0), &counters);
        outbox.push(text(1), &counters);
        outbox.push(text(2), &counters);
        let Next::Close(close) = outbox.next().await else {
            panic!("a close")
        };
        assert_eq!(close.code, 1008);
        assert_eq!(counters.disconnected.load(Ordering::Relaxed), 1);
    }
}
