//! Scopes: the values one run shares, released together at its end.
//!
//! Every run of a hosted function gets a fresh scope; a scoped value is built on first use in
//! that scope, shared by everything the run resolves, and released when the run ends, in reverse
//! creation order, after its [`Dispose`] hook has been awaited. Long-lived services open scopes
//! of their own with [`ScopeFactory`].

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use smallvec::SmallVec;
use tokio::sync::Notify;

use super::provider::{AnyValue, Disposer};
use crate::di::{Inject, InjectError, RunContext, RunEnd};
use crate::service::Failure;
use crate::util::CatchUnwind;

/// The outcome of disposing several values, from the panics of those that panicked.
pub(crate) fn disposal_result(panics: &[String]) -> Result<(), Failure> {
    if panics.is_empty() {
        Ok(())
    } else {
        Err(Failure::Panic(format!(
            "`Dispose::dispose` panicked: {}",
            panics.join("; ")
        )))
    }
}

/// How a scope ended, handed to [`Dispose::dispose`]: a unit of work commits on success and
/// rolls back on failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeExit {
    /// The run returned `Ok` (or `()`), or the scope was ended as succeeded.
    Succeeded,
    /// The run returned an error or panicked, or the scope was dropped without being ended.
    Failed,
}

/// An asynchronous clean-up hook, awaited when the value's scope ends (for singletons: when the
/// host has stopped every service). The async counterpart of `Drop`, like .NET's
/// `IAsyncDisposable`, told whether the scope's work succeeded.
///
/// ```
/// use hosted::{Dispose, ScopeExit};
///
/// struct UnitOfWork { /* a transaction */ }
///
/// impl Dispose for UnitOfWork {
///     async fn dispose(&self, exit: ScopeExit) {
///         match exit {
///             ScopeExit::Succeeded => { /* commit */ }
///             ScopeExit::Failed => { /* roll back */ }
///         }
///     }
/// }
/// ```
pub trait Dispose: Send + Sync + 'static {
    /// Releases what the value holds; `exit` tells how its scope ended.
    fn dispose(&self, exit: ScopeExit) -> impl Future<Output = ()> + Send;
}

/// The values of one scope, in creation order: scoped values with their slot, transients
/// without. One allocation per scope, one uncontended lock per resolution.
pub(crate) struct ScopeState {
    values: Mutex<ScopeValues>,
    /// Wakes the tasks waiting for a value another task of the same scope is building.
    built: Notify,
}

#[derive(Default)]
struct ScopeValues {
    /// Inline up to a few values, so most scopes allocate nothing beyond themselves.
    created: SmallVec<[Created; 4]>,
    /// Slots whose value is being built right now.
    building: SmallVec<[usize; 2]>,
    /// Tasks waiting in [`Claim::Wait`]; the notification is skipped when there are none.
    waiting: usize,
    /// How many of `created` have a dispose hook: without any, closing awaits nothing.
    disposable: usize,
    closed: bool,
}

struct Created {
    slot: Option<usize>,
    value: AnyValue,
    disposer: Option<Disposer>,
}

/// What a resolution finds in a scoped slot.
pub(crate) enum Claim {
    /// The value, built earlier in this scope.
    Ready(AnyValue),
    /// Nothing yet: the caller builds it, then calls [`ScopeState::fill`] or
    /// [`ScopeState::release_claim`].
    Build,
    /// Another task of this scope is building it: wait for [`ScopeState::built`], then claim
    /// again.
    Wait,
    /// The scope has ended.
    Closed,
}

