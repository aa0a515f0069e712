//! Requests as runs: each request gets a fresh [`RunContext`] with its own scope, closed when
//! the response is ready, and handlers draw container values from it with [`Injected<T>`].

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::di::{Inject, InjectError, RunContext, RunEnd, ScopeExit};
use crate::status::ServiceStatus;
use crate::telemetry::{RunSpan, in_run};

/// Any injectable value — `Arc<T>` of a singleton or of a scoped value, [`Config<T>`](crate::Config),
/// [`Queue<T>`](crate::Queue), [`Hub<M>`](super::Hub), [`ScopeFactory`](crate::ScopeFactory),
/// anything implementing [`Inject`] — as an axum extractor, resolved through the same
/// [`Inject`] trait that hosted functions' parameters use.
///
/// Each request is a *run*: scoped values are built once per request, shared by every
/// extractor of that request, and released when the handler's response is ready, their
/// [`Dispose`](crate::Dispose) hooks told whether it succeeded (a status below 400) or failed (400
/// and above, a timeout, a panic, a client that went away).
///
/// ```
/// use std::sync::Arc;
/// use hosted::web::Injected;
///
/// # struct UnitOfWork; impl UnitOfWork { fn add(&self, _: &str) {} }
/// async fn click(Injected(unit): Injected<Arc<UnitOfWork>>) -> &'static str {
///     unit.add("click");
///     "counted"
/// }
/// ```
///
/// A value that cannot be injected answers 500 with the reason (and logs it). Declare what the
/// handlers inject with [`Routes::needs`](super::Routes::needs) to have it checked before any
/// service starts, as a service's parameters are.
#[derive(Clone, Copy, Debug, Default)]
pub struct Injected<T>(pub T);

impl<T> Deref for Injected<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Injected<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<S: Send + Sync, T: Inject> FromRequestParts<S> for Injected<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let cx = request_context(parts)?;
        cx.resolve::<T>()
            .await
            .map(Injected)
            .map_err(Rejection::Inject)
    }
}

/// The request's run context itself, for code that resolves by hand.
impl<S: Send + Sync> FromRequestParts<S> for RunContext {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        request_context(parts)
    }
}

/// Why [`Injected<T>`] could not produce its value: answered 500 with the reason.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// The router does not run under the hosted web server, so requests have no run.
    NotServed,
    /// The value could not be injected.
    Inject(InjectError),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotServed => f.write_str(
                "this request has no run context: serve the router with the hosted web server",
            ),
            Self::Inject(error) => write!(f, "{}", crate::util::error_chain(error)),
        }
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "a handler's value could not be injected");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// The run context of a request, as the request scope layer stored it.
#[derive(Clone)]
struct RequestRun(RunContext);

pub(crate) fn request_context(parts: &Parts) -> Result<RunContext, Rejection> {
    parts
        .extensions
        .get::<RequestRun>()
        .map(|run| run.0.clone())
        .ok_or(Rejection::NotServed)
}

/// Ends a request's run, recorded in the web host's status; a request dropped before its
/// response (the client went away, the server gave up on it) ends as failed, in the background.
struct EndOnDrop(Option<RunEnd>, Option<Arc<ServiceStatus>>);

impl EndOnDrop {
    /// Ends the run; an `Err` when a scoped value's `dispose` panicked.
    async fn finish(mut self, exit: ScopeExit) -> Result<(), crate::service::Failure> {
        match self.0.take() {
            Some(end) => end.finish(exit, self.1.as_ref()).await,
            None => Ok(()),
        }
    }
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if let Some(end) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let status = self.1.take();
            runtime.spawn(async move {
                if let Err(failure) = end.finish(ScopeExit::Failed, status.as_ref()).await {
                    tracing::error!(error = %failure, "closing the scope of a dropped request failed");
                }
            });
        }
    }
}

/// How a response ends its run: below 400 succeeded, else failed.
pub(crate) fn exit_of(status: StatusCode) -> ScopeExit {
    if status.is_client_error() || status.is_server_error() {
        ScopeExit::Failed
    } else {
        ScopeExit::Succeeded
    }
}

/// The middleware that makes each request a run: a fresh scope, closed once the response is
/// ready and before it is sent, so a unit of work has committed when the client reads 200.
pub(crate) async fn request_scope(
    State(base): State<RunContext>,
    mut request: Request,
    next: Next,
) -> Response {
    let span = RunSpan::request(base.info().name(), request.method(), request.uri().path());
    in_run(span, async move {
        let (cx, end) = base.begin_run_scoped(true);
        request.extensions_mut().insert(RequestRun(cx));
        let end = EndOnDrop(Some(end), base.status().cloned());
        let response = next.run(request).await;
        match end.finish(exit_of(response.status())).await {
            Ok(()) => response,
            // What the handler did may not have been committed: the client must not read success.
            Err(failure) => {
                tracing::error!(error = %failure, "closing the request's scope failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request's scope could not be closed\n",
                )
                    .into_response()
            }
        }
    })
    .await
}
