//! The span of one run, and the marker that tells a `send` inside it which run it is in.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;

use tracing::Span;
use tracing::field::Empty;

use super::{NO_SPAN, Origin};

thread_local! {
    /// The run being polled on this thread, as its `sent_from` text: set while a run with an
    /// enabled span is polled, so a `send` it makes can say where it came from.
    static CURRENT: Cell<Option<Arc<str>>> = const { Cell::new(None) };
}

/// The run polled on this thread now, if its span is enabled.
pub(super) fn current_run() -> Option<Arc<str>> {
    CURRENT.with(|current| {
        let run = current.take();
        let copy = run.clone();
        current.set(run);
        copy
    })
}

/// The span of one run, and how a `send` made inside it names it; one pointer, null when the
/// span is disabled (no subscriber would see it), which is what the futures of idle services,
/// resting timers and untraced runs hold.
#[derive(Debug)]
pub(crate) struct RunSpan(Option<Box<Traced>>);

/// An enabled run span.
#[derive(Debug)]
struct Traced {
    span: Span,
    /// The span as the text format writes it, lent to [`CURRENT`] while a poll lasts.
    mark: Option<Arc<str>>,
}

impl RunSpan {
    fn new(span: Span, mark: impl FnOnce() -> String) -> Self {
        if span.is_disabled() {
            return Self::none();
        }
        let mark = Some(Arc::from(mark()));
        Self(Some(Box::new(Traced { span, mark })))
    }

    /// No span: for a run no subscriber would see ([`runs_traced`](super::runs_traced)), or whose
    /// spans a benchmark left out ([`bypass_spans`](super::bypass_spans)).
    pub(crate) const fn none() -> Self {
        Self(None)
    }

    /// One run of a background body.
    pub(crate) fn body(service: &str, run: u32) -> Self {
        let span = tracing::info_span!(parent: None, "run", service = %service, run);
        Self::new(span, || format!("run{{service={service} run={run}}}"))
    }

    /// One tick of a timed service.
    pub(crate) fn tick(service: &str, tick: u64) -> Self {
        #[cfg(debug_assertions)]
        super::counts::add(&super::counts::TICK_SPANS);
        let span = tracing::info_span!(parent: None, "tick", service = %service, tick);
        Self::new(span, || format!("tick{{service={service} tick={tick}}}"))
    }

    /// One attempt at an item of an in-memory queue.
    pub(crate) fn item(service: &str, seq: u64, attempt: u32, origin: &Origin) -> Self {
        #[cfg(debug_assertions)]
        super::counts::add(&super::counts::ITEM_SPANS);
        let span = tracing::info_span!(
            parent: None,
            "item",
            service = %service,
            seq,
            attempt,
            sent_from = Empty
        );
        origin.mark(&span);
        Self::new(span, || {
            format!("item{{service={service} seq={seq} attempt={attempt}}}")
        })
    }

    /// One attempt at a job of a durable queue.
    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "the durable queues' jobs")
    )]
    pub(crate) fn job(service: &str, job: i64, attempt: u32, origin: &Origin) -> Self {
        let span = tracing::info_span!(
            parent: None,
            "job",
            service = %service,
            job,
            attempt,
            sent_from = Empty
        );
        origin.mark(&span);
        Self::new(span, || {
            format!("job{{service={service} job={job} attempt={attempt}}}")
        })
    }

    /// One request to the web host.
    #[cfg_attr(
        not(feature = "web"),
        expect(dead_code, reason = "the web host's requests")
    )]
    pub(crate) fn request(service: &str, method: &dyn std::fmt::Display, path: &str) -> Self {
        let span = tracing::info_span!(
            parent: None,
            "request",
            service = %service,
            method = %method,
            path = %path
        );
        Self::new(span, || {
            format!("request{{service={service} method={method} path={path}}}")
        })
    }

    /// The span itself; a disabled one for a run without.
    pub(crate) fn span(&self) -> &Span {
        self.0.as_ref().map_or(&NO_SPAN, |traced| &traced.span)
    }
}

/// Runs `future` inside the run: its span entered, and the run marked for the `send`s it makes,
/// on every poll. A disabled span costs one check, not an enter per poll.
///
/// A future of its own rather than an `async fn`: an `async fn` would keep `future` as its
/// argument and again as the value it awaits, twice its size, and the timer loop holds a tick's
/// run inline (measured: a tick's run of 3,000 bytes in an `async fn`, against the 960 of the
/// future it wraps).
pub(crate) fn in_run<F: Future>(run: RunSpan, future: F) -> InRun<F> {
    InRun { future, run }
}

pin_project_lite::pin_project! {
    /// [`in_run`]'s future.
    pub(crate) struct InRun<F> {
        #[pin]
        future: F,
        run: RunSpan,
    }
}

impl<F: Future> Future for InRun<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let Some(Traced { span, mark }) = this.run.0.as_deref_mut() else {
            return this.future.poll(cx);
        };
        let _entered = span.enter();
        let _marked = Marked::new(mark);
        this.future.poll(cx)
    }
}

/// The run's mark, in [`CURRENT`] while one poll lasts; the previous one back after it, even if
/// the poll panics.
struct Marked<'a> {
    slot: &'a mut Option<Arc<str>>,
    previous: Option<Arc<str>>,
}

impl<'a> Marked<'a> {
    fn new(slot: &'a mut Option<Arc<str>>) -> Self {
        let previous = CURRENT.with(|current| current.replace(slot.take()));
        Self { slot, previous }
    }
}

impl Drop for Marked<'_> {
    fn drop(&mut self) {
        *self.slot = CURRENT.with(|current| current.replace(self.previous.take()));
    }
}

/// Enters the run for one synchronous step (one poll of a hand-written future): its span, and
/// its mark for the `send`s made inside.
pub(crate) struct Entered<'a> {
    _entered: Option<tracing::span::Entered<'a>>,
    _marked: Option<Marked<'a>>,
}

impl RunSpan {
    /// Enters the run until the guard is dropped; nothing when the span is disabled.
    pub(crate) fn enter(&mut self) -> Entered<'_> {
        let Some(Traced { span, mark }) = self.0.as_deref_mut() else {
            return Entered {
                _entered: None,
                _marked: None,
            };
        };
        Entered {
            _entered: Some(span.enter()),
            _marked: Some(Marked::new(mark)),
        }
    }
}
