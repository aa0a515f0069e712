//! Scopes: the values one run shares, released together at its end.
//!
//! Every run of a hosted function gets a fresh scope; a scoped value is built on first use in
//! that scope, shared by everything the run resolves, and released when the run ends, in reverse
//! creation order, after its [`Dispose`] hook has been awaited. Long-lived services open scopes
//! of their own with [`ScopeFactory`].

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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

impl ScopeExit {
    /// How a run that returned `result` ended.
    pub(crate) fn of<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() {
            Self::Succeeded
        } else {
            Self::Failed
        }
    }
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

/// The values of one scope, under one lock: a cell per scoped registration of the container
/// (inline up to [`INLINE_SLOTS`]), every value created in the scope in creation order, and the
/// dispose hooks. A run's scope is used by the run's own task nearly always, so the lock is
/// uncontended; one lock taken per resolution costs less than a set-once cell per value
/// (`OnceLock::set` goes through `Once`), and keeps the creation order without atomics.
pub(crate) struct ScopeState {
    values: Mutex<Values>,
    /// Wakes the tasks waiting for a value another task of the same scope is building.
    built: Notify,
}

struct Values {
    cells: SmallVec<[Cell; INLINE_SLOTS]>,
    /// Every value created in this scope, scoped and transient alike, in creation order: they
    /// are released from the last.
    created: SmallVec<[AnyValue; INLINE_SLOTS]>,
    /// The dispose hooks, in creation order: they are awaited from the last.
    disposers: Vec<Disposer>,
    closed: bool,
    /// How many tasks wait in [`Claim::Wait`]; the notification is skipped when none does.
    waiting: usize,
}

/// How many scoped registrations a scope holds without a second allocation.
const INLINE_SLOTS: usize = 6;

/// One scoped registration's state in a scope.
#[derive(Clone, Copy)]
enum Cell {
    Empty,
    /// Claimed by the one task building it.
    Building,
    /// Built: the value is `created[index]` (a `u32` keeps the cells, which every scope
    /// initialises, small).
    Built(u32),
}

/// What a resolution finds in a scoped slot.
pub(crate) enum Claim<'a> {
    /// The value, built earlier in this scope.
    Ready(AnyValue),
    /// Nothing yet: the caller builds it and fills the cell through the claim.
    Build(Claimed<'a>),
    /// Another task of this scope is building it: see [`ScopeState::wait_for`].
    Wait,
    /// The scope has ended.
    Closed,
}

/// The one claim on a scoped cell, held while its value is built. Dropped without
/// [`fill`](Self::fill) (the build failed, panicked, or its future was dropped midway), it gives
/// the cell up and wakes the waiters, so one of them builds it instead of waiting for ever.
#[must_use = "a claim is given up when dropped"]
pub(crate) struct Claimed<'a> {
    scope: &'a ScopeState,
    slot: usize,
}

impl Claimed<'_> {
    /// Stores the value built and wakes the waiters.
    pub(crate) fn fill(self, value: AnyValue, disposer: Option<Disposer>) {
        let claim = std::mem::ManuallyDrop::new(self);
        claim.scope.fill(claim.slot, value, disposer);
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        self.scope.release_claim(self.slot);
    }
}

impl ScopeState {
    /// A scope with a cell for each of `slots` scoped registrations.
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            values: Mutex::new(Values {
                cells: SmallVec::from_elem(Cell::Empty, slots),
                created: SmallVec::new(),
                disposers: Vec::new(),
                closed: false,
                waiting: 0,
            }),
            built: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Values> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn values_mut(&mut self) -> &mut Values {
        self.values
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Releases the values, in reverse creation order, and empties the cells: a fresh scope.
    fn reset(&mut self) {
        let values = self.values_mut();
        if !values.created.is_empty() {
            values.release();
        }
        values.cells.fill(Cell::Empty);
        values.closed = false;
        values.waiting = 0;
    }

    /// The value of `slot`, if it has been built in this open scope.
    pub(crate) fn built_value(&self, slot: usize) -> Option<AnyValue> {
        let values = self.lock();
        match values.cells.get(slot) {
            Some(Cell::Built(index)) if !values.closed => {
                values.created.get(*index as usize).cloned()
            }
            _ => None,
        }
    }

    /// The value of `slot`, or what to do to get it; [`Claim::Build`] makes the caller its
    /// one builder.
    pub(crate) fn claim(&self, slot: usize) -> Claim<'_> {
        let mut values = self.lock();
        if values.closed {
            return Claim::Closed;
        }
        match values.cells.get(slot).copied() {
            None => Claim::Closed,
            Some(Cell::Built(index)) => match values.created.get(index as usize) {
                Some(value) => Claim::Ready(value.clone()),
                None => Claim::Closed,
            },
            Some(Cell::Building) => Claim::Wait,
            Some(Cell::Empty) => {
                values.cells[slot] = Cell::Building;
                Claim::Build(Claimed { scope: self, slot })
            }
        }
    }

