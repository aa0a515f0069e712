//! The stop token as a timer watches it: without a lock on every tick.
//!
//! A [`CancellationToken`]'s `cancelled()` future takes the token's mutex each time it is polled
//! (`is_cancelled` in tokio-util 0.7), and a fresh one per wait registers with its notifier and
//! leaves it again, under that notifier's lock. A timer waits for its next tick or the stop on
//! every tick, so it registers one `cancelled()` future once, with a waker of its own that raises
//! a flag and wakes the timer's task; each tick then reads the flag.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// What the token's notifier wakes: the flag, then the timer's task.
#[derive(Default)]
struct Flag {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

pub(super) struct StopSignal {
    flag: Arc<Flag>,
    waker: Waker,
    /// Registered with the token once; polled again only when the flag says it fired.
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    stopped: bool,
}

impl StopSignal {
    pub(super) fn new(token: &CancellationToken) -> Self {
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(Arc::clone(&flag));
        let mut signal = Self {
            flag,
            waker,
            cancelled: Box::pin(token.clone().cancelled_owned()),
            stopped: false,
        };
        signal.poll_token();
        signal
    }

    /// Polls the token's own future with the flag's waker: registers it, or finds the stop.
    fn poll_token(&mut self) {
        self.flag.fired.store(false, Ordering::Release);
        let mut cx = Context::from_waker(&self.waker);
        if self.cancelled.as_mut().poll(&mut cx).is_ready() {
            self.stopped = true;
        }
    }

    /// Whether the stop has fired.
    pub(super) fn is_stopped(&mut self) -> bool {
        if !self.stopped && self.flag.fired.load(Ordering::Acquire) {
            self.poll_token();
        }
        self.stopped
    }

    /// Ready once the stop fires.
    pub(super) fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.flag.task.register(cx.waker());
        if self.is_stopped() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Resolves once the stop fires.
    pub(super) fn stopped(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| self.poll_stopped(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_signal_follows_the_token() {
        let token = CancellationToken::new();
        let mut signal = StopSignal::new(&token);
        assert!(!signal.is_stopped());
        let waiting = tokio::spawn({
            let token = token.clone();
            async move {
                let mut signal = StopSignal::new(&token);
                signal.stopped().await;
                signal.is_stopped()
            }
        });
        tokio::task::yield_now().await;
        token.cancel();
        assert!(signal.is_stopped());
        assert!(waiting.await.unwrap());
        let late = StopSignal::new(&token).is_stopped();
        assert!(late, "a token cancelled already is seen at once");
    }
}
