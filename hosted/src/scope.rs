//! Scopes: the values one run shares, released together at its end.
//!
//! Every run of a hosted function gets a fresh scope; a scoped value is built on first use in
//! that scope, shared by everything the run resolves, and released when the run ends, in reverse
//! creation order, after its [`Dispose`] hook has been awaited. Long-lived services open scopes
//! of their own with [`ScopeFactory`].

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use tokio::sync::OnceCell;

use crate::container::{AnyValue, Disposer};

/// A scoped value as its slot refers to it.
pub(crate) type WeakValue = std::sync::Weak<dyn std::any::Any + Send + Sync>;
use crate::inject::{Inject, InjectError, RunContext, RunEnd};

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

/// The values of one scope.
pub(crate) struct ScopeState {
    /// One cell per scoped registration, so building one may resolve another without locking.
    /// The cells hold weak references: `created` owns the values, so that closing the scope
    /// releases them in reverse creation order.
    slots: Box<[OnceCell<WeakValue>]>,
    /// Values to dispose at the end, in creation order.
    disposables: Mutex<Vec<Disposer>>,
    /// Every value built in this scope, released in reverse creation order.
    created: Mutex<Vec<AnyValue>>,
}

impl ScopeState {
    pub(crate) fn new(scoped_count: usize) -> Self {
        Self {
            slots: (0..scoped_count).map(|_| OnceCell::new()).collect(),
            disposables: Mutex::new(Vec::new()),
            created: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn slot(&self, position: usize) -> &OnceCell<WeakValue> {
        &self.slots[position]
    }

    /// Records a value built in this scope.
    pub(crate) fn created(&self, value: AnyValue, disposer: Option<Disposer>) {
        if let Some(disposer) = disposer {
            self.disposables
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(disposer);
        }
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }

    /// Disposes the values in reverse creation order, then releases them in that order.
    pub(crate) async fn close(&self, exit: ScopeExit) {
        let disposables = std::mem::take(
            &mut *self
                .disposables
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for disposer in disposables.into_iter().rev() {
            disposer(exit).await;
        }
        let mut created =
            std::mem::take(&mut *self.created.lock().unwrap_or_else(PoisonError::into_inner));
        while let Some(value) = created.pop() {
            drop(value);
        }
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
/// async fn end_round(scopes: &ScopeFactory) -> Result<(), hosted::InjectError> {
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
        if let Some(end) = self.end.take() {
            end.finish(exit).await;
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
                runtime.spawn(end.finish(ScopeExit::Failed));
            }
        }
    }
}