    /// Waits, after a [`Claim::Wait`], until the task building `slot` has filled or released
    /// it; the caller then claims again.
    pub(crate) async fn wait_for(&self, slot: usize) {
        // Listening before the look: a fill after it wakes this listener.
        let built = self.built.notified();
        {
            let mut values = self.lock();
            if values.closed || !matches!(values.cells.get(slot), Some(Cell::Building)) {
                return;
            }
            values.waiting += 1;
        }
        built.await;
    }

    /// Wakes the waiters, if any, once the lock is released.
    fn wake_waiters(&self, mut values: MutexGuard<'_, Values>) {
        let waiting = std::mem::take(&mut values.waiting);
        drop(values);
        if waiting > 0 {
            self.built.notify_waiters();
        }
    }

    /// Stores the value built for a claimed slot and wakes the waiters.
    fn fill(&self, slot: usize, value: AnyValue, disposer: Option<Disposer>) {
        let mut values = self.lock();
        // More values than a `u32` counts cannot be created in one scope: memory ends first.
        let index = u32::try_from(values.created.len()).unwrap_or(u32::MAX);
        values.created.push(value);
        if let Some(disposer) = disposer {
            values.disposers.push(disposer);
        }
        if let Some(cell) = values.cells.get_mut(slot) {
            *cell = Cell::Built(index);
        }
        self.wake_waiters(values);
    }

    /// Gives up a claim whose build failed, so a waiter may try again.
    fn release_claim(&self, slot: usize) {
        let mut values = self.lock();
        if let Some(cell @ Cell::Building) = values.cells.get_mut(slot) {
            *cell = Cell::Empty;
        }
        self.wake_waiters(values);
    }

    /// Records a transient built in this scope.
    pub(crate) fn created(&self, value: AnyValue, disposer: Option<Disposer>) {
        let mut values = self.lock();
        values.created.push(value);
        values.disposers.extend(disposer);
    }

    /// Closes the scope at once if none of its values has a dispose hook; otherwise leaves it
    /// open for [`close`](Self::close). The values are released, in reverse creation order,
    /// when the last context of the scope is gone (at once, for a run that kept none).
    pub(crate) fn close_now(scope: &mut Arc<Self>) -> bool {
        // Held by the run's end alone, the usual case: nothing else can reach it, so no lock.
        if let Some(state) = Arc::get_mut(scope) {
            return state.values_mut().close_unless_disposing();
        }
        scope.lock().close_unless_disposing()
    }

    /// Awaits the dispose hooks in reverse creation order; the values are released after, as
    /// by [`close_now`](Self::close_now). A `dispose` that panics does not keep the others from
    /// running; the panics are returned.
    pub(crate) async fn close(&self, exit: ScopeExit) -> Result<(), Failure> {
        let disposers = {
            let mut values = self.lock();
            values.closed = true;
            std::mem::take(&mut values.disposers)
        };
        let mut panics = Vec::new();
        for disposer in disposers.into_iter().rev() {
            if let Err(message) = CatchUnwind::new(|| disposer(exit)).await {
                panics.push(message);
            }
        }
        disposal_result(&panics)
    }
}

impl Drop for ScopeState {
    fn drop(&mut self) {
        self.values_mut().release();
    }
}

impl Values {
    /// Whether the lists hold no more room than a run's scope usually needs.
    fn small(&self) -> bool {
        !self.created.spilled() && self.disposers.capacity() <= INLINE_SLOTS
    }

    /// Marks the scope closed, unless one of its values has a dispose hook to await first.
    fn close_unless_disposing(&mut self) -> bool {
        if !self.disposers.is_empty() {
            return false;
        }
        self.closed = true;
        true
    }

    /// Releases the values in reverse creation order, scoped and transient alike.
    fn release(&mut self) {
        // The hooks of a scope never closed hold their values too: they go first, so the
        // values' own order decides which is released last.
        self.disposers.clear();
        while let Some(value) = self.created.pop() {
            drop(value);
        }
    }
}

/// How many ended scopes a thread keeps for its next runs.
const SPARE_SCOPES: usize = 4;

thread_local! {
    /// Scopes whose runs ended on this thread, emptied, for the next runs here: a scoped run
    /// then neither allocates nor frees its scope, and no other thread is involved.
    static SPARE: RefCell<Vec<Arc<ScopeState>>> = const { RefCell::new(Vec::new()) };
}

