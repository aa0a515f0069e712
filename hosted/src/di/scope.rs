//! Scopes: the values one run shares, released together at its end.
//!
//! Every run of a hosted function gets a fresh scope; a scoped value is built on first use in
//! that scope, shared by everything the run resolves, and released when the run ends, in reverse
//! creation order, after its [`Dispose`] hook has been awaited. Long-lived services open scopes
//! of their own with [`ScopeFactory`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

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

/// The values of one scope: one cell per scoped registration of the container, laid out in the
/// scope's own allocation (inline up to [`INLINE_SLOTS`]) and read without a lock, and, under a
/// lock taken only when one is created, the transients and dispose hooks, in creation order.
pub(crate) struct ScopeState {
    slots: SmallVec<[Slot; INLINE_SLOTS]>,
    /// The slots in the order their values were created: `by_order[k]` is the `k`-th scoped
    /// value's slot. Each slot is filled at most once, so `k` stays below `slots.len()`.
    by_order: SmallVec<[AtomicUsize; INLINE_SLOTS]>,
    /// How many slots were filled.
    filled: AtomicUsize,
    closed: AtomicBool,
    /// The next value's place in creation order: values are released in reverse.
    next: AtomicU32,
    /// How many values with a dispose hook were created: without any, closing awaits nothing
    /// and takes no lock.
    disposable: AtomicUsize,
    /// Transients and dispose hooks; locked only when one is created, and at close.
    tail: Mutex<SmallVec<[Created; 2]>>,
    /// Tasks waiting in [`Claim::Wait`]; the notification is skipped when there are none.
    waiting: AtomicUsize,
    /// Wakes the tasks waiting for a value another task of the same scope is building.
    built: Notify,
}

/// How many scoped registrations a scope holds without a second allocation.
const INLINE_SLOTS: usize = 6;

/// One scoped registration's cell: claimed by the one task that builds it (`building`, which a
/// successful build leaves set), then set once and read with an atomic load.
#[derive(Default)]
struct Slot {
    building: AtomicBool,
    /// Place in creation order, written before `value` is set.
    created: AtomicU32,
    value: OnceLock<AnyValue>,
}

/// A transient (with its value) or a scoped value's dispose hook (its value is in its slot).
struct Created {
    order: u32,
    value: Option<AnyValue>,
    disposer: Option<Disposer>,
}

/// What a resolution finds in a scoped slot.
pub(crate) enum Claim {
    /// The value, built earlier in this scope.
    Ready(AnyValue),
    /// Nothing yet: the caller builds it, then calls [`ScopeState::fill`] or
    /// [`ScopeState::release_claim`].
    Build,
    /// Another task of this scope is building it: see [`ScopeState::wait_for`].
    Wait,
    /// The scope has ended.
    Closed,
}

