//! What a service's code returns and how it can fail: [`BoxError`], [`IntoOutcome`] and
//! [`Failure`], and how one call of it is run with its panics caught.

use std::future::Future;

use tokio::time::Instant;

use crate::util::{CatchUnwind, catch_panic};

/// The error type the host accepts from services: anything that converts into a boxed
/// [`std::error::Error`], which covers `anyhow::Error`, `thiserror` enums and
/// `Box<dyn Error + Send + Sync>` through `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The return types a hosted function may have: `()` or `Result<(), E>` where `E` converts into
/// [`BoxError`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a return type a hosted function can have",
    label = "expected `()` or `Result<(), E>`",
    note = "`E` may be any type that converts into `hosted::BoxError`: `anyhow::Error`, a `thiserror` enum, `Box<dyn Error + Send + Sync>`, ..."
)]
pub trait IntoOutcome {
    /// Converts the function's return value into the host's view of it.
    ///
    /// # Errors
    /// The function's own error, boxed.
    fn into_outcome(self) -> Result<(), BoxError>;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Result<(), BoxError> {
        Ok(())
    }
}

// `do_not_recommend`: an error type that is not one is reported as the return type that is not
// an outcome, with this trait's message, rather than as a missing `std::error::Error` impl.
#[diagnostic::do_not_recommend]
impl<E: Into<BoxError>> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// Why a service's code failed: an error it returned or a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The code returned an error.
    #[error("{}", crate::util::error_chain(.0.as_ref()))]
    Error(BoxError),
    /// The code panicked: the panic's message, followed by where it happened
    /// (` (at src/file.rs:10:5)`, and a backtrace when `RUST_BACKTRACE` asks for one) when the
    /// panic hook of `run!()` is installed.
    #[error("panicked: {0}")]
    Panic(String),
    /// The code did not finish within its time budget.
    #[error("did not finish within its time budget")]
    TimedOut,
}

/// Makes `call` and runs its future where it is, catching a panic in either, bounded by
/// `deadline` when there is one; the call is dropped if the deadline passes. The call is made
/// at the first poll, inside the catch: user code that panics before it returns its future
/// fails like code whose future panics.
///
/// Not spawned: the host must make progress even when every worker thread is blocked by a
/// service's body, so its own steps never wait for a worker.
pub(crate) async fn call_caught<T, E, C, F>(
    call: C,
    deadline: Option<Instant>,
) -> Result<T, Failure>
where
    E: Into<BoxError>,
    C: FnOnce() -> F + Send,
    F: Future<Output = Result<T, E>> + Send,
{
    let outcome = if let Some(deadline) = deadline {
        let mut call = CatchUnwind::new(call);
        // A call done at its first poll (most lifecycle hooks are no-ops) needs no timer.
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut call).poll(cx))
        })
        .await;
        match first {
            std::task::Poll::Ready(outcome) => outcome,
            std::task::Poll::Pending => match tokio::time::timeout_at(deadline, call).await {
                Ok(outcome) => outcome,
                Err(_) => return Err(Failure::TimedOut),
            },
        }
    } else {
        return call_caught_unbounded(call).await;
    };
    match outcome {
        Ok(result) => result.map_err(|error| Failure::Error(error.into())),
        Err(message) => Err(Failure::Panic(message)),
    }
}

/// [`call_caught`] without a deadline. Its future has no room for a timer and holds the call,
/// then its future, in the same place, inline: it is kept for as long as a service runs (a
/// supervisor awaiting its service's body), and run on every tick and every queued item.
pub(crate) fn call_caught_unbounded<T, E, C, F>(call: C) -> Caught<C, F>
where
    E: Into<BoxError>,
    C: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
{
    Caught {
        step: Step::Call { call: Some(call) },
    }
}

pin_project_lite::pin_project! {
    /// [`call_caught_unbounded`]'s future: the call's outcome, a panic caught as a [`Failure`].
    /// A call that panicked is not polled again: this future is then ready.
    pub(crate) struct Caught<C, F> {
        #[pin]
        step: Step<C, F>,
    }
}

pin_project_lite::pin_project! {
    /// Where a [`Caught`] is: its call still to make, then the call's future.
    #[project = StepProjection]
    enum Step<C, F> {
        Call { call: Option<C> },
        Running { #[pin] running: F },
    }
}

impl<T, E, C, F> Future for Caught<C, F>
where
    E: Into<BoxError>,
    C: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Failure>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let mut step = self.project().step;
        let polled = catch_panic(|| {
            loop {
                match step.as_mut().project() {
                    StepProjection::Call { call } => {
                        // Taken only once: a call that panicked made this future ready.
                        let Some(call) = call.take() else {
                            return std::task::Poll::Pending;
                        };
                        let running = call();
                        step.set(Step::Running { running });
                    }
                    StepProjection::Running { running } => return running.poll(cx),
                }
            }
        });
        match polled {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(result)) => {
                std::task::Poll::Ready(result.map_err(|error| Failure::Error(error.into())))
            }
            Err(message) => std::task::Poll::Ready(Err(Failure::Panic(message))),
        }
    }
}
