//! Not public API, used by generated code: the checks `#[queued]` makes on the item type, each
//! spanned at the user's type with a message that says why and what to do.

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

/// Not public API, used by generated code: checks, at the item's type, that the default dead
/// letter can log it.
pub const fn assert_logged_item<T: LoggedItem>() {}

/// Not public API, used by generated code: checks, at the item's type, that it can be kept for a
/// dead-letter hook.
pub const fn assert_kept_item<T: KeptItem>() {}
