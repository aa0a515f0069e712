//! Not public API, used by generated code: the checks `#[queued]` makes on the item type, each
//! spanned at the user's type with a message that says why and what to do.

use std::future::Future;

use super::{DeadLetter, DeadLetters};
use crate::service::IntoOutcome;

/// Not public API, used by generated code.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a queue item: it must be `Send + 'static`",
    label = "the queue's item type",
    note = "items cross from the sender's task to a worker's task; wrap what is not `Send` in a type that is"
)]
pub trait QueueItem: Send + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Send + 'static> QueueItem for T {}

/// Not public API, used by generated code.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must implement `Clone` and `Debug`: a failed item is logged with its `Debug` form",
    label = "the queue's item type",
    note = "a copy of each item is kept while it runs, since the handler consumes it: derive `Clone` and `Debug`",
    note = "or give `dead_letter = your_hook` (needs `Clone` only), or `dead_letter = \"log_without_item\"` (needs neither, no retries)"
)]
pub trait LoggedItem: Clone + std::fmt::Debug {}

#[diagnostic::do_not_recommend]
impl<T: Clone + std::fmt::Debug> LoggedItem for T {}

/// Not public API, used by generated code.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must implement `Clone`: the dead-letter hook receives the failed item",
    label = "the queue's item type",
    note = "a copy of each item is kept while it runs, since the handler consumes it: derive `Clone`",
    note = "or give `dead_letter = \"log_without_item\"` (no `Clone` needed, no retries)"
)]
pub trait KeptItem: Clone {}

#[diagnostic::do_not_recommend]
impl<T: Clone> KeptItem for T {}

/// Not public API, used by generated code: checks, at the item's type, that it can be queued.
pub const fn assert_queue_item<T: QueueItem>() {}

/// Not public API, used by generated code: what `dead_letter = path` must name.
#[diagnostic::on_unimplemented(
    message = "`dead_letter` expects an `async fn(DeadLetter<{T}>)` returning `()` or `Result<(), E>`",
    label = "not an `async fn` taking a `DeadLetter<{T}>`",
    note = "for example: `async fn park(letter: hosted::queue::DeadLetter<{T}>) -> anyhow::Result<()>`"
)]
pub trait DeadLetterHook<T>: Send + Sync + 'static {
    /// The hook's future.
    type Future: Future<Output: IntoOutcome> + Send + 'static;
    /// Calls the hook.
    fn call(&self, letter: DeadLetter<T>) -> Self::Future;
}

#[diagnostic::do_not_recommend]
impl<T, F, Fut> DeadLetterHook<T> for F
where
    F: Fn(DeadLetter<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output: IntoOutcome> + Send + 'static,
{
    type Future = Fut;

    fn call(&self, letter: DeadLetter<T>) -> Fut {
        self(letter)
    }
}

/// Not public API, used by generated code: [`DeadLetters::log`], its bound reported at the item's
/// type.
#[must_use]
pub fn log_dead_letters<T: LoggedItem>() -> DeadLetters<T> {
    DeadLetters::log()
}

/// Not public API, used by generated code: [`DeadLetters::hook`], its bounds reported at the item's
/// type and at the hook's path.
#[must_use]
pub fn hook_dead_letters<T: KeptItem + Send + 'static, F: DeadLetterHook<T>>(
    hook: F,
) -> DeadLetters<T> {
    DeadLetters::hook(move |letter| hook.call(letter))
}