impl ScopeState {
    /// A scope with a cell for each of `slots` scoped registrations.
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            by_order: (0..slots).map(|_| AtomicUsize::new(usize::MAX)).collect(),
            filled: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            next: AtomicU32::new(0),
            disposable: AtomicUsize::new(0),
            tail: Mutex::new(SmallVec::new()),
            waiting: AtomicUsize::new(0),
            built: Notify::new(),
        }
    }

    fn lock_tail(&self) -> std::sync::MutexGuard<'_, SmallVec<[Created; 2]>> {
        self.tail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `slot`, if it has been built in this open scope: an atomic load or two.
    pub(crate) fn built_value(&self, slot: usize) -> Option<AnyValue> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        self.slots.get(slot)?.value.get().cloned()
    }

    /// The value of `slot`, or what to do to get it; [`Claim::Build`] makes the caller its
    /// one builder.
    pub(crate) fn claim(&self, slot: usize) -> Claim {
        if self.closed.load(Ordering::Acquire) {
            return Claim::Closed;
        }
        let Some(cell) = self.slots.get(slot) else {
            return Claim::Closed;
        };
        if let Some(value) = cell.value.get() {
            return Claim::Ready(value.clone());
        }
        if cell
            .building
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // Built by another task between the look and the claim, then not released: a
            // successful build leaves `building` set, so this claim found it free only if the
            // value was never built.
            return Claim::Build;
        }
        match cell.value.get() {
            Some(value) => Claim::Ready(value.clone()),
            None => Claim::Wait,
        }
    }

    /// Waits, after a [`Claim::Wait`], until the task building `slot` has filled or released
    /// it; the caller then claims again.
    pub(crate) async fn wait_for(&self, slot: usize) {
        let built = self.built.notified();
        // Counted after listening: a fill that misses the count is seen by the look below.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let cell = &self.slots[slot];
        if cell.value.get().is_some()
            || !cell.building.load(Ordering::SeqCst)
            || self.closed.load(Ordering::SeqCst)
        {
            return;
        }
        built.await;
    }

    fn wake_waiters(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiting.swap(0, Ordering::SeqCst) > 0 {
            self.built.notify_waiters();
        }
    }

    /// Stores the value built for a claimed slot and wakes the waiters.
    pub(crate) fn fill(&self, slot: usize, value: AnyValue, disposer: Option<Disposer>) {
        let cell = &self.slots[slot];
        match disposer {
            None => {
                let order = self.next.fetch_add(1, Ordering::Relaxed);
                cell.created.store(order, Ordering::Relaxed);
            }
            Some(disposer) => {
                let mut tail = self.lock_tail();
                let order = self.next.fetch_add(1, Ordering::Relaxed);
                cell.created.store(order, Ordering::Relaxed);
                tail.push(Created {
                    order,
                    value: None,
                    disposer: Some(disposer),
                });
                self.disposable.fetch_add(1, Ordering::Release);
            }
        }
        // The claim makes this task the slot's one writer.
        let _ = cell.value.set(value);
        let filled = self.filled.fetch_add(1, Ordering::Relaxed);
        if let Some(place) = self.by_order.get(filled) {
            place.store(slot, Ordering::Relaxed);
        }
        self.wake_waiters();
    }

    /// Gives up a claim whose build failed, so a waiter may try again.
    pub(crate) fn release_claim(&self, slot: usize) {
        self.slots[slot].building.store(false, Ordering::SeqCst);
        self.wake_waiters();
    }

    /// Records a transient built in this scope.
    pub(crate) fn created(&self, value: AnyValue, disposer: Option<Disposer>) {
        let mut tail = self.lock_tail();
        let order = self.next.fetch_add(1, Ordering::Relaxed);
        if disposer.is_some() {
            self.disposable.fetch_add(1, Ordering::Release);
        }
        tail.push(Created {
            order,
            value: Some(value),
            disposer,
        });
    }

    /// Closes the scope at once if none of its values has a dispose hook; otherwise leaves it
    /// open for [`close`](Self::close). The values are released, in reverse creation order,
    /// when the last context of the scope is gone (at once, for a run that kept none).
    pub(crate) fn close_now(&self) -> bool {
        if self.disposable.load(Ordering::Acquire) > 0 {
            return false;
        }
        self.closed.store(true, Ordering::Release);
        true
    }

    /// Awaits the dispose hooks in reverse creation order; the values are released after, as
    /// by [`close_now`](Self::close_now). A `dispose` that panics does not keep the others from
    /// running; the panics are returned.
    pub(crate) async fn close(&self, exit: ScopeExit) -> Result<(), Failure> {
        self.closed.store(true, Ordering::Release);
        let disposers: SmallVec<[Disposer; 4]> = {
            let mut tail = self.lock_tail();
            self.disposable.store(0, Ordering::Release);
            tail.iter_mut()
                .rev()
                .filter_map(|created| created.disposer.take())
                .collect()
        };
        let mut panics = Vec::new();
        for disposer in disposers {
            if let Err(message) = CatchUnwind::new(|| disposer(exit)).await {
                panics.push(message);
            }
        }
        disposal_result(&panics)
    }
}

impl Drop for ScopeState {
    /// Releases the values in reverse creation order, scoped and transient alike.
    fn drop(&mut self) {
        let tail = std::mem::take(self.tail.get_mut().unwrap_or_else(PoisonError::into_inner));
        if tail.is_empty() {
            // Only scoped values: their creation order is recorded, no sorting needed.
            let filled = (*self.filled.get_mut()).min(self.by_order.len());
            for place in self.by_order[..filled].iter_mut().rev() {
                if let Some(slot) = self.slots.get_mut(*place.get_mut()) {
                    drop(slot.value.take());
                }
            }
            return;
        }
        let mut values: SmallVec<[(u32, AnyValue); INLINE_SLOTS]> = SmallVec::new();
        for slot in &mut self.slots {
            if let Some(value) = slot.value.take() {
                values.push((*slot.created.get_mut(), value));
            }
        }
        for created in tail {
            drop(created.disposer);
            if let Some(value) = created.value {
                values.push((created.order, value));
            }
        }
        values.sort_unstable_by_key(|(order, _)| std::cmp::Reverse(*order));
        for value in values {
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
        let rest = self.end.take().and_then(|end| end.finish_now(exit));
        // The context goes first: with the run end's, its reference was the scope's last, so
        // the values are released here (in reverse creation order) unless the scope had hooks.
        drop(self);
        async move {
            if let Some(end) = rest
                && let Err(failure) = end.finish(exit).await
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
                runtime.spawn(async move {
                    if let Err(failure) = end.finish(ScopeExit::Failed).await {
                        tracing::error!(error = %failure, "disposing a scope failed");
                    }
                });
            }
        }
    }
}
