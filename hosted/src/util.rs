//! Small helpers shared by the runtime's modules.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Nanoseconds in a `u64`, saturating (584 years), without the 128-bit arithmetic of
/// `Duration::as_nanos`: the status and the timers count in these on every run and tick.
pub(crate) fn nanos(duration: std::time::Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(duration.subsec_nanos()))
}

/// A boxed, sendable future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

thread_local! {
    /// How many of the host's own panic catches are running on this thread.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// Where the panic being caught happened, as the panic hook of `run!()` recorded it.
    static CAUGHT_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `std::panic::catch_unwind` for the host's own catches, returning the panic's message.
///
/// The host reports every panic it catches in one log line of its own, so the panic hook that
/// `run!()` installs stays quiet while a catch runs (see [`panic_is_caught`]) and hands over
/// where the panic happened instead, which this adds to the message.
pub(crate) fn catch_panic<R>(call: impl FnOnce() -> R) -> Result<R, String> {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            CATCHING.with(|depth| depth.set(depth.get().saturating_sub(1)));
        }
    }
    CATCHING.with(|depth| depth.set(depth.get() + 1));
    let leave = Leave;
    let caught = std::panic::catch_unwind(AssertUnwindSafe(call));
    drop(leave);
    caught.map_err(|payload| {
        let mut message = panic_message(payload.as_ref());
        if let Some(place) = CAUGHT_AT.with(RefCell::take) {
            message.push_str(&place);
        }
        message
    })
}

/// Whether a panic on this thread now is inside one of the host's catches, which reports it.
pub(crate) fn panic_is_caught() -> bool {
    CATCHING.with(Cell::get) > 0
}

/// Records where the panic being caught on this thread happened (` (at file:line:column)`, and
/// a backtrace when one was captured), for [`catch_panic`] to add to its message.
pub(crate) fn record_caught_panic(place: String) {
    CAUGHT_AT.with(|caught| *caught.borrow_mut() = Some(place));
}

/// A future whose panics are caught and returned as their message, like
/// [`catch_panic`] for one `poll` at a time.
pub(crate) struct CatchUnwind<'a, T> {
    inner: BoxFuture<'a, T>,
}

impl<'a, T> CatchUnwind<'a, T> {
    /// Makes `call` at the first poll, inside the catch, and runs its future: user code that
    /// panics before it returns its future is caught like code whose future panics.
    pub(crate) fn new<F>(call: impl FnOnce() -> F + Send + 'a) -> Self
    where
        F: Future<Output = T> + Send + 'a,
    {
        Self {
            inner: Box::pin(async move { call().await }),
        }
    }
}

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A future that panicked is never polled again: it is dropped with this wrapper.
        let inner = &mut self.inner;
        match catch_panic(|| inner.as_mut().poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

// The macros' definition, compiled into this crate too: both crates suggest alike.
#[path = "../../hosted-macros/src/edit_distance.rs"]
mod edit_distance;
pub(crate) use self::edit_distance::edit_distance;

/// The message a panic carried, as far as it can be told.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// An error and its chain of sources on one line: `outer: middle: inner`.
pub(crate) fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // anyhow and others sometimes repeat the cause in the outer message.
        if !line.ends_with(&cause_text) {
            let _ = write!(line, ": {cause_text}");
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_saturate() {
        use std::time::Duration;
        assert_eq!(nanos(Duration::from_nanos(7)), 7);
        assert_eq!(nanos(Duration::new(3, 5)), 3_000_000_005);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn chains_are_joined_with_colons() {
        assert_eq!(error_chain(&Outer(Inner)), "outer: inner");
    }

    #[test]
    fn anyhow_contexts_are_kept() {
        let error: Box<dyn Error + Send + Sync> =
            anyhow::anyhow!("disk full").context("saving").into();
        assert_eq!(error_chain(error.as_ref()), "saving: disk full");
    }

    #[tokio::test]
    async fn panics_in_futures_are_caught() {
        let caught = CatchUnwind::new(|| async {
            tokio::task::yield_now().await;
            panic!("late panic");
        })
        .await;
        assert_eq!(caught.unwrap_err(), "late panic");
        assert_eq!(CatchUnwind::new(|| async { 7 }).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_call_that_panics_before_its_future_is_caught() {
        let call = || -> std::future::Ready<()> { panic!("no future") };
        assert_eq!(CatchUnwind::new(call).await.unwrap_err(), "no future");
    }

    #[test]
    fn panic_payloads_are_read() {
        assert_eq!(catch_panic(|| panic!("boom {}", 1)).unwrap_err(), "boom 1");
        assert_eq!(
            catch_panic(|| std::panic::panic_any(7_u8)).unwrap_err(),
            "a panic with a non-string payload"
        );
        assert!(!panic_is_caught());
    }
}
