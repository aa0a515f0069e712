//! The [`RunContext`] one run of a hosted function draws its parameters from, and the end of
//! that run, where its scope is closed.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::container::Container;
use super::scope::ScopeState;
use super::{Inject, InjectError, ScopeExit};
use crate::service::{ApplicationLifetime, ServiceInfo};
use crate::status::ServiceStatus;

/// Everything one run of a hosted function can draw its parameters from.
#[derive(Clone)]
pub struct RunContext {
    /// What every run of the service shares; one reference count per run.
    env: Arc<RunEnv>,
    /// The run's scope; `None` where values are built for the whole host (singletons), or
    /// where nothing the service resolves is scoped.
    scope: Option<Arc<ScopeState>>,
    /// What the runner attached ([`with_extension`](Self::with_extension)): nothing, the one
    /// value a run usually has (a tick, a job), or an [`ExtensionList`] of several. One
    /// pointer (two words, to a trait object), null when nothing is attached: a context lives
    /// in every service's base, every body's future and every run.
    extensions: Option<Extension>,
}

/// A value attached to a run, read back by its own type.
type Extension = Arc<dyn Any + Send + Sync>;

/// Several values attached to one run, in attachment order: stored as the run's one
/// [`Extension`], recognised by this type, which no code outside this module can attach.
struct ExtensionList(Vec<Extension>);

struct RunEnv {
    info: ServiceInfo,
    stop: CancellationToken,
    /// The host's lifetime is the container's own.
    container: Arc<Container>,
    /// Whether runs need a scope: something the service resolves is scoped, or transient
    /// with a [`Dispose`](crate::Dispose) hook. Without, runs skip building one.
    needs_scope: bool,
    /// Where the service's runs are recorded; `None` for code that is not a service.
    status: Option<Arc<ServiceStatus>>,
}

/// The end of one run, kept apart from its [`RunContext`] (which the body consumes) so the
/// runner can close the run's scope once the body returns. It holds no reference to the
/// service's status: the runner, which keeps the service's base context, names it at
/// [`finish`](Self::finish), so a run costs no reference count on it and every body's future
/// three words instead of four.
#[must_use = "a run must be finished, or its scope's values are never disposed"]
pub(crate) struct RunEnd {
    scope: Option<Arc<ScopeState>>,
    /// When the run began, for the service's status; `None` for a run that is not a service's,
    /// or that its runner records itself.
    began: Option<tokio::time::Instant>,
}

impl RunEnd {
    /// Closes the run's scope once its body has returned: disposes its values in reverse
    /// creation order, telling them how the run went. A `dispose` that panicked fails the run.
    /// The run is recorded in `status`, the service's (its base context's
    /// [`status`](RunContext::status)): the one place every kind of run ends.
    ///
    /// Done at once when nothing needs awaiting; the future of a scope with dispose hooks is
    /// boxed, so the future of every run that awaits this one stays two words.
    pub(crate) fn finish(
        self,
        exit: ScopeExit,
        status: Option<&Arc<ServiceStatus>>,
    ) -> impl Future<Output = Result<(), crate::service::Failure>> + Send + 'static {
        let closing = self
            .finish_now(exit, status)
            .map(|end| Box::pin(end.close_and_record(exit, status.cloned())));
        async move {
            match closing {
                None => Ok(()),
                Some(closing) => closing.await,
            }
        }
    }

    /// The rest of [`finish`](Self::finish) for a scope whose values have dispose hooks.
    async fn close_and_record(
        self,
        exit: ScopeExit,
        status: Option<Arc<ServiceStatus>>,
    ) -> Result<(), crate::service::Failure> {
        let closed = match self.scope {
            Some(scope) => {
                let closed = scope.close(exit).await;
                super::scope::recycle(scope);
                closed
            }
            None => Ok(()),
        };
        if let (Some(status), Some(began)) = (status, self.began) {
            status.run_ended(began, exit == ScopeExit::Succeeded && closed.is_ok());
        }
        closed
    }

    /// Finishes the run at once when nothing needs awaiting (no value with a dispose hook),
    /// recording it in `status`; otherwise hands the run end back for [`finish`](Self::finish).
    pub(crate) fn finish_now(
        mut self,
        exit: ScopeExit,
        status: Option<&Arc<ServiceStatus>>,
    ) -> Option<Self> {
        if let Some(scope) = &mut self.scope
            && !ScopeState::close_now(scope)
        {
            return Some(self);
        }
        if let (Some(status), Some(began)) = (status, self.began) {
            status.run_ended(began, exit == ScopeExit::Succeeded);
        }
        if let Some(scope) = self.scope {
            super::scope::recycle(scope);
        }
        None
    }
}

