//! Building a `#[hosted_service]` or annotated struct from its injected fields.

use std::future::Future;

use super::{Dependencies, InjectError, RunContext};

/// Not public API, used by generated code: builds a `#[hosted_service]` type from its fields.
#[doc(hidden)]
pub trait Construct: Sized + Send + Sync + 'static {
    /// Declares what the injected fields need.
    fn declare(needs: &mut Dependencies);
    /// Builds the value.
    fn construct(cx: &RunContext) -> impl Future<Output = Result<Self, InjectError>> + Send;
}
