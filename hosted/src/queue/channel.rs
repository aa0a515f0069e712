//! The bounded channel under every queue: many senders, many workers, one lock.
//!
//! Not tokio's `mpsc`: the drop modes take items out from the sender's side, the drain at stop
//! takes every queued item out at once, and several workers share one receiving end. Items and
//! waiters live under one `std` mutex held for a few instructions, so each send and each receive
//! costs one lock and at most one wake-up, like the semaphore and list of a tokio channel. The
//! lock and the fields every send and receive reads share one cache line (the waiters' lists,
//! used only when a side waits, come after it), and the worker's in-flight count and whatever
//! lies beside the channel are on lines of their own: with producers and a worker on several
//! cores, a send or receive that does not wait moves one line between them instead of three.
//!
//! Waiting senders are served first come, first served: a slot freed while senders wait is
//! granted to the first of them (`reserved`), so a sender arriving later cannot take it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use crossbeam_utils::CachePadded;
use tokio::task::coop;

use super::options::FullMode;
use crate::telemetry::Origin;

/// Set in [`Chan::in_flight`] once the final count is taken: items still out are counted as left
/// undone by the stop, not by their worker.
pub(crate) const SEALED: u64 = 1 << 63;

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
    /// Accepted with this sequence number; `dropped` is the item a drop mode discarded for it (or
    /// the offered item itself, under [`FullMode::DropIncoming`]), to be dropped outside the lock.
    Accepted { dropped: Option<Queued<T>> },
    /// Full, in a mode that does not drop: the item is handed back.
    Full(T),
    /// Closed: the item is handed back.
    Closed(T),
}

pub(crate) struct Chan<T> {
    state: CachePadded<Mutex<State<T>>>,
    capacity: usize,
    full_mode: FullMode,
    /// Items taken by workers and not yet finished, plus [`SEALED`] once the stop has counted them.
    pub(crate) in_flight: CachePadded<AtomicU64>,
}

/// The fields every send and receive reads come first, on the lock's own cache line (the
/// `layout` test below keeps them there).
#[repr(C)]
struct State<T> {
    items: VecDeque<Queued<T>>,
    /// Items accepted so far; the last one's sequence number.
    accepted: u64,
    /// Slots granted to woken senders that have not filled them yet.
    reserved: usize,
    /// No more sends: set when the queue stops.
    closed: bool,
    /// Workers get nothing more, even if items remain: set when the stop gives up draining, or
    /// while the workers are stopped after a failure.
    halted: bool,
    senders: Waiters,
    /// Senders woken with a slot reserved for them.
    granted: Vec<u64>,
    receivers: Waiters,
}

/// Tasks waiting their turn, first come first served.
#[derive(Default)]
struct Waiters {
    queue: VecDeque<(u64, Waker)>,
    next_id: u64,
}

impl Waiters {
    /// Queues the caller, or refreshes its waker if it is queued already.
    fn register(&mut self, id: &mut Option<u64>, waker: &Waker) {
        if let Some(id) = *id
            && let Some((_, queued)) = self.queue.iter_mut().find(|(queued, _)| *queued == id)
        {
            if !queued.will_wake(waker) {
                queued.clone_from(waker);
            }
            return;
        }
        let new = self.next_id;
        self.next_id += 1;
        self.queue.push_back((new, waker.clone()));
        *id = Some(new);
    }

    /// Takes the caller out of the queue; `false` if it was not in it (it was woken).
    fn remove(&mut self, id: u64) -> bool {
        match self.queue.iter().position(|(queued, _)| *queued == id) {
            Some(position) => {
                self.queue.remove(position);
                true
            }
            None => false,
        }
    }
}

/// Wakers collected under the lock, woken after it is released.
type Wake = Option<Waker>;