impl std::fmt::Debug for RunEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunEnd").finish_non_exhaustive()
    }
}

impl RunContext {
    /// A context outside any scope, the base of a service's runs.
    pub(crate) fn new(
        info: ServiceInfo,
        stop: CancellationToken,
        container: Arc<Container>,
        needs_scope: bool,
    ) -> Self {
        Self::with_status(info, stop, container, needs_scope, None)
    }

    /// A service's base context, whose runs record in `status`.
    pub(crate) fn with_status(
        info: ServiceInfo,
        stop: CancellationToken,
        container: Arc<Container>,
        needs_scope: bool,
        status: Option<Arc<ServiceStatus>>,
    ) -> Self {
        Self {
            env: Arc::new(RunEnv {
                info,
                stop,
                container,
                needs_scope,
                status,
            }),
            scope: None,
            extensions: None,
        }
    }

    /// A context for another run of the same service: the same service, token and lifetime, a
    /// fresh scope, none of this run's extensions. Finish the run with the returned [`RunEnd`].
    pub(crate) fn begin_run(&self) -> (Self, RunEnd) {
        self.begin_run_scoped(self.env.needs_scope)
    }

    /// Whether [`begin_run`](Self::begin_run) opens a scope: without one, a hot loop (a queue's
    /// items) may lend this context to each run instead.
    pub(crate) fn runs_scoped(&self) -> bool {
        self.env.needs_scope
    }

    /// As [`begin_run`](Self::begin_run), with a scope whether or not the service declared a
    /// need for one: for scopes opened by hand, whose resolutions are not declared.
    pub(crate) fn begin_run_scoped(&self, scoped: bool) -> (Self, RunEnd) {
        let scope = scoped.then(|| self.env.container.new_scope());
        let cx = Self {
            env: Arc::clone(&self.env),
            scope: scope.clone(),
            extensions: None,
        };
        (cx, self.end_run(scope))
    }

    /// As [`begin_run`](Self::begin_run), for a runner that records the run in the status
    /// itself with the instants it reads anyway (a timer: the tick's start, and the end its
    /// schedule reads), so the run costs no clock read and no reference count here.
    pub(crate) fn begin_unrecorded_run(&self) -> (Self, RunEnd) {
        let scope = self.env.needs_scope.then(|| self.env.container.new_scope());
        let cx = Self {
            env: Arc::clone(&self.env),
            scope: scope.clone(),
            extensions: None,
        };
        (cx, RunEnd { scope, began: None })
    }

    fn end_run(&self, scope: Option<Arc<ScopeState>>) -> RunEnd {
        RunEnd {
            scope,
            began: self.env.status.is_some().then(tokio::time::Instant::now),
        }
    }

    /// The live status of the service this run belongs to; `None` outside a service.
    pub(crate) fn status(&self) -> Option<&Arc<ServiceStatus>> {
        self.env.status.as_ref()
    }

    /// The same service's context with another stop token: a queue's items get one of their
    /// own, which fires only when the stop gives up draining them.
    pub(crate) fn with_stop_token(&self, stop: CancellationToken) -> Self {
        Self::with_status(
            self.env.info.clone(),
            stop,
            Arc::clone(&self.env.container),
            self.env.needs_scope,
            self.env.status.clone(),
        )
    }

