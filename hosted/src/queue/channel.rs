//! The bounded channel under every queue: many senders, many workers, no lock shared by the two
//! sides on the hot path.
//!
//! Not tokio's `mpsc`: the drop modes take items out from the sender's side, the stop takes every
//! queued item out at once, and several workers share one receiving end. The same parts as a
//! tokio channel, though:
//!
//! * the items in a lock-free list ([`SegQueue`], crossbeam's), except under
//!   [`FullMode::DropNewest`], which takes the newest item back off the end and so keeps them in a
//!   `VecDeque` under a mutex;
//! * the room as the permits of a tokio [`Semaphore`]: a send takes one (first come, first
//!   served: a sender arriving while others wait cannot overtake them), a worker gives it back
//!   once it has taken an item;
//! * the worker to wake in an [`AtomicWaker`]: one worker at a time holds the *turn* to wait
//!   there; the others wait for the turn in a list that only workers touch.
//!
//! A sender goes through a *gate* between being accepted and pushing its item: one atomic word,
//! with the closed flag and the number of senders inside. That is what makes the counts exact
//! without a lock: a send is either refused by [`close`](Chan::close) or its item is in the list
//! before the workers can see the queue as closed and empty, and an item pushed while the stop
//! empties the list is counted as left undone by its own sender.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use atomic_waker::AtomicWaker;
use crossbeam_queue::SegQueue;
use tokio::sync::{Semaphore, TryAcquireError};
use tokio::task::coop;

use super::options::FullMode;
use crate::telemetry::Origin;

/// Set in [`Chan::in_flight`] once the final count is taken: items still out are counted as left
/// undone by the stop, not by their worker.
pub(crate) const SEALED: u64 = 1 << 63;

/// In [`Chan::gate`]: no more sends.
const CLOSED: u64 = 1 << 63;
/// In [`Chan::gate`]: the stop has taken the queued items out for good; a sender still inside
/// takes out what it pushed itself.
const EMPTIED: u64 = 1 << 62;
/// In [`Chan::gate`]: the senders between acceptance and push.
const INSIDE: u64 = EMPTIED - 1;

/// An accepted item, its sequence number (1 for the first item the queue accepted) and where it
/// was sent from.
#[derive(Debug)]
pub(crate) struct Queued<T> {
    pub(crate) seq: u64,
    pub(crate) item: T,
    pub(crate) origin: Origin,
}

/// What became of an item offered without waiting.
pub(crate) enum Offer<T> {
    /// Accepted; `dropped` is the item a drop mode discarded for it (or the offered item itself,
    /// under [`FullMode::DropIncoming`]), to be counted and dropped by the caller.
    Accepted { dropped: Option<Queued<T>> },
    /// Full, in a mode that does not drop: the item is handed back.
    Full(T),
    /// Closed: the item is handed back.
    Closed(T),
}

/// Where the items wait.
enum Items<T> {
    /// Lock-free, bounded by the permits of [`Chan::slots`].
    List(SegQueue<Queued<T>>),
    /// For [`FullMode::DropNewest`], which takes the newest item back; bounded under its lock.
    Deque(Mutex<VecDeque<Queued<T>>>),
}