impl ScopeState {
    pub(crate) fn new() -> Self {
        Self {
            values: Mutex::new(ScopeValues::default()),
            built: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ScopeValues> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `slot`, or what to do to get it.
    pub(crate) fn claim(&self, slot: usize) -> Claim {
        let mut values = self.lock();
        if values.closed {
            return Claim::Closed;
        }
        if let Some(created) = values
            .created
            .iter()
            .find(|created| created.slot == Some(slot))
        {
            return Claim::Ready(created.value.clone());
        }
        if values.building.contains(&slot) {
            values.waiting += 1;
            return Claim::Wait;
        }
        values.building.push(slot);
        Claim::Build
    }

    /// As [`claim`](Self::claim), for a caller that will not wait: a slot being built elsewhere
    /// is reported as [`Claim::Wait`] without counting the caller as a waiter.
    pub(crate) fn claim_now(&self, slot: usize) -> Claim {
        let mut values = self.lock();
        if values.closed {
            return Claim::Closed;
        }
        if let Some(created) = values
            .created
            .iter()
            .find(|created| created.slot == Some(slot))
        {
            return Claim::Ready(created.value.clone());
        }
        if values.building.contains(&slot) {
            return Claim::Wait;
        }
        values.building.push(slot);
        Claim::Build
    }

    /// The value of `slot`, if it has been built in this open scope.
    pub(crate) fn built_value(&self, slot: usize) -> Option<AnyValue> {
        let values = self.lock();
        if values.closed {
            return None;
        }
        values
            .created
            .iter()
            .find(|created| created.slot == Some(slot))
            .map(|created| created.value.clone())
    }

    /// Looks at a slot again after a [`Claim::Wait`], without claiming it.
    pub(crate) fn recheck(&self, slot: usize) -> Claim {
        let values = self.lock();
        if values.closed {
            return Claim::Closed;
        }
        match values
            .created
            .iter()
            .find(|created| created.slot == Some(slot))
        {
            Some(created) => Claim::Ready(created.value.clone()),
            None => Claim::Wait,
        }
    }

    /// Stores the value built for a claimed slot and wakes the waiters.
    pub(crate) fn fill(&self, slot: usize, value: AnyValue, disposer: Option<Disposer>) {
        let waiting = {
            let mut values = self.lock();
            values.building.retain(|building| *building != slot);
            values.disposable += usize::from(disposer.is_some());
            values.created.push(Created {
                slot: Some(slot),
                value,
                disposer,
            });
            std::mem::take(&mut values.waiting)
        };
        if waiting > 0 {
            self.built.notify_waiters();
        }
    }

    /// Gives up a claim whose build failed, so a waiter may try again.
    pub(crate) fn release_claim(&self, slot: usize) {
        let waiting = {
            let mut values = self.lock();
            values.building.retain(|building| *building != slot);
            std::mem::take(&mut values.waiting)
        };
        if waiting > 0 {
            self.built.notify_waiters();
        }
    }

    /// Records a transient built in this scope.
    pub(crate) fn created(&self, value: AnyValue, disposer: Option<Disposer>) {
        let mut values = self.lock();
        values.disposable += usize::from(disposer.is_some());
        values.created.push(Created {
            slot: None,
            value,
            disposer,
        });
    }

    /// The notification a waiter awaits; create it before claiming, so a value filled in
    /// between is not missed.
    pub(crate) fn built(&self) -> tokio::sync::futures::Notified<'_> {
        self.built.notified()
    }

    /// Closes the scope at once if none of its values has a dispose hook, releasing them in
    /// reverse creation order; otherwise leaves it open for [`close`](Self::close).
    pub(crate) fn close_now(&self) -> bool {
        let mut created = {
            let mut values = self.lock();
            if values.disposable > 0 {
                return false;
            }
            values.closed = true;
            std::mem::take(&mut values.created)
        };
        while let Some(created) = created.pop() {
            drop(created);
        }
        true
    }

    /// Disposes the values in reverse creation order, then releases them in that order. A
    /// `dispose` that panics does not keep the others from running; the panics are returned.
    pub(crate) async fn close(&self, exit: ScopeExit) -> Result<(), Failure> {
        let mut created = {
            let mut values = self.lock();
            values.closed = true;
            values.disposable = 0;
            std::mem::take(&mut values.created)
        };
        let mut panics = Vec::new();
        for created in created.iter_mut().rev() {
            if let Some(disposer) = created.disposer.take()
                && let Err(message) = CatchUnwind::new(disposer(exit)).await
            {
                panics.push(message);
            }
        }
        while let Some(created) = created.pop() {
            drop(created);
        }
        disposal_result(&panics)
    }
}

/// Opens scopes by hand, for long-lived services that need several over their life (seed 001's
/// game service opens one per round). Injectable; cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use hosted::{ScopeExit, ScopeFactory};
///
/// # struct Database; impl Database { async fn save(&self) {} }
/// async fn end_round(scopes: &ScopeFactory) -> Result<(), hosted::di::InjectError> {
///     let scope = scopes.create_scope();
///     let database = scope.resolve::<Arc<Database>>().await?;
///     database.save().await;
///     scope.end(ScopeExit::Succeeded).await;
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct ScopeFactory {
    cx: RunContext,
}

impl ScopeFactory {
    pub(crate) fn new(cx: RunContext) -> Self {
        Self { cx }
    }

    /// A new scope: scoped values resolved through it are built once and shared until it ends.
    #[must_use]
    pub fn create_scope(&self) -> Scope {
        let (cx, end) = self.cx.begin_run_scoped(true);
        Scope { cx, end: Some(end) }
    }
}

impl Inject for ScopeFactory {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Ok(Self { cx: cx.clone() })
    }

    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        Some(Ok(Self { cx: cx.clone() }))
    }
}

/// A scope opened with [`ScopeFactory::create_scope`]. End it with [`end`](Self::end) so its
/// values' [`Dispose`] hooks are awaited; a scope dropped without `end` is disposed in the
/// background as [`ScopeExit::Failed`].
#[derive(Debug)]
pub struct Scope {
    cx: RunContext,
    end: Option<RunEnd>,
}

impl Scope {
    /// Resolves a value in this scope, as a parameter of that type would receive it.
    ///
    /// # Errors
    /// As [`Inject::inject`] for `T`.
    pub fn resolve<T: Inject>(&self) -> impl Future<Output = Result<T, InjectError>> + Send + '_ {
        self.cx.resolve::<T>()
    }

    /// The scope's context, to hand to code that resolves by itself.
    #[must_use]
    pub fn context(&self) -> &RunContext {
        &self.cx
    }

    /// Ends the scope: disposes its values in reverse creation order, telling them how it went.
    pub async fn end(mut self, exit: ScopeExit) {
        if let Some(end) = self.end.take()
            && let Err(failure) = end.finish(exit).await
        {
            tracing::error!(error = %failure, "disposing a scope failed");
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            tracing::warn!(
                service = self.cx.info().name(),
                "a scope was dropped without `Scope::end`; disposing it as failed"
            );
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(failure) = end.finish(ScopeExit::Failed).await {
                        tracing::error!(error = %failure, "disposing a scope failed");
                    }
                });
            }
        }
    }
}