    /// The same service's context outside any scope: what a [`ScopeFactory`](super::ScopeFactory)
    /// keeps, so holding one does not keep the run's scoped values alive.
    pub(crate) fn unscoped(&self) -> Self {
        Self {
            env: Arc::clone(&self.env),
            scope: None,
            extensions: None,
        }
    }

    /// Lets go of this context's scope: it resolves as outside any scope from now on.
    pub(crate) fn leave_scope(&mut self) {
        self.scope = None;
    }

    pub(crate) fn scope(&self) -> Option<&Arc<ScopeState>> {
        self.scope.as_ref()
    }

    /// Attaches a value that parameters of this run can read with [`extension`](Self::extension):
    /// how a timer hands its tick information or a queue its item's sequence number to their
    /// `Inject` implementations. A second value of the same type replaces the first.
    #[must_use]
    pub fn with_extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        let value: Extension = Arc::new(value);
        self.extensions = Some(match self.extensions.take() {
            None => value,
            Some(existing) if existing.is::<T>() => value,
            Some(existing) => {
                let mut list = match existing.downcast_ref::<ExtensionList>() {
                    Some(ExtensionList(list)) => list.clone(),
                    None => vec![existing],
                };
                list.retain(|attached| !attached.is::<T>());
                list.push(value);
                Arc::new(ExtensionList(list))
            }
        });
        self
    }

    /// A value attached to this run with [`with_extension`](Self::with_extension).
    #[must_use]
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        let attached = self.extensions.as_deref()?;
        if let Some(value) = attached.downcast_ref::<T>() {
            return Some(value);
        }
        let ExtensionList(list) = attached.downcast_ref::<ExtensionList>()?;
        list.iter().find_map(|value| value.downcast_ref::<T>())
    }

    /// The service this run belongs to.
    #[must_use]
    pub fn info(&self) -> &ServiceInfo {
        &self.env.info
    }

    /// The service's stop token.
    #[must_use]
    pub fn stop_token(&self) -> &CancellationToken {
        &self.env.stop
    }

    /// The host's lifetime.
    #[must_use]
    pub fn lifetime(&self) -> &ApplicationLifetime {
        self.env.container.lifetime()
    }

    /// Resolves any injectable value, as a parameter of that type would receive it.
    ///
    /// # Errors
    /// As [`Inject::inject`] for `T`.
    pub fn resolve<T: Inject>(&self) -> impl Future<Output = Result<T, InjectError>> + Send + '_ {
        // Not an `async fn`: a generic async fn holding `T` across its await makes rustc fail to
        // prove `Send` for trait objects (rust-lang/rust#110338); returning the future as is
        // keeps it provable.
        T::inject(self)
    }

    pub(crate) fn container(&self) -> &Arc<Container> {
        &self.env.container
    }
}