impl<T> Items<T> {
    fn lock(deque: &Mutex<VecDeque<Queued<T>>>) -> MutexGuard<'_, VecDeque<Queued<T>>> {
        // No user code runs under this lock; stay usable if a panic somehow happened there.
        deque.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pop(&self) -> Option<Queued<T>> {
        match self {
            Self::List(list) => list.pop(),
            Self::Deque(deque) => Self::lock(deque).pop_front(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::List(list) => list.len(),
            Self::Deque(deque) => Self::lock(deque).len(),
        }
    }

    fn take_all(&self) -> Vec<Queued<T>> {
        match self {
            Self::List(list) => std::iter::from_fn(|| list.pop()).collect(),
            Self::Deque(deque) => Self::lock(deque).drain(..).collect(),
        }
    }
}

pub(crate) struct Chan<T> {
    items: Items<T>,
    /// The room left, as permits: taken by a send, given back when a worker takes an item.
    /// Unused under [`FullMode::DropNewest`].
    slots: Semaphore,
    capacity: usize,
    full_mode: FullMode,
    /// [`CLOSED`], [`EMPTIED`], and the number of senders between acceptance and push.
    gate: AtomicU64,
    /// Items accepted so far; the last one's sequence number.
    accepted: AtomicU64,
    /// Items a sender pushed while the stop was emptying the queue, and took out again itself:
    /// left undone.
    emptied_late: AtomicU64,
    /// Workers get nothing more, even if items remain: set when the stop gives up draining, or
    /// while the workers are stopped after a failure.
    halted: AtomicBool,
    workers: Workers,
    /// Items taken by workers and not yet finished, plus [`SEALED`] once the stop has counted them.
    pub(crate) in_flight: AtomicU64,
}

/// How workers wait for items: one of them (the turn's holder) in `waker`, which every send wakes;
/// the others in `queue`, for the turn.
struct Workers {
    held: AtomicBool,
    waker: AtomicWaker,
    queue: Mutex<Waiters>,
    /// How many are in `queue`: a worker giving up the turn looks for a successor only then.
    waiting: AtomicUsize,
}

/// Workers waiting for the turn, first come first served.
#[derive(Default)]
struct Waiters {
    queue: VecDeque<(u64, Waker)>,
    next_id: u64,
}

impl Workers {
    fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every waiting worker, to see that the queue ended or halted.
    fn wake_all(&self) {
        self.waker.wake();
        let waiting = std::mem::take(&mut self.lock().queue);
        self.waiting.store(0, Ordering::SeqCst);
        for (_, waker) in waiting {
            waker.wake();
        }
    }