fn wake(waker: Wake) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl<T> Chan<T> {
    pub(crate) fn new(capacity: usize, full_mode: FullMode) -> Self {
        Self {
            state: CachePadded::new(Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(1024)),
                accepted: 0,
                closed: false,
                halted: false,
                reserved: 0,
                senders: Waiters::default(),
                granted: Vec::new(),
                receivers: Waiters::default(),
            })),
            capacity,
            full_mode,
            in_flight: CachePadded::new(AtomicU64::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic never happens under this lock (no user code runs there), but stay usable if it
        // somehow did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn full_mode(&self) -> FullMode {
        self.full_mode
    }

    /// Items waiting, and items accepted so far.
    pub(crate) fn depth_and_accepted(&self) -> (usize, u64) {
        let state = self.lock();
        (state.items.len(), state.accepted)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Offers an item without waiting: accepted, dropped for room, or handed back.
    pub(crate) fn offer(&self, item: T, origin: Origin) -> Offer<T> {
        let mut state = self.lock();
        if state.closed {
            return Offer::Closed(item);
        }
        let room =
            state.items.len() + state.reserved < self.capacity && state.senders.queue.is_empty();
        let dropped = if room {
            None
        } else {
            match self.full_mode {
                FullMode::Wait | FullMode::Reject => return Offer::Full(item),
                FullMode::DropOldest => state.items.pop_front(),
                FullMode::DropNewest => state.items.pop_back(),
                FullMode::DropIncoming => {
                    state.accepted += 1;
                    let seq = state.accepted;
                    return Offer::Accepted {
                        dropped: Some(Queued { seq, item, origin }),
                    };
                }
            }
        };
        let waiting = push(&mut state, item, origin);
        drop(state);
        wake(waiting);
        Offer::Accepted { dropped }
    }

    /// A send that waits for room (in [`FullMode::Wait`]).
    pub(crate) fn send(&self, item: T, origin: Origin) -> Send<'_, T> {
        Send {
            chan: self,
            item: Some(item),
            origin,
            waiter: None,
        }
    }

    /// The next item for a worker; `None` once the queue is closed and empty, or halted.
    pub(crate) fn recv(&self) -> Recv<'_, T> {
        Recv {
            chan: self,
            waiter: None,
        }
    }

    /// Stops accepting items: waiting senders get theirs back. Queued items stay for the workers.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.granted.clear();
        state.reserved = 0;
        let senders = std::mem::take(&mut state.senders.queue);
        let receivers = std::mem::take(&mut state.receivers.queue);
        drop(state);
        for (_, waker) in senders.into_iter().chain(receivers) {
            waker.wake();
        }
    }

    /// Ends the workers' supply: they get nothing more. Returns the items still queued.
    pub(crate) fn halt(&self) -> Vec<Queued<T>> {
        let mut state = self.lock();
        state.halted = true;
        let left: Vec<Queued<T>> = state.items.drain(..).collect();
        let receivers = std::mem::take(&mut state.receivers.queue);
        drop(state);
        for (_, waker) in receivers {
            waker.wake();
        }
        left
    }

    /// Stops the workers' supply without taking the items: workers finish what they hold.
    pub(crate) fn pause(&self) {
        let mut state = self.lock();
        state.halted = true;
        let receivers = std::mem::take(&mut state.receivers.queue);
        drop(state);
        for (_, waker) in receivers {
            waker.wake();
        }
    }

    /// Lets workers take items again, as when the service (re)starts.
    pub(crate) fn resume(&self) {
        self.lock().halted = false;
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
}

/// Appends an accepted item; returns a worker to wake.
#[inline]
fn push<T>(state: &mut State<T>, item: T, origin: Origin) -> Wake {
    state.accepted += 1;
    let seq = state.accepted;
    state.items.push_back(Queued { seq, item, origin });
    state.receivers.queue.pop_front().map(|(_, waker)| waker)
}

/// Hands a freed slot to the first waiting sender, if any; returns it to wake.
#[inline]
fn grant<T>(state: &mut State<T>, capacity: usize) -> Wake {
    if state.closed || state.items.len() + state.reserved >= capacity {
        return None;
    }
    let (id, waker) = state.senders.queue.pop_front()?;
    state.granted.push(id);
    state.reserved += 1;
    Some(waker)
}

/// The future of [`Chan::send`]: resolves to `Ok` once accepted, or hands the item back when the
/// queue closes. Dropping it drops the item, which was never accepted.
pub(crate) struct Send<'a, T> {
    chan: &'a Chan<T>,
    item: Option<T>,
    origin: Origin,
    waiter: Option<u64>,
}

// The item is never pinned: it is only moved in and out.
impl<T> Unpin for Send<'_, T> {}