impl RunContext {
    /// How many values are attached to this run.
    fn extension_count(&self) -> usize {
        match self.extensions.as_deref() {
            None => 0,
            Some(attached) => attached
                .downcast_ref::<ExtensionList>()
                .map_or(1, |ExtensionList(list)| list.len()),
        }
    }
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("service", &self.env.info.name())
            .field("stopping", &self.env.stop.is_cancelled())
            .field("scoped", &self.scope.is_some())
            .field("extensions", &self.extension_count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::RunContext;
    use crate::di::{Container, ScopeExit};
    use crate::service::ApplicationLifetime;

    fn context() -> RunContext {
        Arc::new(Container::new(
            Vec::new(),
            ApplicationLifetime::new(),
            |_| None,
        ))
        .root_context()
    }

    #[derive(Debug, PartialEq)]
    struct Tick(u64);
    #[derive(Debug, PartialEq)]
    struct Job(i64);
    #[derive(Debug, PartialEq)]
    struct Request(&'static str);

    #[test]
    fn a_run_reads_back_what_was_attached_by_its_type() {
        let cx = context();
        assert_eq!(cx.extension::<Tick>(), None, "nothing attached yet");
        let cx = cx.with_extension(Tick(1));
        assert_eq!(cx.extension::<Tick>(), Some(&Tick(1)));
        assert_eq!(cx.extension::<Job>(), None, "another type is not there");
        let cx = cx.with_extension(Tick(2));
        assert_eq!(
            cx.extension::<Tick>(),
            Some(&Tick(2)),
            "the second replaces the first"
        );
        assert_eq!(cx.extension_count(), 1);
    }

    #[test]
    fn several_types_are_kept_side_by_side_and_each_replaced_alone() {
        let cx = context()
            .with_extension(Tick(1))
            .with_extension(Job(7))
            .with_extension(Request("/"));
        assert_eq!(cx.extension_count(), 3);
        assert_eq!(cx.extension::<Tick>(), Some(&Tick(1)));
        assert_eq!(cx.extension::<Job>(), Some(&Job(7)));
        assert_eq!(cx.extension::<Request>(), Some(&Request("/")));

        let copy = cx.clone();
        let cx = cx.with_extension(Job(8));
        assert_eq!(cx.extension_count(), 3, "replaced, not added");
        assert_eq!(cx.extension::<Job>(), Some(&Job(8)));
        assert_eq!(cx.extension::<Tick>(), Some(&Tick(1)));
        assert_eq!(
            copy.extension::<Job>(),
            Some(&Job(7)),
            "a clone taken before keeps its own values"
        );
    }

    #[test]
    fn a_finished_run_is_recorded_in_the_status_it_is_given() {
        let info = crate::service::ServiceInfo::new(
            "app::worker".into(),
            crate::service::ServiceKind::Background,
            0,
            Vec::new(),
            Arc::new(crate::service::FailurePolicy::StopHost),
            None,
            crate::service::Settings::default(),
        );
        let status = Arc::new(crate::status::ServiceStatus::new(&info));
        let container = Arc::new(Container::new(
            Vec::new(),
            ApplicationLifetime::new(),
            |_| None,
        ));
        let base = RunContext::with_status(
            info,
            tokio_util::sync::CancellationToken::new(),
            container,
            true,
            Some(Arc::clone(&status)),
        );
        for exit in [ScopeExit::Succeeded, ScopeExit::Failed] {
            let (cx, end) = base.begin_run();
            drop(cx);
            assert!(
                end.finish_now(exit, base.status()).is_none(),
                "nothing to dispose"
            );
        }
        let snapshot = status.snapshot();
        assert_eq!((snapshot.runs, snapshot.failures), (2, 1));

        // A run its runner records itself (a timer's tick) leaves the status alone.
        let (cx, end) = base.begin_unrecorded_run();
        drop(cx);
        assert!(end.finish_now(ScopeExit::Failed, base.status()).is_none());
        let snapshot = status.snapshot();
        assert_eq!((snapshot.runs, snapshot.failures), (2, 1));
    }

    #[test]
    fn a_context_is_four_words() {
        // Held by every service's base context and every body's future: what every run of the
        // service shares, the run's scope, and what the runner attached (a pointer to a trait
        // object, two words).
        assert_eq!(size_of::<RunContext>(), 4 * size_of::<usize>());
    }

    #[test]
    fn another_run_of_the_same_service_starts_with_none() {
        let cx = context().with_extension(Tick(1)).with_extension(Job(2));
        let (next, end) = cx.begin_run();
        assert_eq!(next.extension_count(), 0);
        assert_eq!(next.extension::<Tick>(), None);
        assert!(
            end.finish_now(ScopeExit::Succeeded, next.status())
                .is_none()
        );
        assert_eq!(cx.unscoped().extension::<Job>(), None);
    }
}
