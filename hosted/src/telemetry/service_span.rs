//! The `service` span: what a service's building, start, stop and supervisor say is said inside
//! it. Held by every running service twice (its record in the host, its supervisor's task), so
//! it is one pointer, null when the span is disabled (no subscriber would see it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tracing::Span;

use super::NO_SPAN;

/// A service's span, shared by its record and its supervisor; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct ServiceSpan(Option<Arc<Span>>);

impl ServiceSpan {
    /// The span of the service named `service`.
    pub(crate) fn new(service: &str) -> Self {
        // Not `name`: the JSON format writes the span's own name under that key as well.
        let span = tracing::info_span!("service", service = %service);
        Self((!span.is_disabled()).then(|| Arc::new(span)))
    }

    /// The span itself; a disabled one when no subscriber would see it.
    pub(crate) fn span(&self) -> &Span {
        self.0.as_deref().unwrap_or(&NO_SPAN)
    }
}

/// Runs `future` inside the service's span: entered on every poll and while the future is
/// dropped, as `tracing`'s `Instrumented` does, but a word wide when the span is disabled.
pub(crate) fn in_service_span<F: Future>(span: ServiceSpan, future: F) -> InServiceSpan<F> {
    InServiceSpan {
        future: Some(future),
        span,
    }
}

pin_project_lite::pin_project! {
    /// [`in_service_span`]'s future.
    pub(crate) struct InServiceSpan<F> {
        // `None` once dropped, so it is dropped inside the span.
        #[pin]
        future: Option<F>,
        span: ServiceSpan,
    }

    impl<F> PinnedDrop for InServiceSpan<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _entered = this.span.0.as_deref().map(Span::enter);
            this.future.set(None);
        }
    }
}

impl<F: Future> Future for InServiceSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.0.as_deref().map(Span::enter);
        match this.future.as_pin_mut() {
            Some(future) => future.poll(cx),
            // Not reached: the future is taken out only when this one is dropped.
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::{ServiceSpan, in_service_span};

    #[test]
    fn a_disabled_span_is_held_as_a_null_pointer() {
        // No subscriber in this test: the span is disabled.
        let span = ServiceSpan::new("app::idle");
        assert!(span.0.is_none());
        assert!(span.span().is_disabled());
        assert_eq!(size_of::<ServiceSpan>(), size_of::<usize>());
        let future = in_service_span(span, async { 7 });
        assert_eq!(poll_once(future), 7);
    }

    /// Polls a future that never waits.
    fn poll_once<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(value) => value,
            Poll::Pending => unreachable!("the future does not wait"),
        }
    }

    /// Records, for each event, whether a span was entered when it happened.
    #[derive(Default)]
    struct Entered {
        depth: std::sync::atomic::AtomicUsize,
        events: std::sync::Mutex<Vec<(String, bool)>>,
    }

    impl tracing::Subscriber for Entered {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let inside = self.depth.load(std::sync::atomic::Ordering::SeqCst) > 0;
            let name = event.metadata().name().to_owned();
            self.events.lock().unwrap().push((name, inside));
        }
        fn enter(&self, _: &tracing::span::Id) {
            self.depth.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        fn exit(&self, _: &tracing::span::Id) {
            self.depth.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Logs when dropped.
    struct LogsOnDrop;

    impl Drop for LogsOnDrop {
        fn drop(&mut self) {
            tracing::info!(name: "dropped", "dropped");
        }
    }

    #[test]
    fn an_enabled_span_is_entered_while_polled_and_while_dropped() {
        let subscriber = std::sync::Arc::new(Entered::default());
        tracing::subscriber::with_default(std::sync::Arc::clone(&subscriber), || {
            let span = ServiceSpan::new("app::worker");
            assert!(span.0.is_some(), "enabled: a subscriber wants it");
            let polled = in_service_span(span.clone(), async {
                tracing::info!(name: "polled", "polled");
            });
            poll_once(polled);
            let pending = in_service_span(span, async {
                let _guard = LogsOnDrop;
                std::future::pending::<()>().await;
            });
            let mut pending = Box::pin(pending);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(pending.as_mut().poll(&mut cx).is_pending());
            drop(pending);
            tracing::info!(name: "outside", "outside");
        });
        let events = subscriber.events.lock().unwrap().clone();
        assert_eq!(
            events,
            [
                ("polled".to_owned(), true),
                ("dropped".to_owned(), true),
                ("outside".to_owned(), false),
            ]
        );
    }
}