impl<T> Send<'_, T> {
    /// Gives up waiting: the item back, or `None` if a slot was granted in the meantime and the
    /// item was accepted after all.
    pub(crate) fn cancel(&mut self) -> Option<T> {
        let item = self.item.take()?;
        let Some(id) = self.waiter.take() else {
            return Some(item);
        };
        let mut state = self.chan.lock();
        if let Some(position) = state.granted.iter().position(|granted| *granted == id) {
            state.granted.swap_remove(position);
            state.reserved -= 1;
            let waiting = push(&mut state, item, std::mem::take(&mut self.origin));
            drop(state);
            wake(waiting);
            return None;
        }
        state.senders.remove(id);
        Some(item)
    }
}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = ready!(coop::poll_proceed(cx));
        let this = &mut *self;
        let mut state = this.chan.lock();
        let granted = this.waiter.and_then(|id| {
            let position = state.granted.iter().position(|granted| *granted == id)?;
            state.granted.swap_remove(position);
            state.reserved -= 1;
            Some(())
        });
        let Some(item) = this.item.take() else {
            // Polled after completion.
            return Poll::Pending;
        };
        if state.closed {
            if let Some(id) = this.waiter.take() {
                state.senders.remove(id);
            }
            return Poll::Ready(Err(item));
        }
        let room = granted.is_some()
            || (state.items.len() + state.reserved < this.chan.capacity
                && state.senders.queue.is_empty());
        if room {
            this.waiter = None;
            let waiting = push(&mut state, item, std::mem::take(&mut this.origin));
            drop(state);
            wake(waiting);
            coop.made_progress();
            return Poll::Ready(Ok(()));
        }
        state.senders.register(&mut this.waiter, cx.waker());
        this.item = Some(item);
        Poll::Pending
    }
}

impl<T> Drop for Send<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // A send that completed, or never stood in line, has nothing to undo: the common case.
        if let Some(id) = self.waiter.take() {
            self.leave_line(id);
        }
    }
}

impl<T> Send<'_, T> {
    /// Leaves the senders' line, gone before its turn came, or after it without using it.
    #[cold]
    fn leave_line(&self, id: u64) {
        let mut state = self.chan.lock();
        let mut next = None;
        if let Some(position) = state.granted.iter().position(|granted| *granted == id) {
            // Woken with a slot and gone without using it: the slot goes to the next in line.
            state.granted.swap_remove(position);
            state.reserved -= 1;
            next = grant(&mut state, self.chan.capacity);
        } else {
            state.senders.remove(id);
        }
        drop(state);
        wake(next);
    }
}

/// The future of [`Chan::recv`].
pub(crate) struct Recv<'a, T> {
    chan: &'a Chan<T>,
    waiter: Option<u64>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<Queued<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = ready!(coop::poll_proceed(cx));
        let this = &mut *self;
        let mut state = this.chan.lock();
        if !state.halted
            && let Some(queued) = state.items.pop_front()
        {
            this.chan.in_flight.fetch_add(1, Ordering::AcqRel);
            if let Some(id) = this.waiter.take() {
                state.receivers.remove(id);
            }
            let sender = grant(&mut state, this.chan.capacity);
            drop(state);
            wake(sender);
            coop.made_progress();
            return Poll::Ready(Some(queued));
        }
        if state.halted || state.closed {
            if let Some(id) = this.waiter.take() {
                state.receivers.remove(id);
            }
            return Poll::Ready(None);
        }
        state.receivers.register(&mut this.waiter, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for Recv<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // A receive that completed, or never stood in line, has nothing to undo: the common case.
        if let Some(id) = self.waiter.take() {
            self.leave_line(id);
        }
    }
}

impl<T> Recv<'_, T> {
    /// Leaves the workers' line, gone before an item came, or woken for one it did not take.
    #[cold]
    fn leave_line(&self, id: u64) {
        let mut state = self.chan.lock();
        let mut next = None;
        if !state.receivers.remove(id) && !state.items.is_empty() {
            // Woken for an item and gone without taking it: another worker takes it.
            next = state.receivers.queue.pop_front().map(|(_, waker)| waker);
        }
        drop(state);
        wake(next);
    }
}

#[cfg(test)]
mod layout {
    use super::*;

    /// The mutex's own word comes before the state on its line: the hot fields must fit in the
    /// rest of it.
    #[test]
    fn the_fields_every_send_and_receive_reads_fit_on_the_locks_line() {
        let hot_end = std::mem::offset_of!(State<u64>, halted) + 1;
        assert!(
            hot_end <= 56,
            "the hot fields end at byte {hot_end} of the state"
        );
        assert!(align_of::<Chan<u64>>() >= 64);
    }
}