/// A fresh scope with a cell for each of `slots` scoped registrations: one this thread ended
/// earlier, or a new one.
pub(crate) fn fresh_scope(slots: usize) -> Arc<ScopeState> {
    let spare = SPARE
        .try_with(|spare| spare.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten();
    if let Some(mut scope) = spare
        && Arc::get_mut(&mut scope).is_some_and(|state| state.values_mut().cells.len() == slots)
    {
        return scope;
    }
    Arc::new(ScopeState::new(slots))
}

/// Ends a closed scope: when nothing else holds it, its values are released now, in reverse
/// creation order, and the emptied scope kept for this thread's next run; otherwise whatever
/// holds it last releases them.
pub(crate) fn recycle(mut scope: Arc<ScopeState>) {
    let Some(state) = Arc::get_mut(&mut scope) else {
        return;
    };
    // Released before the spare list is borrowed: a value's `Drop` may end a scope itself.
    state.reset();
    if !state.values_mut().small() {
        // A scope that made many values (a long-lived scope opened by hand, say) would keep
        // their room for ever in the spare list: it is freed instead.
        return;
    }
    let _ = SPARE.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut()
            && spare.len() < SPARE_SCOPES
        {
            spare.push(scope);
        }
    });
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

#[diagnostic::do_not_recommend]
impl Inject for ScopeFactory {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        Ok(Self { cx: cx.unscoped() })
    }

    fn inject_now(cx: &RunContext) -> Option<Result<Self, InjectError>> {
        Some(Ok(Self { cx: cx.unscoped() }))
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
    ///
    /// A scope none of whose values has a [`Dispose`] hook ends when `end` is called, without
    /// awaiting; the returned future then has nothing left to do.
    pub fn end(mut self, exit: ScopeExit) -> impl Future<Output = ()> + Send {
        // The context lets go of the scope first: the run end then holds its last reference
        // (unless a clone of the context was kept), so without hooks the values are released
        // here, in reverse creation order, and the emptied scope kept for the next one.
        self.cx.leave_scope();
        let rest = self
            .end
            .take()
            .and_then(|end| end.finish_now(exit, self.cx.status()));
        // Kept only for the rare end that awaits dispose hooks.
        let status = rest.as_ref().and_then(|_| self.cx.status().cloned());
        drop(self);
        async move {
            if let Some(end) = rest
                && let Err(failure) = end.finish(exit, status.as_ref()).await
            {
                tracing::error!(error = %failure, "disposing a scope failed");
            }
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
                let status = self.cx.status().cloned();
                runtime.spawn(async move {
                    if let Err(failure) = end.finish(ScopeExit::Failed, status.as_ref()).await {
                        tracing::error!(error = %failure, "disposing a scope failed");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{Claim, ScopeState, fresh_scope, recycle};

    /// A value counting its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn fill_first(scope: &ScopeState, drops: &Arc<AtomicUsize>) {
        let Claim::Build(claim) = scope.claim(0) else {
            panic!("a fresh scope's cell is free");
        };
        claim.fill(Arc::new(Counted(Arc::clone(drops))), None);
    }

    #[test]
    fn an_ended_scope_releases_its_values_and_comes_back_empty() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut scope = fresh_scope(2);
        fill_first(&scope, &drops);
        assert!(ScopeState::close_now(&mut scope));
        let address = Arc::as_ptr(&scope);
        recycle(scope);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "released when the scope ended"
        );

        let next = fresh_scope(2);
        assert_eq!(Arc::as_ptr(&next), address, "the emptied scope is reused");
        assert!(
            matches!(next.claim(0), Claim::Build(_)),
            "nothing of the last run is left"
        );
        assert!(next.built_value(1).is_none());
    }

    #[test]
    fn a_scope_something_still_holds_is_neither_emptied_nor_reused() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut scope = fresh_scope(1);
        fill_first(&scope, &drops);
        let held = Arc::clone(&scope);
        assert!(ScopeState::close_now(&mut scope), "closed under the lock");
        assert!(
            held.built_value(0).is_none(),
            "a closed scope answers nothing"
        );
        recycle(scope);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "the holder keeps the values alive"
        );

        let next = fresh_scope(1);
        assert!(!Arc::ptr_eq(&next, &held));
        assert!(matches!(next.claim(0), Claim::Build(_)));
        drop(held);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "released by the last holder"
        );
    }

    #[test]
    fn a_scope_that_made_many_values_is_freed_rather_than_kept() {
        let spares = || super::SPARE.with(|spare| spare.borrow().len());
        let drops = Arc::new(AtomicUsize::new(0));
        let mut scope = fresh_scope(1);
        for _ in 0..100 {
            scope.created(Arc::new(Counted(Arc::clone(&drops))), None);
        }
        assert!(ScopeState::close_now(&mut scope));
        recycle(scope);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            100,
            "released when the scope ended"
        );
        assert_eq!(spares(), 0, "not kept with room for 100 values");

        let mut small = fresh_scope(1);
        assert!(ScopeState::close_now(&mut small));
        recycle(small);
        assert_eq!(spares(), 1, "a run's usual scope is kept");
    }

    #[test]
    fn a_spare_scope_of_another_size_is_not_reused() {
        let mut scope = fresh_scope(1);
        assert!(ScopeState::close_now(&mut scope));
        recycle(scope);
        let next = fresh_scope(3);
        assert!(
            matches!(next.claim(2), Claim::Build(_)),
            "a cell for every registration"
        );
    }
}