    /// Hands the turn to the first worker waiting for it, if any.
    fn pass_turn(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let next = {
            let mut waiters = self.lock();
            let next = waiters.queue.pop_front();
            self.waiting.store(waiters.queue.len(), Ordering::SeqCst);
            next
        };
        if let Some((_, waker)) = next {
            waker.wake();
        }
    }
}

impl<T> Chan<T> {
    pub(crate) fn new(capacity: usize, full_mode: FullMode) -> Self {
        let items = if full_mode == FullMode::DropNewest {
            Items::Deque(Mutex::new(VecDeque::with_capacity(capacity.min(1024))))
        } else {
            Items::List(SegQueue::new())
        };
        Self {
            items,
            slots: Semaphore::new(capacity.min(Semaphore::MAX_PERMITS)),
            capacity,
            full_mode,
            gate: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            emptied_late: AtomicU64::new(0),
            halted: AtomicBool::new(false),
            workers: Workers {
                held: AtomicBool::new(false),
                waker: AtomicWaker::new(),
                queue: Mutex::new(Waiters::default()),
                waiting: AtomicUsize::new(0),
            },
            in_flight: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn full_mode(&self) -> FullMode {
        self.full_mode
    }

    /// Items waiting.
    pub(crate) fn depth(&self) -> usize {
        self.items.len()
    }

    /// Items accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }

    /// Items a sender took out again because the stop had emptied the queue: left undone.
    pub(crate) fn emptied_late(&self) -> u64 {
        self.emptied_late.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.gate.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Offers an item without waiting: accepted, dropped for room, or handed back.
    pub(crate) fn offer(&self, item: T, origin: Origin) -> Offer<T> {
        match self.full_mode {
            FullMode::Wait | FullMode::Reject => match self.slots.try_acquire() {
                Ok(permit) => {
                    permit.forget();
                    match self.accept(item, origin) {
                        Ok(()) => Offer::Accepted { dropped: None },
                        Err(item) => Offer::Closed(item),
                    }
                }
                Err(TryAcquireError::NoPermits) => Offer::Full(item),
                Err(TryAcquireError::Closed) => Offer::Closed(item),
            },
            FullMode::DropOldest | FullMode::DropIncoming | FullMode::DropNewest => {
                self.offer_dropping(item, origin)
            }
        }
    }

    /// A drop mode's send: it always finds room, by dropping an item if need be.
    fn offer_dropping(&self, item: T, origin: Origin) -> Offer<T> {
        let Some(seq) = self.enter() else {
            return Offer::Closed(item);
        };
        let queued = Queued { seq, item, origin };
        let dropped = match (&self.items, self.full_mode) {
            (Items::Deque(deque), _) => {
                let mut deque = Items::lock(deque);
                let dropped = if deque.len() >= self.capacity {
                    deque.pop_back()
                } else {
                    None
                };
                deque.push_back(queued);
                dropped
            }
            (Items::List(list), FullMode::DropIncoming) => {
                if let Ok(permit) = self.slots.try_acquire() {
                    permit.forget();
                    list.push(queued);
                    None
                } else {
                    Some(queued)
                }
            }
            (Items::List(list), _) => loop {
                if let Ok(permit) = self.slots.try_acquire() {
                    permit.forget();
                    list.push(queued);
                    break None;
                }
                // Full: the oldest item's slot becomes the new one's.
                if let Some(oldest) = list.pop() {
                    list.push(queued);
                    break Some(oldest);
                }
                // Every slot is held by an item between the list and a worker, or between a
                // sender and the list, for a few instructions.
                std::thread::yield_now();
            },
        };
        self.leave();
        Offer::Accepted { dropped }
    }

    /// Waits for room (in [`FullMode::Wait`]); `None` once the queue is closed. Dropping the
    /// future while it waits loses nothing.
    pub(crate) async fn reserve(&self) -> Option<Slot<'_, T>> {
        let permit = self.slots.acquire().await.ok()?;
        permit.forget();
        Some(Slot { chan: self })
    }

    /// Lets a sender in: its sequence number, or `None` once the queue is closed.
    fn enter(&self) -> Option<u64> {
        if self.gate.fetch_add(1, Ordering::AcqRel) & CLOSED != 0 {
            self.leave();
            return None;
        }
        Some(self.accepted.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Lets a sender out, its item pushed (or refused): wakes a worker, every worker if it was the
    /// last sender the stop waited for, and takes its item back out if the stop has emptied the
    /// queue meanwhile.
    fn leave(&self) {
        let gate = self.gate.fetch_sub(1, Ordering::AcqRel);
        self.workers.waker.wake();
        if gate & CLOSED != 0 && gate & INSIDE == 1 {
            self.workers.wake_all();
        }
        if gate & EMPTIED != 0 {
            let late = self.items.take_all();
            self.emptied_late
                .fetch_add(late.len() as u64, Ordering::AcqRel);
        }
    }

    /// Accepts an item into a slot already taken; hands it back if the queue closed meanwhile.
    fn accept(&self, item: T, origin: Origin) -> Result<(), T> {
        let Some(seq) = self.enter() else {
            self.slots.add_permits(1);
            return Err(item);
        };
        let queued = Queued { seq, item, origin };
        match &self.items {
            Items::List(list) => list.push(queued),
            Items::Deque(deque) => Items::lock(deque).push_back(queued),
        }
        self.leave();
        Ok(())
    }

    /// The next item for a worker; `None` once the queue is closed and empty, or halted.
    pub(crate) fn recv(&self) -> Recv<'_, T> {
        Recv {
            chan: self,
            turn: false,
            waiter: None,
        }
    }

    /// Stops accepting items: waiting senders get theirs back. Queued items stay for the workers,
    /// and so do those of the senders already past the gate.
    pub(crate) fn close(&self) {
        let gate = self.gate.fetch_or(CLOSED, Ordering::AcqRel);
        self.slots.close();
        if gate & INSIDE == 0 {
            self.workers.wake_all();
        }
    }

    /// Ends the workers' supply, after [`close`](Self::close): they get nothing more. Returns the
    /// items still queued; one a sender still pushes is counted by that sender
    /// ([`emptied_late`](Self::emptied_late)).
    pub(crate) fn halt(&self) -> Vec<Queued<T>> {
        self.halted.store(true, Ordering::SeqCst);
        self.gate.fetch_or(EMPTIED, Ordering::AcqRel);
        let left = self.items.take_all();
        self.workers.wake_all();
        left
    }

    /// Stops the workers' supply without taking the items: workers finish what they hold.
    pub(crate) fn pause(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.workers.wake_all();
    }

    /// Lets workers take items again, as when the service (re)starts.
    pub(crate) fn resume(&self) {
        self.halted.store(false, Ordering::SeqCst);
    }

    /// Counts every item still held by a worker as the stop's, once and for all; returns them.
    pub(crate) fn seal(&self) -> u64 {
        self.in_flight.fetch_or(SEALED, Ordering::AcqRel) & !SEALED
    }

    /// As [`seal`](Self::seal), but 0 if the count was taken already: for the last look at a
    /// queue whose stop may or may not have sealed it.
    pub(crate) fn seal_once(&self) -> u64 {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count & SEALED == 0).then_some(count | SEALED)
            })
            .unwrap_or_default()
    }

    /// Called by a worker when an item is finished; `false` if the stop already counted it.
    pub(crate) fn finish(&self) -> bool {
        self.in_flight.fetch_sub(1, Ordering::AcqRel) & SEALED == 0
    }

    /// What a worker finds now: `Some(Some(item))`, `Some(None)` when there will be nothing more
    /// (halted, or closed with every accepted item taken), `None` when it must wait.
    fn take(&self) -> Option<Option<Queued<T>>> {
        if self.halted.load(Ordering::SeqCst) {
            return Some(None);
        }
        if let Some(queued) = self.items.pop() {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            if let Items::List(_) = self.items {
                self.slots.add_permits(1);
            }
            return Some(Some(queued));
        }
        let gate = self.gate.load(Ordering::Acquire);
        if gate & CLOSED != 0 && gate & INSIDE == 0 {
            // Every sender let in has pushed: one last look.
            return Some(self.items.pop().map(|queued| {
                self.in_flight.fetch_add(1, Ordering::AcqRel);
                queued
            }));
        }
        None
    }
}

/// Room taken in a queue, from [`Chan::reserve`]: [`send`](Self::send) fills it.
pub(crate) struct Slot<'a, T> {
    chan: &'a Chan<T>,
}

impl<T> Slot<'_, T> {
    /// Accepts the item into the room taken; hands it back if the queue closed meanwhile.
    pub(crate) fn send(self, item: T, origin: Origin) -> Result<(), T> {
        let chan = self.chan;
        std::mem::forget(self);
        chan.accept(item, origin)
    }
}

impl<T> Drop for Slot<'_, T> {
    fn drop(&mut self) {
        self.chan.slots.add_permits(1);
    }
}

/// The future of [`Chan::recv`].
pub(crate) struct Recv<'a, T> {
    chan: &'a Chan<T>,
    /// Whether this worker holds the turn: its waker is the one sends wake.
    turn: bool,
    /// Its place in the queue for the turn.
    waiter: Option<u64>,
}

impl<T> Recv<'_, T> {
    /// Takes the turn if it is free; otherwise queues for it (or refreshes the waker queued).
    fn wait_for_turn(&mut self, waker: &Waker) {
        let workers = &self.chan.workers;
        let take = || {
            workers
                .held
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        };
        if !take() {
            {
                let mut waiters = workers.lock();
                let queued = self
                    .waiter
                    .and_then(|id| waiters.queue.iter_mut().find(|(queued, _)| *queued == id));
                if let Some((_, queued)) = queued {
                    if !queued.will_wake(waker) {
                        queued.clone_from(waker);
                    }
                } else {
                    let id = waiters.next_id;
                    waiters.next_id += 1;
                    waiters.queue.push_back((id, waker.clone()));
                    self.waiter = Some(id);
                    workers.waiting.store(waiters.queue.len(), Ordering::SeqCst);
                }
            }
            // The holder may have let go before it could see this worker queued.
            if !take() {
                return;
            }
        }
        self.turn = true;
        self.leave_queue();
        workers.waker.register(waker);
    }

    fn leave_queue(&mut self) {
        let Some(id) = self.waiter.take() else {
            return;
        };
        let workers = &self.chan.workers;
        let mut waiters = workers.lock();
        if let Some(position) = waiters.queue.iter().position(|(queued, _)| *queued == id) {
            waiters.queue.remove(position);
            workers.waiting.store(waiters.queue.len(), Ordering::SeqCst);
        }
    }

    /// Lets go of the turn (to the next worker waiting) and of the queue for it.
    fn leave(&mut self) {
        if std::mem::take(&mut self.turn) {
            self.chan.workers.held.store(false, Ordering::SeqCst);
            self.chan.workers.pass_turn();
        }
        self.leave_queue();
    }
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<Queued<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = ready!(coop::poll_proceed(cx));
        let this = &mut *self;
        if let Some(found) = this.chan.take() {
            this.leave();
            coop.made_progress();
            return Poll::Ready(found);
        }
        if this.turn {
            this.chan.workers.waker.register(cx.waker());
        } else {
            this.wait_for_turn(cx.waker());
        }
        // Registered: a send from now on wakes this worker (or the holder of the turn), so look
        // once more for one that came before.
        if let Some(found) = this.chan.take() {
            this.leave();
            coop.made_progress();
            return Poll::Ready(found);
        }
        Poll::Pending
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        // Gone while waiting (a worker aborted by the stop): the turn goes to the next worker,
        // which looks for items itself.
        self.leave();
    }
}
